"""The answer's one round trip: passages, FAQ candidates, cached answers and the version.

One statement joins the retrieval's searches (`knowledge.retrieval.SEARCH`, `ROWS`) and
the semantic cache's candidates (`cache.semantic.CANDIDATES`), and reads the tenant's
knowledge version, which a cached or stored answer carries. The version is one column
joined to every row, and stands alone when nothing was found, so that no row has to
pretend to be a hit. Cached answers come as one JSON value per row: they share no columns
with passages.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Unpack

from posada.cache.semantic import CANDIDATE_ROWS, CANDIDATES, Candidate, read_candidates
from posada.db.pool import AsyncConn
from posada.knowledge.retrieval import (
    HIT_COLUMNS,
    ROWS,
    SEARCH,
    Ranking,
    Retrieved,
    Visibility,
    named,
    read_hits,
    search_params,
)
from posada.providers.types import Vectors


@dataclass(frozen=True)
class Lookup(Retrieved):
    """What the lookup returned: `chunks` and `faqs` best first, `cached` nearest first, and
    `version` the tenant's knowledge version as the statement saw it (None: not read, as
    in the benchmark's sequential baseline)."""

    cached: list[Candidate] = field(default_factory=list)
    version: int | None = None

    def without_faqs(self) -> Lookup:
        """The same lookup with no FAQ candidate (a follow-up's search must not pick one)."""
        return replace(self, faqs=[])


_NO_HIT = ", ".join(f"NULL AS {name}" for name in HIT_COLUMNS)

_SQL = f"""
WITH {SEARCH},
{CANDIDATES},
found AS (
    SELECT NULL::jsonb AS candidate, hits.* FROM ({ROWS}) hits
    UNION ALL
    SELECT candidates.candidate, {_NO_HIT} FROM ({CANDIDATE_ROWS}) candidates
)
SELECT v.version, found.* FROM
    (SELECT (SELECT knowledge_version FROM tenants WHERE id = %(tenant)s) AS version) v
    LEFT JOIN found ON true
"""  # noqa: S608 (constants only; every value is a parameter)


async def lookup(
    conn: AsyncConn,
    *,
    visibility: Visibility,
    text: str,
    embedding: Vectors,
    cache: bool,
    language: str,
    **ranking: Unpack[Ranking],
) -> Lookup:
    """Chunks, FAQ candidates and (when `cache`) cached answers in `language`, in one
    statement, ranked as `knowledge.retrieval.retrieve` ranks."""
    params = search_params(visibility=visibility, text=text, embedding=embedding, **ranking)
    params |= {"cache": cache, "language": language}
    cur = await conn.execute(_SQL, params)
    rows = named(cur.description, await cur.fetchall())
    found = read_hits([row for row in rows if row["candidate"] is None])
    cached = read_candidates([row["candidate"] for row in rows if row["candidate"] is not None])
    version = rows[0]["version"] if rows else None
    return Lookup(found.chunks, found.faqs, cached, None if version is None else int(version))
