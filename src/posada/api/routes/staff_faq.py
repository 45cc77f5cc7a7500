"""The hotel's FAQ entries from the staff page (managers): listed with those from its
documents; the staff's own added, changed and deleted. Document entries are changed in
their document (422 here)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from posada.api.deps import RuntimeDep
from posada.api.openapi import BODY, COMMON, responses
from posada.api.staff_auth import ManagerDep
from posada.core.errors import Forbidden, NotAuthorized, NotFound
from posada.runtime import Runtime
from posada.staff.faq import Embedders, FaqEntry, add_faq, change_faq, delete_faq, list_faq
from posada.tenants.service import SLUG_MAX, SLUG_PATTERN

router = APIRouter(prefix="/api/staff/faq", tags=["staff"])
BIGINT = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=BIGINT)]


class FaqPage(BaseModel):
    """A page of entries by id; `next_after` asks for the next (null: the last page)."""

    entries: list[FaqEntry]
    next_after: int | None


class NewEntry(BaseModel):
    """An entry: for the whole hotel, or for one unit's guests when `unit` is given."""

    question: str = Field(min_length=1, max_length=500)
    answer: str = Field(min_length=1, max_length=4000)
    unit: str | None = Field(default=None, max_length=SLUG_MAX, pattern=SLUG_PATTERN)


class EntryChange(BaseModel):
    """What to change; the rest stays."""

    question: str | None = Field(default=None, min_length=1, max_length=500)
    answer: str | None = Field(default=None, min_length=1, max_length=4000)


def _embedders(runtime: Runtime) -> Embedders:
    # The roles ingest uses: passages, and questions as the CLI's ingest embeds them.
    return Embedders(passages=runtime.embedder, questions=runtime.query_embedder)


@router.get("", responses=responses(NotAuthorized, Forbidden, *COMMON))
async def staff_faq(
    session: ManagerDep,
    runtime: RuntimeDep,
    after: Annotated[int | None, Query(ge=1, le=BIGINT, description="a page's next_after")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> FaqPage:
    """The hotel's FAQ entries, its documents' and its staff's (`editable`), by id."""
    async with runtime.pool.connection() as conn:
        entries, following = await list_faq(
            conn, tenant_id=session.member.tenant_id, after=after, limit=limit
        )
    return FaqPage(entries=entries, next_after=following)


@router.post("", status_code=201, responses=responses(NotAuthorized, Forbidden, *BODY, *COMMON))
async def staff_add_faq(body: NewEntry, session: ManagerDep, runtime: RuntimeDep) -> dict[str, int]:
    """Add an entry; guests are answered from it at once (the knowledge version moves)."""
    async with runtime.pool.connection() as conn:
        entry_id = await add_faq(
            conn,
            tenant_id=session.member.tenant_id,
            question=body.question,
            answer=body.answer,
            unit=body.unit,
            embedders=_embedders(runtime),
        )
    return {"id": entry_id}


@router.put(
    "/{faq_id}",
    status_code=204,
    responses=responses(NotAuthorized, Forbidden, NotFound, *BODY, *COMMON),
)
async def staff_change_faq(
    faq_id: Id, body: EntryChange, session: ManagerDep, runtime: RuntimeDep
) -> Response:
    """Change a staff entry's question or answer; a document's entry is 422."""
    async with runtime.pool.connection() as conn:
        await change_faq(
            conn,
            tenant_id=session.member.tenant_id,
            faq_id=faq_id,
            question=body.question,
            answer=body.answer,
            embedders=_embedders(runtime),
        )
    return Response(status_code=204)


@router.delete(
    "/{faq_id}", status_code=204, responses=responses(NotAuthorized, Forbidden, NotFound, *COMMON)
)
async def staff_delete_faq(faq_id: Id, session: ManagerDep, runtime: RuntimeDep) -> Response:
    """Delete a staff entry; a document's entry is 422."""
    async with runtime.pool.connection() as conn:
        await delete_faq(conn, tenant_id=session.member.tenant_id, faq_id=faq_id)
    return Response(status_code=204)
