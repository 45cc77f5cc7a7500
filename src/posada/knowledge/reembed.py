"""Which model embedded the stored vectors, and embedding them again with another.

Every chunk and FAQ entry records the model that embedded it (`embedding_model`, migration
0008); a question's vector is only comparable with vectors of the same model. posada
refuses to start on a database holding another model's vectors (`require_embedding_model`,
from `Runtime.open` and `posada serve`) and names the command that mends it, `posada
reembed`: `reembed` here embeds every chunk (a passage) and FAQ question (a question) of
another model again, hotel by hotel and tourism, in batches each committed on its own, so
that a run stopped part-way continues where it stopped: the rows it did already name the
new model. The transaction of the last batch also drops the semantic answer cache's
entries (they hold question vectors of the old model; they refill) and bumps the knowledge
version, so that every process forgets the answers found with the old vectors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from psycopg_pool import AsyncConnectionPool

from posada.core import context as observe
from posada.core.errors import ConfigurationError
from posada.db.pool import AsyncConn
from posada.knowledge.ingest import bump_knowledge_version
from posada.knowledge.markdown import chunk_embedding_text
from posada.providers.embeddings import questions_of
from posada.providers.types import Embedder
from posada.tenants.service import Tenant

BATCH = 64
Progress = Callable[[int, int], None]  # (rows embedded so far, rows to embed)

# `embedding_model <> m` written as two ranges, so that the btree index on the column finds
# the few rows of another model (or none) without reading the whole table.
_OTHER = "(embedding_model < %(model)s OR embedding_model > %(model)s)"
# Every hotel's rows and tourism's when %(tenant)s is NULL; else that hotel's alone.
_SCOPE = "(%(tenant)s::bigint IS NULL OR tenant_id = %(tenant)s)"

_ANY_OTHER = f"""SELECT EXISTS (SELECT 1 FROM chunks WHERE {_OTHER} AND {_SCOPE})
    OR EXISTS (SELECT 1 FROM faq WHERE {_OTHER} AND {_SCOPE})"""

_OTHERS_BY_TENANT = f"""SELECT s.tenant_id, t.slug, s.embedding_model,
       count(*) FILTER (WHERE s.kind = 'chunk'), count(*) FILTER (WHERE s.kind = 'faq')
FROM (SELECT tenant_id, embedding_model, 'chunk' AS kind FROM chunks WHERE {_OTHER}
      UNION ALL
      SELECT tenant_id, embedding_model, 'faq' FROM faq WHERE {_OTHER}) s
LEFT JOIN tenants t ON t.id = s.tenant_id
WHERE %(tenant)s::bigint IS NULL OR s.tenant_id = %(tenant)s
GROUP BY s.tenant_id, t.slug, s.embedding_model
ORDER BY t.slug NULLS FIRST, s.embedding_model"""

_ANY_OF_MODEL = """SELECT EXISTS (SELECT 1 FROM chunks WHERE embedding_model = %(model)s)
    OR EXISTS (SELECT 1 FROM faq WHERE embedding_model = %(model)s)"""

# One batch of one hotel's (or tourism's) rows still of another model, and its update.
_CHUNKS_TODO = f"""SELECT id, heading, content FROM chunks
    WHERE tenant_id IS NOT DISTINCT FROM %(owner)s AND {_OTHER} ORDER BY id LIMIT %(n)s"""
_FAQ_TODO = f"""SELECT id, question FROM faq
    WHERE tenant_id IS NOT DISTINCT FROM %(owner)s AND {_OTHER} ORDER BY id LIMIT %(n)s"""
_CHUNK_UPDATE = """UPDATE chunks SET embedding = %s, embedding_model = %s
    WHERE id = %s AND tenant_id IS NOT DISTINCT FROM %s"""
_FAQ_UPDATE = """UPDATE faq SET embedding = %s, embedding_model = %s
    WHERE id = %s AND tenant_id IS NOT DISTINCT FROM %s"""

_DROP_CACHED = f"DELETE FROM answer_cache WHERE {_SCOPE}"


@dataclass(frozen=True)
class OtherModel:
    """Rows of one hotel (or tourism) embedded by a model other than the configured one."""

    tenant_id: int | None
    owner: str  # the hotel's slug, or "tourism"
    model: str
    chunks: int
    faqs: int


async def other_models(
    conn: AsyncConn, *, model: str, tenant_id: int | None = None
) -> list[OtherModel]:
    """Rows not embedded by `model`, by hotel (tourism first); one hotel's if `tenant_id`."""
    params = {"model": model, "tenant": tenant_id}
    cur = await conn.execute(_ANY_OTHER, params)
    row = await cur.fetchone()
    if row is None or not row[0]:
        return []  # the common case, answered from the index alone
    cur = await conn.execute(_OTHERS_BY_TENANT, params)
    return [
        OtherModel(tid, slug or "tourism", str(name), int(chunks), int(faqs))
        for tid, slug, name, chunks, faqs in await cur.fetchall()
    ]


