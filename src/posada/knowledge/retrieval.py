"""Retrieval in one round trip: fused vector + full-text chunks and FAQ candidates together.

One SQL statement returns, filtered to what this guest may see (the tenant's `hotel`
chunks, the `unit` chunks of the guest's own unit, shared `tourism` chunks):

- the top-k chunks by reciprocal rank fusion of vector similarity and full-text rank;
- the best FAQ candidates by vector similarity and by full-text rank.

The full-text side matters: the local model was trained mostly on English, most guests
write Spanish. It weighs each word by its rarity and also searches the glossary's
translations of the question's words. Each row also says how much of the question's
vocabulary (weighed by rarity) it covers: the answer stage's relevance and FAQ signal.

`SEARCH` and `ROWS` are the statement's pieces; the answering pipeline's lookup
(`answers.lookup`) adds the semantic cache's candidates and the knowledge version to them,
still one statement. `retrieve` runs them alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, TypedDict, Unpack

import numpy as np

from posada.db.pool import AsyncConn
from posada.knowledge.glossary import translations
from posada.providers.types import Vectors

RRF_K = 60  # the usual reciprocal-rank-fusion constant; `retrieve(rrf_k=...)` overrides it


@dataclass(frozen=True)
class Visibility:
    """Whose knowledge a question may draw on. Always built from a verified token or CLI flag."""

    tenant_id: int
    unit_id: int | None


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk or FAQ entry with every signal that ranked it."""

    kind: Literal["chunk", "faq"]
    id: int
    chunk_id: int | None
    title: str
    source: str
    tenant_id: int | None
    scope: str
    unit_id: int | None
    heading: str
    text: str  # the chunk's text, or the FAQ's answer
    question: str | None  # FAQ only
    score: float  # fused score (chunks) or similarity (FAQ)
    similarity: float  # cosine similarity of the question to this row's embedding
    vector_rank: int | None
    text_rank: int | None
    coverage: float  # share of the question's words found in this row
    question_coverage: float  # FAQ only: share of the FAQ question's words in the guest's
    # FAQ only: how near the entry's own question is to the passage it rests on
    evidence_similarity: float | None = None


# The columns `ROWS` selects, by name: a Hit is built from a row by its column names.
HIT_COLUMNS = tuple(f.name for f in fields(Hit))


@dataclass(frozen=True)
class Retrieved:
    """The chunks and FAQ candidates one search returned, best first."""

    chunks: list[Hit]
    faqs: list[Hit]

    @property
    def best_passage(self) -> int | None:
        """The top chunk's id: the evidence a reused answer must share."""
        return self.chunks[0].id if self.chunks else None


# Tourism rows are exactly those without a tenant (a CHECK says so); `tenant_id IS NULL`
# can use the (tenant_id, scope, unit_id) index where `scope = 'tourism'` could not.
_VISIBLE = """(({a}.tenant_id = %(tenant)s AND ({a}.scope = 'hotel'
                OR ({a}.scope = 'unit' AND {a}.unit_id = %(unit)s)))
           OR {a}.tenant_id IS NULL)"""

# Only constants are interpolated below; every value is a query parameter. The pieces
# compose into one statement (the optimized lookup) or run one after another (the
# benchmark's baseline, `lookup = sequential`), returning the same rows either way.
_Q = """q AS (
    SELECT lexemes, searched,
           CASE WHEN cardinality(searched) > 0 THEN
               array_to_string(ARRAY(SELECT quote_literal(l) FROM unnest(searched) l), ' | ')
                   ::tsquery
           END AS tsq
    FROM (SELECT tsvector_to_array(to_tsvector('posada_es', %(text)s)
                                   || to_tsvector('posada_en', %(text)s)) AS lexemes,
                 tsvector_to_array(to_tsvector('posada_es', %(text)s || ' ' || %(also)s)
                                   || to_tsvector('posada_en', %(text)s || ' ' || %(also)s))
                     AS searched) words
)"""

_VEC = f"""SELECT c.id, c.embedding <=> %(emb)s AS dist FROM chunks c
        WHERE {_VISIBLE.format(a="c")}
        ORDER BY c.embedding <=> %(emb)s LIMIT %(candidates)s"""

# Each searched word weighs its rarity, twice over when it is in the heading.
_WORDS = """words AS (
    SELECT l AS lexeme, coalesce(i.idf, (SELECT max(idf) FROM lexeme_idf), 1.0) AS idf,
           (quote_literal(l) || ':A')::tsquery AS in_heading,
           -- `tsv @@ word` reads the tsvector in place; `= ANY(tsvector_to_array(tsv))`
           -- built an array per chunk and word (found by `posada db profile`: 5.3 -> 3.7 ms).
           quote_literal(l)::tsquery AS anywhere
    FROM q, unnest(q.searched) l LEFT JOIN lexeme_idf i ON i.lexeme = l
)"""

