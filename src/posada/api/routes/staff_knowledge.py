"""The hotel's knowledge from the staff page: its documents listed, uploaded (Markdown files
or zips of them, ingested as `posada ingest` does, with progress as Server-Sent Events) and
deleted. Managers and owners only."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from posada.api.deps import RuntimeDep
from posada.api.openapi import BODY, COMMON, responses
from posada.api.routes.chat import EventStream
from posada.api.staff_auth import ManagerDep
from posada.core.errors import Forbidden, InvalidInput, NotAuthorized, NotFound, PosadaError
from posada.staff.documents import (
    Document,
    Event,
    delete_document,
    list_documents,
    tenant_of,
    upload_events,
)
from posada.staff.uploads import MAX_FILES, UploadedFile, unpack

router = APIRouter(prefix="/api/staff", tags=["staff"])
log = logging.getLogger(__name__)

_UPLOAD_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["file", "progress", "done", "error"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "file `{name, status: parsed|failed, errors, warnings}`, progress "
            "`{done, total}`, done `{documents, added, updated, unchanged, chunks, faqs, "
            "failed, warnings, version}`, error `{detail}`",
        },
    },
}
_UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["files"],
                "properties": {
                    "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                },
            }
        }
    },
}


class DocumentList(BaseModel):
    """The hotel's documents, then the shared tourism ones (`shared`: read-only)."""

    documents: list[Document]


@router.get("/documents", responses=responses(NotAuthorized, Forbidden, *COMMON))
async def staff_documents(session: ManagerDep, runtime: RuntimeDep) -> DocumentList:
    """The hotel's documents with their chunks, FAQ entries and last change."""
    async with runtime.pool.connection() as conn:
        rows = await list_documents(conn, tenant_id=session.member.tenant_id)
    return DocumentList(documents=rows)


@router.post(
    "/documents",
    response_class=EventStream,
    openapi_extra={"requestBody": _UPLOAD_BODY},
    responses={
        200: {
            "description": "a `file` per document, `progress`es, then `done` (or `error`)",
            "content": {"text/event-stream": {"schema": _UPLOAD_EVENT}},
        },
        **responses(NotAuthorized, Forbidden, *BODY, *COMMON, json_refs=True),
    },
)
async def staff_upload_documents(
    request: Request, session: ManagerDep, runtime: RuntimeDep
) -> EventStream:
    """Ingest uploaded .md files and .zip archives of them (adding or replacing, never
    pruning); a malformed upload is a 422 naming the file, before anything runs."""
    documents = unpack(await _files(request))
    async with runtime.pool.connection() as conn:
        tenant = await tenant_of(conn, tenant_id=session.member.tenant_id)
    events = upload_events(
        pool=runtime.pool,
        embedder=runtime.embedder,
        faq_embedder=runtime.query_embedder,
        tenant=tenant,
        documents=documents,
    )
    return EventStream(
        _stream(events), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@router.delete(
    "/documents/{document_id}",
    status_code=204,
    responses=responses(NotAuthorized, Forbidden, NotFound, *COMMON),
)
async def staff_delete_document(
    document_id: Annotated[int, Path(ge=1, le=2**63 - 1)], session: ManagerDep, runtime: RuntimeDep
) -> Response:
    """Delete one of the hotel's documents with its chunks and FAQ entries."""
    async with runtime.pool.connection() as conn:
        await delete_document(conn, tenant_id=session.member.tenant_id, document_id=document_id)
    return Response(status_code=204)


async def _files(request: Request) -> list[UploadedFile]:
    """The request's file parts; InvalidInput if it is not a multipart form of files."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise InvalidInput("send the files as multipart/form-data")
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=20)
    except HTTPException as exc:  # Starlette's answer to a malformed form
        raise InvalidInput(f"the upload is not a readable form: {exc.detail}") from exc
    try:
        return [
            UploadedFile(value.filename or "", await value.read())
            for _, value in form.multi_items()
            if isinstance(value, UploadFile)
        ]
    finally:
        await form.close()


async def _stream(events: AsyncGenerator[Event, None]) -> AsyncIterator[bytes]:
    """The upload's events as SSE; a failure is an `error` event (the ingest's one
    transaction rolled back), and the ingest is stopped if the page leaves."""
    async with aclosing(events):
        try:
            async for name, data in events:
                yield _sse(name, data)
        except PosadaError as exc:
            yield _sse("error", {"detail": exc.message})
        except Exception:
            log.exception("a staff upload failed")
            yield _sse("error", {"detail": "the upload could not be stored; nothing was changed"})


def _sse(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n".encode()