async def require_embedding_model(conn: AsyncConn, *, model: str) -> None:
    """Raise ConfigurationError, saying what to run, if any stored vector is of another model.

    Answering with them would compare a question's vector with another model's vectors:
    wrong passages, FAQ answers to other questions, all with no error anywhere. So posada
    does not start (a hotel operator sees it at once, and the message says what to do),
    rather than serve answers that look fine and are not.
    """
    others = await other_models(conn, model=model)
    if not others:
        return
    cur = await conn.execute(_ANY_OF_MODEL, {"model": model})
    row = await cur.fetchone()
    raise ConfigurationError(mismatch_message(model, others, mixed=bool(row and row[0])))


def mismatch_message(model: str, others: list[OtherModel], *, mixed: bool) -> str:
    """What the operator reads when the database's vectors are of another model."""
    shown = [f"{o.owner}: {o.chunks} chunks, {o.faqs} FAQ entries by {o.model}" for o in others]
    if len(shown) > 5:
        shown[5:] = [f"and {len(shown) - 5} more"]
    message = (
        f"this database holds vectors embedded by another model than the configured one, "
        f"{model} ({'; '.join(shown)}). Questions would be compared with vectors of another "
        f"model, so posada does not start. Run `posada reembed` with this configuration to "
        f"embed them again with {model} (stopped, it continues where it stopped when run "
        f"again), then start posada"
    )
    names = sorted({o.model for o in others})
    if len(names) == 1 and not mixed:
        message += f"; or set POSADA_EMBEDDING_MODEL={names[0]} to serve the stored vectors"
    return message + "."


@dataclass
class ReembedReport:
    """What one `reembed` did."""

    model: str
    chunks: int = 0
    faqs: int = 0
    batches: int = 0
    left: int = 0  # rows still of another model: the run stopped early; run it again
    dropped_answers: int = 0  # semantic answer cache entries deleted
    bumped: list[str] = field(default_factory=list)  # hotels whose knowledge version rose
    seconds: float = 0.0

    @property
    def finished(self) -> bool:
        """Whether every row in scope is now of the model."""
        return self.left == 0