_FTS = f"""SELECT c.id, (SELECT sum(w.idf * (1 + (c.tsv @@ w.in_heading)::int)) FROM words w
                      WHERE c.tsv @@ w.anywhere) AS rank
        FROM chunks c, q
        WHERE q.tsq IS NOT NULL AND c.tsv @@ q.tsq AND {_VISIBLE.format(a="c")}
        ORDER BY rank DESC, c.id LIMIT %(candidates)s"""

_FAQ_VEC = f"""SELECT f.id FROM faq f WHERE {_VISIBLE.format(a="f")}
     ORDER BY f.embedding <=> %(emb)s LIMIT %(faq_k)s"""

_FAQ_FTS = f"""SELECT f.id FROM faq f, q
     WHERE q.tsq IS NOT NULL AND f.question_tsv @@ q.tsq AND {_VISIBLE.format(a="f")}
     ORDER BY ts_rank(f.question_tsv, q.tsq) DESC LIMIT %(faq_k)s"""

# The rows of the fused chunks and FAQ candidates with every signal the answer stage reads,
# named as Hit's fields.
ROWS = """SELECT 'chunk' AS kind, c.id AS id, c.id AS chunk_id, d.title AS title,
       d.source AS source, c.tenant_id AS tenant_id, c.scope AS scope, c.unit_id AS unit_id,
       c.heading AS heading, c.content AS text, NULL AS question, fused.score::float8 AS score,
       1 - (c.embedding <=> %(emb)s) AS similarity, fused.vrnk AS vector_rank,
       fused.frnk AS text_rank,
       -- A translation found counts for the word it translates, hence the cap at 1.
       least(1, coalesce((SELECT sum(w.idf) FROM words w
                          WHERE w.lexeme = ANY(tsvector_to_array(c.tsv)))
                / nullif((SELECT sum(w.idf) FROM words w WHERE w.lexeme = ANY(q.lexemes)), 0),
                0))::float8 AS coverage,
       0::float8 AS question_coverage, NULL::float8 AS evidence_similarity
FROM fused JOIN chunks c ON c.id = fused.id JOIN documents d ON d.id = c.document_id, q
UNION ALL
SELECT 'faq', f.id, f.chunk_id, d.title, d.source, f.tenant_id, f.scope, f.unit_id,
       f.question, f.answer, f.question,
       1 - (f.embedding <=> %(emb)s), 1 - (f.embedding <=> %(emb)s), NULL, NULL,
       (SELECT count(*) FROM unnest(q.lexemes) l
        WHERE l = ANY(tsvector_to_array(f.question_tsv)))::float8
           / greatest(cardinality(q.lexemes), 1),
       (SELECT count(*) FROM unnest(tsvector_to_array(f.question_tsv)) l
        WHERE l = ANY(q.lexemes))::float8
           / greatest(cardinality(tsvector_to_array(f.question_tsv)), 1),
       -- How near the entry's own question is to its passage: the guard's yardstick.
       1 - (f.embedding <=> fc.embedding)
FROM faq_candidates JOIN faq f ON f.id = faq_candidates.id
     JOIN documents d ON d.id = f.document_id LEFT JOIN chunks fc ON fc.id = f.chunk_id, q"""

# The searches, as the CTEs `ROWS` reads (`WITH {SEARCH} {ROWS}` is a whole statement).
SEARCH = f"""{_Q},
vec AS (
    SELECT id, row_number() OVER (ORDER BY dist, id) AS rnk FROM ({_VEC}) nearest
),
{_WORDS},
fts AS (
    SELECT id, row_number() OVER (ORDER BY rank DESC, id) AS rnk FROM (
        {_FTS}) matching
),
fused AS (
    SELECT id, sum(score) AS score, min(vrnk) AS vrnk, min(frnk) AS frnk FROM (
        SELECT id, %(w_vec)s / (%(rrf_k)s + rnk) AS score, rnk AS vrnk, NULL::bigint AS frnk
        FROM vec
        UNION ALL
        SELECT id, %(w_fts)s / (%(rrf_k)s + rnk), NULL, rnk FROM fts) ranked
    GROUP BY id ORDER BY sum(score) DESC, id LIMIT %(k)s
),
faq_candidates AS (
    ({_FAQ_VEC})
    UNION
    ({_FAQ_FTS})
)"""

_SQL = f"WITH {SEARCH}\n{ROWS}"

# The baseline's statements, one round trip each.
# Ranked as the one statement ranks them (its row_number orders).
_SEQUENTIAL_VEC = f"SELECT id FROM ({_VEC}) nearest ORDER BY dist, id"
_SEQUENTIAL_FTS = f"WITH {_Q}, {_WORDS} SELECT id FROM ({_FTS}) matching ORDER BY rank DESC, id"
_SEQUENTIAL_FAQ_VEC = _FAQ_VEC
_SEQUENTIAL_FAQ_FTS = f"WITH {_Q} {_FAQ_FTS}"
_SEQUENTIAL_ROWS = f"""WITH {_Q}, {_WORDS},
fused AS (SELECT * FROM unnest(%(ids)s::bigint[], %(scores)s::float8[], %(vrnks)s::bigint[],
                               %(frnks)s::bigint[]) AS t(id, score, vrnk, frnk)),
faq_candidates AS (SELECT DISTINCT unnest(%(faq_ids)s::bigint[]) AS id)
{ROWS}"""


