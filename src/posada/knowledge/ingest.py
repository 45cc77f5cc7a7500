"""Ingest a folder of Markdown documents: parse, chunk, batch-embed, upsert.

Idempotent: an unchanged document (same content hash) is skipped, a changed one is
replaced in one transaction, and `prune` deletes documents no longer in the folder. A
broken file is reported by name and line and the rest still ingest; nothing already
stored is touched for it. Any change bumps the knowledge version of the tenants it
affects (all of them for shared tourism content), which invalidates their cached answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from posada.core import context as observe
from posada.core.errors import InvalidInput
from posada.db.pool import AsyncConn
from posada.knowledge.markdown import DocumentError, ParsedDocument, UnitInfo, parse_document
from posada.knowledge.versions import CHANNEL, notification
from posada.providers.embeddings import questions_of
from posada.providers.types import Embedder, Vectors
from posada.tenants.service import Tenant

EMBED_BATCH = 64
INGEST_LOCK = 727_0002
Progress = Callable[[int, int], None]  # (texts embedded so far, total)


@dataclass
class IngestReport:
    """What one ingest did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[DocumentError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chunks: int = 0
    faqs: int = 0
    units: list[str] = field(default_factory=list)
    knowledge_version: int | None = None
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        """Whether anything stored changed."""
        return bool(self.added or self.updated or self.deleted)


def read_folder(
    root: Path, *, unit_override: str | None = None, prune: bool = False
) -> tuple[list[ParsedDocument], list[DocumentError], set[str]]:
    """Parse every `.md` under `root` (or `root` itself); return (parsed, failed, all sources)."""
    if not root.exists():
        raise InvalidInput(f"{root}: no such file or folder")
    if prune and root.is_file():
        raise InvalidInput("--prune needs the folder holding all of the documents, not one file")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*.md") if p.is_file())
    base = root.parent if root.is_file() else root
    parsed: list[ParsedDocument] = []
    failed: list[DocumentError] = []
    sources: set[str] = set()
    for path in files:
        source = path.relative_to(base).as_posix()
        sources.add(source)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            failed.append(DocumentError(source, 1, f"cannot read as UTF-8 text: {exc}"))
            continue
        try:
            parsed.append(parse_document(source, text, unit_override=unit_override))
        except DocumentError as exc:
            failed.append(exc)
    return parsed, failed, sources


async def ingest_folder(
    *,
    pool: AsyncConnectionPool[AsyncConn],
    embedder: Embedder,
    root: Path,
    tenant: Tenant | None,
    unit_slug: str | None = None,
    prune: bool = False,
    progress: Progress | None = None,
    faq_embedder: Embedder | None = None,
) -> IngestReport:
    """Ingest `root` for `tenant` (None: shared tourism content).

    `embedder` embeds the passages; `faq_embedder` (else `embedder`'s question role,
    `questions_of`) the FAQ questions, which are matched with guests' questions (e5 reads
    a question with its "query: " prefix, and compares two questions so best).
    """
    started = time.perf_counter()
    if tenant is None and unit_slug is not None:
        raise InvalidInput("--unit applies to a hotel's documents, not to tourism content")
    report = IngestReport()
    parsed, report.failed, sources = await asyncio.to_thread(
        read_folder, root, unit_override=unit_slug, prune=prune
    )
    tenant_id = tenant.id if tenant else None
    async with pool.connection() as conn:
        if unit_slug is not None and tenant_id is not None:
            await _require_unit(conn, tenant_id=tenant_id, slug=unit_slug)
        stored = await _stored_hashes(conn, tenant_id=tenant_id)
    todo = _to_store(parsed, stored=stored, shared=tenant is None, report=report)
    with observe.acting_for(tenant_id):  # the usage ledger charges this hotel
        # `is None`, not `or`: an embedder behind a cache has a length, and empty it is falsy.
        questions = questions_of(embedder) if faq_embedder is None else faq_embedder
        vectors = await _embed_all(embedder, questions, todo, progress)

    async with pool.connection() as conn, conn.transaction():
        # One ingest writes at a time: two at once would race on the same documents and
        # on the shared word statistics. Held until this transaction ends.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (INGEST_LOCK,))
        stored = await _stored_hashes(conn, tenant_id=tenant_id)
        for doc in todo:
            try:
                async with conn.transaction():  # a savepoint: one bad document spoils nothing
                    await _replace_document(
                        conn, doc=doc, tenant_id=tenant_id, vectors=vectors, model=embedder.model
                    )
            except Exception as exc:
                report.failed.append(DocumentError(doc.source, 1, f"could not be stored: {exc}"))
                continue
            _count_stored(report, doc=doc, replaced=doc.source in stored)
        if prune:
            report.deleted = await _prune(conn, tenant_id=tenant_id, keep=sources, stored=stored)
        if report.changed:
            await refresh_idf(conn)
            report.knowledge_version = await bump_knowledge_version(conn, tenant_id=tenant_id)
    report.seconds = time.perf_counter() - started
    return report


def _to_store(
    parsed: list[ParsedDocument], *, stored: dict[str, str], shared: bool, report: IngestReport
) -> list[ParsedDocument]:
    """The documents that changed, in the order to store them; the rest go to `report`."""
    todo: list[ParsedDocument] = []
    for doc in parsed:
        if shared and (doc.manual_for or doc.accommodation):
            report.failed.append(
                DocumentError(doc.source, 1, "unit documents belong to a hotel: use --tenant")
            )
        elif stored.get(doc.source) == doc.content_hash:
            report.unchanged.append(doc.source)
        else:
            todo.append(doc)
            report.warnings += doc.warnings
    # Accommodation descriptions first, so that manuals find their unit's proper name.
    todo.sort(key=lambda d: (d.accommodation is None, d.source))
    return todo


def _count_stored(report: IngestReport, *, doc: ParsedDocument, replaced: bool) -> None:
    (report.updated if replaced else report.added).append(doc.source)
    report.chunks += len(doc.chunks)
    report.faqs += len(doc.faqs)
    unit = doc.accommodation or doc.manual_for
    if unit is not None and unit.slug not in report.units:
        report.units.append(unit.slug)


async def _require_unit(conn: AsyncConn, *, tenant_id: int, slug: str) -> None:
    cur = await conn.execute(
        "SELECT 1 FROM units WHERE tenant_id = %s AND slug = %s", (tenant_id, slug)
    )
    if await cur.fetchone() is None:
        raise InvalidInput(
            f"unit {slug!r} does not exist for this hotel; ingest its description first"
        )


async def _stored_hashes(conn: AsyncConn, *, tenant_id: int | None) -> dict[str, str]:
    cur = await conn.execute(
        "SELECT source, content_hash FROM documents WHERE tenant_id IS NOT DISTINCT FROM %s",
        (tenant_id,),
    )
    return {str(source): str(digest) for source, digest in await cur.fetchall()}


async def _embed_all(
    embedder: Embedder,
    faq_embedder: Embedder,
    docs: list[ParsedDocument],
    progress: Progress | None,
) -> dict[str, tuple[Vectors, Vectors]]:
    """Chunk and FAQ-question vectors per document, embedded in batches across documents."""
    chunk_texts = [chunk.embedding_text for doc in docs for chunk in doc.chunks]
    faq_texts = [faq.question for doc in docs for faq in doc.faqs]
    total = len(chunk_texts) + len(faq_texts)

    async def embed(model: Embedder, texts: list[str], done_before: int) -> Vectors:
        parts: list[Vectors] = [np.zeros((0, model.dimensions), np.float32)]
        for start in range(0, len(texts), EMBED_BATCH):
            parts.append(await model.embed_batch(texts[start : start + EMBED_BATCH]))
            if progress is not None:
                progress(done_before + min(start + EMBED_BATCH, len(texts)), total)
        return np.concatenate(parts)

    chunk_vectors = await embed(embedder, chunk_texts, 0)
    faq_vectors = await embed(faq_embedder, faq_texts, len(chunk_texts))
    out: dict[str, tuple[Vectors, Vectors]] = {}
    chunk_at = faq_at = 0
    for doc in docs:
        n_chunks, n_faqs = len(doc.chunks), len(doc.faqs)
        out[doc.source] = (
            chunk_vectors[chunk_at : chunk_at + n_chunks],
            faq_vectors[faq_at : faq_at + n_faqs],
        )
        chunk_at += n_chunks
        faq_at += n_faqs
    return out


async def _upsert_unit(conn: AsyncConn, *, tenant_id: int, unit: UnitInfo, describes: bool) -> int:
    """The unit's id; a description updates its name and details, a manual only ensures it."""
    if describes:
        cur = await conn.execute(
            """INSERT INTO units (tenant_id, slug, name, unit_type, capacity, details)
               VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (tenant_id, slug) DO UPDATE SET name = excluded.name,
                   unit_type = excluded.unit_type, capacity = excluded.capacity,
                   details = excluded.details
               RETURNING id""",
            (tenant_id, unit.slug, unit.name, unit.unit_type, unit.capacity, Jsonb(unit.details)),
        )
    else:
        cur = await conn.execute(
            """INSERT INTO units (tenant_id, slug, name) VALUES (%s, %s, %s)
               ON CONFLICT (tenant_id, slug) DO UPDATE SET slug = excluded.slug
               RETURNING id""",
            (tenant_id, unit.slug, unit.name),
        )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _replace_document(
    conn: AsyncConn,
    *,
    doc: ParsedDocument,
    tenant_id: int | None,
    vectors: dict[str, tuple[Vectors, Vectors]],
    model: str,
) -> None:
    scope, unit_id = ("tourism" if tenant_id is None else "hotel"), None
    if tenant_id is not None and doc.accommodation is not None:
        await _upsert_unit(conn, tenant_id=tenant_id, unit=doc.accommodation, describes=True)
    if tenant_id is not None and doc.manual_for is not None:
        scope = "unit"
        unit_id = await _upsert_unit(
            conn, tenant_id=tenant_id, unit=doc.manual_for, describes=False
        )
    await conn.execute(
        "DELETE FROM documents WHERE tenant_id IS NOT DISTINCT FROM %s AND source = %s",
        (tenant_id, doc.source),
    )
    cur = await conn.execute(
        """INSERT INTO documents (tenant_id, scope, unit_id, source, title, language,
                                  content_hash, metadata)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            tenant_id,
            scope,
            unit_id,
            doc.source,
            doc.title,
            doc.language,
            doc.content_hash,
            Jsonb(doc.metadata),
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    owner = (row[0], tenant_id, scope, unit_id)  # the columns every chunk and FAQ row repeats
    chunk_vectors, faq_vectors = vectors[doc.source]
    chunk_ids = await _insert_chunks(conn, owner=owner, doc=doc, vectors=chunk_vectors, model=model)
    async with conn.cursor() as cur:
        await cur.executemany(
            """INSERT INTO faq (document_id, tenant_id, scope, unit_id, chunk_id, question,
                                answer, embedding, embedding_model)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            [
                (*owner, chunk_ids[f.chunk_ordinal], f.question, f.answer, v, model)
                for f, v in zip(doc.faqs, faq_vectors, strict=True)
            ],
        )


async def _insert_chunks(
    conn: AsyncConn,
    *,
    owner: tuple[object, int | None, str, int | None],
    doc: ParsedDocument,
    vectors: Vectors,
    model: str,
) -> list[object]:
    """Insert the document's chunks; their ids, in ordinal order (FAQ rows point at them)."""
    async with conn.cursor() as cur:
        await cur.executemany(
            """INSERT INTO chunks (document_id, tenant_id, scope, unit_id, ordinal, heading,
                                   content, embedding, embedding_model)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            [
                (*owner, c.ordinal, c.heading, c.content, v, model)
                for c, v in zip(doc.chunks, vectors, strict=True)
            ],
            returning=True,
        )
        chunk_ids: list[object] = []
        while True:
            got = await cur.fetchone()
            assert got is not None
            chunk_ids.append(got[0])
            if not cur.nextset():
                break
    return chunk_ids


# The hotel's FAQ entries written by its staff (`staff.faq`): a document no file can be
# (a file's source ends in `.md`), so it is never replaced, and never pruned.
STAFF_FAQ_SOURCE = "staff:faq"


async def _prune(
    conn: AsyncConn, *, tenant_id: int | None, keep: set[str], stored: dict[str, str]
) -> list[str]:
    gone = sorted(set(stored) - keep - {STAFF_FAQ_SOURCE})
    if gone:
        await conn.execute(
            "DELETE FROM documents WHERE tenant_id IS NOT DISTINCT FROM %s AND source = ANY(%s)",
            (tenant_id, gone),
        )
    return gone


async def refresh_idf(conn: AsyncConn) -> None:
    """Recount how rare each word is, inside the ingest's transaction."""
    await conn.execute("DELETE FROM lexeme_idf")  # not TRUNCATE: readers keep reading
    await conn.execute(
        """INSERT INTO lexeme_idf (lexeme, idf)
           SELECT word, ln((total + 1.0) / (ndoc + 0.5))
           FROM ts_stat('SELECT tsv FROM chunks'), (SELECT count(*) AS total FROM chunks) n"""
    )


async def bump_knowledge_version(conn: AsyncConn, *, tenant_id: int | None) -> int | None:
    """Bump this tenant's knowledge version, or every tenant's for tourism content.

    In the same transaction the older versions' cached answers are deleted and every posada
    process is told (`pg_notify`, delivered at commit), so that no cache serves them again.
    """
    cur = await conn.execute(
        """UPDATE tenants SET knowledge_version = knowledge_version + 1
           WHERE %(t)s::bigint IS NULL OR id = %(t)s RETURNING id, knowledge_version""",
        {"t": tenant_id},
    )
    rows = await cur.fetchall()
    await conn.execute(
        """DELETE FROM answer_cache a USING tenants t
           WHERE t.id = a.tenant_id AND a.knowledge_version < t.knowledge_version
             AND (%(t)s::bigint IS NULL OR a.tenant_id = %(t)s)""",
        {"t": tenant_id},
    )
    changes = None if tenant_id is None else [(int(i), int(v)) for i, v in rows]
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, notification(changes)))
    return int(rows[0][1]) if tenant_id is not None and rows else None