async def reembed(
    *,
    pool: AsyncConnectionPool[AsyncConn],
    embedder: Embedder,
    faq_embedder: Embedder | None = None,
    tenant: Tenant | None = None,
    batch_size: int = BATCH,
    max_batches: int | None = None,
    progress: Progress | None = None,
) -> ReembedReport:
    """Embed again, with `embedder`'s model, every row of another model.

    `tenant`: that hotel's rows only; None: every hotel's and the shared tourism rows.
    `faq_embedder` (else `embedder`'s question role) embeds FAQ questions, as at ingest.
    `max_batches` stops the run after that many batches (what was done stays done).
    """
    started = time.perf_counter()
    model = embedder.model
    tenant_id = tenant.id if tenant else None
    report = ReembedReport(model)
    # `is None`, not `or`: an embedder behind a cache has a length, and an empty one is falsy.
    question_embedder = questions_of(embedder) if faq_embedder is None else faq_embedder
    async with pool.connection() as conn:
        todo = await other_models(conn, model=model, tenant_id=tenant_id)
    total = sum(o.chunks + o.faqs for o in todo)
    for owner in {o.tenant_id: o for o in todo}.values():
        with observe.acting_for(owner.tenant_id):  # the usage ledger charges this hotel
            for table in ("chunks", "faq"):
                while True:
                    if max_batches is not None and report.batches >= max_batches:
                        return await _ended(pool, report, scope=tenant_id, started=started)
                    done = await _one_batch(
                        pool,
                        embedder if table == "chunks" else question_embedder,
                        table=table,
                        owner=owner.tenant_id,
                        scope=tenant_id,
                        size=batch_size,
                        report=report,
                    )
                    if not done:
                        break
                    if progress is not None:
                        progress(report.chunks + report.faqs, total)
    return await _ended(pool, report, scope=tenant_id, started=started)


async def _ended(
    pool: AsyncConnectionPool[AsyncConn],
    report: ReembedReport,
    *,
    scope: int | None,
    started: float,
) -> ReembedReport:
    """The report, with the rows still of another model counted (an ingest may have run)."""
    async with pool.connection() as conn:
        others = await other_models(conn, model=report.model, tenant_id=scope)
    report.left = sum(o.chunks + o.faqs for o in others)
    report.seconds = time.perf_counter() - started
    return report


async def _one_batch(
    pool: AsyncConnectionPool[AsyncConn],
    embedder: Embedder,
    *,
    table: str,
    owner: int | None,
    scope: int | None,
    size: int,
    report: ReembedReport,
) -> int:
    """Embed and store one batch of `owner`'s rows of `table`; how many (0: none left)."""
    model = embedder.model
    params = {"model": model, "owner": owner, "n": size}
    async with pool.connection() as conn:
        cur = await conn.execute(_CHUNKS_TODO if table == "chunks" else _FAQ_TODO, params)
        rows = await cur.fetchall()
    if not rows:
        return 0
    if table == "chunks":
        texts = [chunk_embedding_text(str(heading), str(content)) for _, heading, content in rows]
    else:
        texts = [str(question) for _, question in rows]
    vectors = await embedder.embed_batch(texts)
    async with pool.connection() as conn, conn.transaction():
        async with conn.cursor() as cur:
            await cur.executemany(
                _CHUNK_UPDATE if table == "chunks" else _FAQ_UPDATE,
                [(v, model, row[0], owner) for row, v in zip(rows, vectors, strict=True)],
            )
        report.batches += 1
        if table == "chunks":
            report.chunks += len(rows)
        else:
            report.faqs += len(rows)
        cur = await conn.execute(_ANY_OTHER, {"model": model, "tenant": scope})
        left = await cur.fetchone()
        if left is not None and not left[0]:
            # The last batch: in its transaction, so that no run can end with every row
            # done and the old answers still cached.
            await _forget_old_answers(conn, scope=scope, report=report)
    return len(rows)


async def _forget_old_answers(conn: AsyncConn, *, scope: int | None, report: ReembedReport) -> None:
    """Drop the semantic cache's entries and bump the knowledge version, for `scope`."""
    cur = await conn.execute(_DROP_CACHED, {"tenant": scope})
    report.dropped_answers = cur.rowcount
    await bump_knowledge_version(conn, tenant_id=scope)
    cur = await conn.execute(
        "SELECT slug FROM tenants WHERE %(tenant)s::bigint IS NULL OR id = %(tenant)s "
        "ORDER BY slug",
        {"tenant": scope},
    )
    report.bumped = [str(slug) for (slug,) in await cur.fetchall()]