class Ranking(TypedDict, total=False):
    """How a search ranks, each optional: `k` chunks from `candidates` per side, `faq_k` FAQ
    candidates per side, the fusion's `weights` (vector, full-text) and `rrf_k`, and whether
    the full-text side adds the glossary's translations of the question's words."""

    k: int
    candidates: int
    faq_k: int
    weights: tuple[float, float]
    glossary: bool
    rrf_k: float


def search_params(
    *, visibility: Visibility, text: str, embedding: Vectors, **ranking: Unpack[Ranking]
) -> dict[str, Any]:
    """The parameters `SEARCH` and `ROWS` read."""
    weights = ranking.get("weights", (1.0, 1.0))
    return {
        "tenant": visibility.tenant_id,
        "unit": visibility.unit_id,
        "text": text,
        "also": translations(text) if ranking.get("glossary", True) else "",
        "emb": np.asarray(embedding, dtype=np.float32),
        "candidates": ranking.get("candidates", 40),
        "k": ranking.get("k", 5),
        "faq_k": ranking.get("faq_k", 3),
        "w_vec": weights[0],
        "w_fts": weights[1],
        "rrf_k": float(ranking.get("rrf_k", RRF_K)),
    }


def read_hits(rows: Sequence[dict[str, Any]]) -> Retrieved:
    """The chunks and FAQ candidates among `rows` (named as `HIT_COLUMNS`), best first."""
    chunks: list[Hit] = []
    faqs: list[Hit] = []
    for row in rows:
        if row["kind"] is None:
            continue  # a row carrying none (see answers.lookup)
        hit = Hit(**{name: row[name] for name in HIT_COLUMNS})
        (chunks if hit.kind == "chunk" else faqs).append(hit)
    chunks.sort(key=lambda h: (-h.score, h.id))
    faqs.sort(key=lambda h: (-h.similarity, h.id))
    return Retrieved(chunks, faqs)


def named(description: Sequence[Any] | None, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows as dicts keyed by their column names."""
    names = [column.name for column in description or ()]
    return [dict(zip(names, row, strict=True)) for row in rows]


async def retrieve(
    conn: AsyncConn,
    *,
    visibility: Visibility,
    text: str,
    embedding: Vectors,
    sequential: bool = False,
    **ranking: Unpack[Ranking],
) -> Retrieved:
    """Top-k chunks and FAQ candidates this guest may see, in one statement.

    `ranking`'s `weights` (vector, full-text) scale each side of the fusion; (1, 0) or
    (0, 1) measure one side alone. `sequential` runs the searches as separate statements,
    one after another (the benchmark's baseline); the rows are the same.
    """
    params = search_params(visibility=visibility, text=text, embedding=embedding, **ranking)
    if sequential:
        params.update(await _search_one_by_one(conn, params))
        cur = await conn.execute(_SEQUENTIAL_ROWS, params)
    else:
        cur = await conn.execute(_SQL, params)
    return read_hits(named(cur.description, await cur.fetchall()))


async def _search_one_by_one(conn: AsyncConn, params: dict[str, Any]) -> dict[str, Any]:
    """The four searches as four round trips, fused here as the one statement fuses them."""
    ranked: list[list[int]] = []
    for statement in (_SEQUENTIAL_VEC, _SEQUENTIAL_FTS, _SEQUENTIAL_FAQ_VEC, _SEQUENTIAL_FAQ_FTS):
        cur = await conn.execute(statement, params)
        ranked.append([int(row[0]) for row in await cur.fetchall()])
    vec, fts, faq_vec, faq_fts = ranked
    scores: dict[int, float] = {}
    vrnk = {chunk: rank for rank, chunk in enumerate(vec, 1)}
    frnk = {chunk: rank for rank, chunk in enumerate(fts, 1)}
    for chunk, rank in vrnk.items():
        scores[chunk] = scores.get(chunk, 0.0) + params["w_vec"] / (params["rrf_k"] + rank)
    for chunk, rank in frnk.items():
        scores[chunk] = scores.get(chunk, 0.0) + params["w_fts"] / (params["rrf_k"] + rank)
    fused = sorted(scores, key=lambda c: (-scores[c], c))[: params["k"]]
    return {
        "ids": fused,
        "scores": [scores[c] for c in fused],
        "vrnks": [vrnk.get(c) for c in fused],
        "frnks": [frnk.get(c) for c in fused],
        "faq_ids": faq_vec + faq_fts,
    }
