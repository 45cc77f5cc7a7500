"""The semantic answer cache's entries (PostgreSQL, table `answer_cache`) and its choice.

Candidates come back with the retrieval, in the same round trip (`answers.lookup` adds
`CANDIDATES` to the retrieval's statement); `pick_cached` decides whether one answers the
new question: the same evidence (the passage the cached answer was based on is the new
question's best passage), near enough
(the calibrated threshold) and nothing in conflict (`cache.guard`). Entries are
written with the answer, in the same statement (`guests.conversations.record_answer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from posada.cache.guard import Signature, conflicts, rests_on, signature
from posada.db.pool import AsyncConn
from posada.knowledge.retrieval import Hit
from posada.providers.types import Vectors


@dataclass(frozen=True)
class CacheEntry:
    """An answer to keep for reuse."""

    tenant_id: int
    unit_id: int | None  # the unit whose private documents it drew on; None: any guest
    version: int
    language: str
    question: str
    normalized: str
    embedding: Vectors
    answer: str
    layer: str  # llm or extractive
    model: str | None
    sources: list[dict[str, Any]]
    evidence: int | None  # the best passage's chunk id

    def params(self) -> dict[str, Any]:
        """The statement parameters (prefixed `c_`)."""
        return {
            "c_tenant": self.tenant_id,
            "c_unit": self.unit_id,
            "c_version": self.version,
            "c_language": self.language,
            "c_question": self.question,
            "c_normalized": self.normalized,
            "c_embedding": np.asarray(self.embedding, dtype=np.float32),
            "c_answer": self.answer,
            "c_layer": self.layer,
            "c_model": self.model,
            "c_sources": Jsonb(self.sources),
            "c_evidence": self.evidence,
        }


@dataclass(frozen=True)
class Candidate:
    """A cached answer near the question, as the lookup found it."""

    id: int
    chunk_id: int | None  # the passage the answer rests on (its evidence)
    unit_id: int | None
    question: str
    answer: str
    similarity: float  # of the new question to the cached one
    evidence_similarity: float | None  # of the cached question to its passage
    layer: str
    model: str | None
    sources: list[dict[str, Any]]

    @property
    def scope(self) -> str:
        """`unit` when it drew on a unit's own documents, else `hotel`."""
        return "hotel" if self.unit_id is None else "unit"


# The nearest cached answers (a CTE, `cached`): this tenant's current version, this guest's
# scope, this language. Off unless `%(cache)s`.
CANDIDATES = """cached AS (
    SELECT a.id FROM answer_cache a
    WHERE %(cache)s AND a.tenant_id = %(tenant)s
      AND a.knowledge_version = (SELECT knowledge_version FROM tenants WHERE id = %(tenant)s)
      AND (a.unit_id IS NULL OR a.unit_id = %(unit)s) AND a.language = %(language)s
    ORDER BY a.embedding <=> %(emb)s LIMIT 3
)"""

# Each of them as one JSON value named as Candidate's fields (`candidate`), from `cached`.
CANDIDATE_ROWS = """SELECT jsonb_build_object(
           'id', a.id, 'chunk_id', a.evidence, 'unit_id', a.unit_id, 'question', a.question,
           'answer', a.answer, 'similarity', 1 - (a.embedding <=> %(emb)s),
           'evidence_similarity', 1 - (a.embedding <=> ev.embedding), 'layer', a.layer,
           'model', a.model, 'sources', a.sources) AS candidate
    FROM cached JOIN answer_cache a ON a.id = cached.id
         LEFT JOIN chunks ev ON ev.id = a.evidence"""


def read_candidates(values: list[dict[str, Any]]) -> list[Candidate]:
    """The candidates from their JSON values, nearest first."""
    found = [Candidate(**value) for value in values]
    return sorted(found, key=lambda c: (-c.similarity, c.id))


# A CTE (or statement) storing an entry; an entry already there for the key stays.
INSERT = """INSERT INTO answer_cache (tenant_id, unit_id, knowledge_version, language, question,
                                  normalized, embedding, answer, layer, model, sources, evidence)
    SELECT %(c_tenant)s, %(c_unit)s, %(c_version)s, %(c_language)s, %(c_question)s,
           %(c_normalized)s, %(c_embedding)s, %(c_answer)s, %(c_layer)s, %(c_model)s,
           %(c_sources)s, %(c_evidence)s
    WHERE %(c_store)s
    ON CONFLICT DO NOTHING
    RETURNING id"""

# A CTE counting a reuse of an entry.
HIT = """UPDATE answer_cache SET hits = hits + 1, last_hit_at = now()
    WHERE id = %(c_hit)s AND tenant_id = %(tenant)s
    RETURNING id"""

NO_ENTRY: dict[str, Any] = {
    "c_store": False, "c_tenant": None, "c_unit": None, "c_version": None, "c_language": None,
    "c_question": None, "c_normalized": None, "c_embedding": None, "c_answer": None,
    "c_layer": None, "c_model": None, "c_sources": None, "c_evidence": None,
}  # fmt: skip


def entry_params(entry: CacheEntry | None, hit: int | None) -> dict[str, Any]:
    """Parameters for INSERT and HIT: the entry to store (if any), the entry reused (if any)."""
    params = {**NO_ENTRY, "c_store": True, **entry.params()} if entry else dict(NO_ENTRY)
    params["c_hit"] = hit
    return params


async def store_entry(conn: AsyncConn, *, entry: CacheEntry) -> None:
    """Store an entry on its own (when no conversation is written: `posada ask`)."""
    await conn.execute(INSERT, entry_params(entry, None))


async def count_hit(conn: AsyncConn, *, tenant_id: int, entry_id: int) -> None:
    """Count a reuse on its own (when no conversation is written: `posada ask`)."""
    await conn.execute(HIT, {"c_hit": entry_id, "tenant": tenant_id})


def pick_cached(
    *,
    question: str,
    candidates: list[Candidate],
    chunks: list[Hit],
    min_similarity: float,
    evidence_within: int,
    max_evidence_drop: float,
    asked: Signature | None = None,
) -> Candidate | None:
    """The cached answer that answers this very question (`asked`: its signature, when
    already known), if one does."""
    if not chunks:
        return None  # no evidence to agree on
    asked = asked or signature(question)
    for hit in candidates:
        if hit.similarity < min_similarity:
            break  # nearest first
        rests = rests_on(hit, chunks, within=evidence_within, max_drop=max_evidence_drop)
        if rests and not conflicts(asked, signature(hit.question)):
            return hit
    return None
