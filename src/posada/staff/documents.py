"""The hotel's documents as its managers see them: the list, an upload ingested, a delete.

An upload runs the ingest `posada ingest` runs: its files are written to a temporary folder
laid out as the upload named them, and that folder is read and ingested by the same code
(`read_folder`, `ingest_folder`), so front matter, units and file:line errors behave alike.
It never prunes: documents the upload does not name stay as they are. Every statement on
a hotel's documents takes the tenant id of the staff session.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import anyio
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from posada.core.errors import NotFound
from posada.db.pool import AsyncConn
from posada.knowledge.ingest import (
    INGEST_LOCK,
    STAFF_FAQ_SOURCE,
    IngestReport,
    bump_knowledge_version,
    ingest_folder,
    read_folder,
    refresh_idf,
)
from posada.knowledge.markdown import DocumentError, ParsedDocument
from posada.providers.types import Embedder
from posada.tenants.service import Tenant

# One step of an upload: the event's name and its data (`file`, `progress`, `done`).
Event = tuple[str, dict[str, object]]


@dataclass(frozen=True)
class Document:
    """One stored document; `shared` for tourism content every hotel's guests see."""

    id: int
    source: str
    title: str
    scope: str
    unit: str | None  # the unit's slug, for a unit's private document
    chunks: int
    faqs: int
    updated_at: datetime
    shared: bool


# Counted per document through the chunks' and FAQ's document_id indexes. The staff's own
# FAQ document is left out: its entries are kept one by one (`staff.faq`).
_LIST = """SELECT d.id, d.source, d.title, d.scope, u.slug AS unit,
       (SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks,
       (SELECT count(*) FROM faq f WHERE f.document_id = d.id) AS faqs,
       d.updated_at, d.tenant_id IS NULL AS shared
FROM documents d LEFT JOIN units u ON u.id = d.unit_id
WHERE (d.tenant_id = %(tenant)s AND d.source <> %(staff)s)
   OR (%(shared)s AND d.tenant_id IS NULL)
ORDER BY shared, d.source"""


async def list_documents(conn: AsyncConn, *, tenant_id: int, shared: bool = True) -> list[Document]:
    """The hotel's documents by source, then (with `shared`) the tourism ones."""
    async with conn.cursor(row_factory=class_row(Document)) as cur:
        await cur.execute(_LIST, {"tenant": tenant_id, "shared": shared, "staff": STAFF_FAQ_SOURCE})
        return await cur.fetchall()


async def tenant_of(conn: AsyncConn, *, tenant_id: int) -> Tenant:
    """The session's hotel, as the ingest takes it."""
    async with conn.cursor(row_factory=class_row(Tenant)) as cur:
        await cur.execute(
            "SELECT id, slug, name, knowledge_version FROM tenants WHERE id = %s", (tenant_id,)
        )
        tenant = await cur.fetchone()
    if tenant is None:
        raise NotFound("this hotel no longer exists")
    return tenant


async def delete_document(conn: AsyncConn, *, tenant_id: int, document_id: int) -> int:
    """Delete one of the hotel's documents (its chunks and FAQ go with it); the new
    knowledge version. NotFound for another hotel's, shared tourism content, or the staff's
    FAQ document (its entries are deleted one by one)."""
    async with conn.transaction():
        # The ingest's lock: the word statistics are recounted below, as an ingest does.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (INGEST_LOCK,))
        cur = await conn.execute(
            """DELETE FROM documents WHERE id = %s AND tenant_id = %s AND source <> %s
               RETURNING id""",
            (document_id, tenant_id, STAFF_FAQ_SOURCE),
        )
        if await cur.fetchone() is None:
            raise NotFound(f"no document {document_id} in this hotel")
        await refresh_idf(conn)
        version = await bump_knowledge_version(conn, tenant_id=tenant_id)
    assert version is not None
    return version


async def upload_events(
    *,
    pool: AsyncConnectionPool[AsyncConn],
    embedder: Embedder,
    faq_embedder: Embedder,
    tenant: Tenant,
    documents: dict[str, bytes],
) -> AsyncGenerator[Event, None]:
    """Ingest the uploaded documents (checked by `uploads.unpack`) for `tenant`, adding or
    replacing them only: a `file` event for each, `progress` while embedding, then `done`."""
    with tempfile.TemporaryDirectory(prefix="posada-upload-") as folder:
        root = Path(folder)
        await asyncio.to_thread(_write, root, documents)
        parsed, failed, _ = await asyncio.to_thread(read_folder, root)
        for event in _file_events(parsed, failed):
            yield "file", event
        steps: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()
        ingest = asyncio.create_task(
            ingest_folder(
                pool=pool,
                embedder=embedder,
                faq_embedder=faq_embedder,
                root=root,
                tenant=tenant,
                prune=False,  # the upload adds and replaces; it is not the whole folder
                progress=lambda done, total: steps.put_nowait((done, total)),
            )
        )
        ingest.add_done_callback(lambda _: steps.put_nowait(None))
        try:
            while (step := await steps.get()) is not None:
                yield "progress", {"done": step[0], "total": step[1]}
            report = ingest.result()
        finally:
            if not ingest.done():
                ingest.cancel()  # the page left: the ingest's transaction rolls back
                with anyio.CancelScope(shield=True):
                    await asyncio.wait([ingest])
    yield "done", _summary(report, tenant)


def _write(root: Path, documents: dict[str, bytes]) -> None:
    for source, data in documents.items():
        path = root / source
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _file_events(
    parsed: list[ParsedDocument], failed: list[DocumentError]
) -> list[dict[str, object]]:
    """One event per file, by name: parsed (with any warnings) or failed (file:line)."""
    events: dict[str, dict[str, object]] = {
        doc.source: {"name": doc.source, "status": "parsed", "errors": [], "warnings": doc.warnings}
        for doc in parsed
    }
    for error in failed:
        event = events.setdefault(
            error.source, {"name": error.source, "status": "failed", "errors": [], "warnings": []}
        )
        event["status"] = "failed"
        errors = event["errors"]
        assert isinstance(errors, list)
        errors.append(error.message)
    return [events[name] for name in sorted(events)]


def _summary(report: IngestReport, tenant: Tenant) -> dict[str, object]:
    """The `done` event: what was stored and what failed (file:line), and the version now."""
    version = report.knowledge_version
    return {
        "documents": len(report.added) + len(report.updated),
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "chunks": report.chunks,
        "faqs": report.faqs,
        "failed": [error.message for error in report.failed],
        "warnings": report.warnings,
        "version": tenant.knowledge_version if version is None else version,
    }
