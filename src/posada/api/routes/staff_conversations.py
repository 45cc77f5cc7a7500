"""The hotel's conversations for its staff (a list in keyset pages, one conversation's
messages) and the report of what posada could not answer (managers)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from posada.api.deps import RuntimeDep
from posada.api.openapi import COMMON, responses
from posada.api.staff_auth import ManagerDep, StaffDep
from posada.core.errors import Forbidden, NotAuthorized, NotFound
from posada.staff.conversations import (
    ConversationItem,
    ConversationPage,
    Cursor,
    Filters,
    Layer,
    list_conversations,
    read_conversation,
)
from posada.staff.report import unanswered_report
from posada.tenants.service import SLUG_MAX, SLUG_PATTERN

router = APIRouter(prefix="/api/staff", tags=["staff"])
BIGINT = 2**63 - 1


class ConversationList(BaseModel):
    """A page of conversations, most recently active first; `next_before` asks for the
    next (null: the last page)."""

    conversations: list[ConversationItem]
    next_before: str | None


@router.get("/conversations", responses=responses(NotAuthorized, *COMMON))
async def staff_conversations(
    session: StaffDep,
    runtime: RuntimeDep,
    before: Annotated[str | None, Query(max_length=60, description="a page's next_before")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
    unit: Annotated[str | None, Query(max_length=SLUG_MAX, pattern=SLUG_PATTERN)] = None,
    attention: Annotated[
        bool | None, Query(description="true: only those needing attention; false: the rest")
    ] = None,
    layer: Annotated[Layer | None, Query(description="only those with a message of it")] = None,
) -> ConversationList:
    """The hotel's conversations, most recently active first, one page at a time."""
    cursor = Cursor.parse(before) if before else None
    async with runtime.pool.connection() as conn:
        items, following = await list_conversations(
            conn,
            tenant_id=session.member.tenant_id,
            filters=Filters(unit, attention, layer),
            before=cursor,
            limit=limit,
        )
    return ConversationList(conversations=items, next_before=str(following) if following else None)


@router.get(
    "/conversations/{conversation_id}", responses=responses(NotAuthorized, NotFound, *COMMON)
)
async def staff_conversation(
    conversation_id: Annotated[int, Path(ge=1, le=BIGINT)],
    session: StaffDep,
    runtime: RuntimeDep,
    before: Annotated[int | None, Query(ge=1, le=BIGINT, description="a message id")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ConversationPage:
    """A conversation's newest messages (older than `before`), oldest first in the page."""
    async with runtime.pool.connection() as conn:
        return await read_conversation(
            conn,
            tenant_id=session.member.tenant_id,
            conversation_id=conversation_id,
            before=before,
            limit=limit,
        )


class UnansweredGroup(BaseModel):
    """Rewordings of one question posada declined or whose answer was marked unhelpful."""

    question: str
    rewordings: list[str]
    count: int
    last_asked: datetime
    reasons: list[str]
    conversation_ids: list[int]
    unit: str | None


class UnansweredReport(BaseModel):
    """The groups, most asked first."""

    groups: list[UnansweredGroup]


@router.get("/reports/unanswered", responses=responses(NotAuthorized, Forbidden, *COMMON))
async def staff_unanswered(
    session: ManagerDep,
    runtime: RuntimeDep,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> UnansweredReport:
    """What guests asked that posada could not answer, rewordings counted once (managers)."""
    async with runtime.pool.connection() as conn:
        groups = await unanswered_report(
            conn, tenant_id=session.member.tenant_id, days=days, embedder=runtime.query_embedder
        )
    return UnansweredReport(
        groups=[
            UnansweredGroup(
                question=g.question,
                rewordings=g.rewordings,
                count=g.count,
                last_asked=g.last_asked,
                reasons=g.reasons,
                conversation_ids=g.conversation_ids,
                unit=g.unit,
            )
            for g in groups
        ]
    )
