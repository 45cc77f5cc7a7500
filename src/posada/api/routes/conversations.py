"""A guest's own conversations, keyset-paginated."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.exceptions import RequestValidationError

from posada.api.deps import GuestDep, RuntimeDep
from posada.api.openapi import COMMON, responses
from posada.core.errors import NotAuthorized, NotFound
from posada.guests.conversations import list_conversations, list_messages

router = APIRouter(prefix="/api/guest/conversations", tags=["guest"])

BIGINT = 2**63 - 1


@router.get("", responses=responses(NotAuthorized, *COMMON))
async def conversations(
    guest: GuestDep,
    runtime: RuntimeDep,
    before: Annotated[int | None, Query(ge=1, le=BIGINT)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """The guest's conversations, newest first; pass `next_before` as `before` for more."""
    async with runtime.pool.connection() as conn:
        items = await list_conversations(conn, guest=guest, before=before, limit=limit)
    return {"items": items, "next_before": items[-1]["id"] if len(items) == limit else None}


@router.get("/{conversation_id}", responses=responses(NotAuthorized, NotFound, *COMMON))
async def conversation(
    conversation_id: Annotated[int, Path(ge=1, le=BIGINT)],
    guest: GuestDep,
    runtime: RuntimeDep,
    after: Annotated[int | None, Query(ge=0, le=BIGINT, description="0: from the first")] = None,
    before: Annotated[int | None, Query(ge=1, le=BIGINT)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """A page of one conversation's messages, oldest first within it: the newest `limit`
    (older ones: pass `next_before` as `before`), or those after `after` (pass
    `next_after` for more); `handoff` says whether a person has it."""
    if after is not None and before is not None:
        raise RequestValidationError(
            [{"loc": ("query", "before"), "msg": "give after or before, not both"}]
        )
    async with runtime.pool.connection() as conn:
        page = await list_messages(
            conn,
            guest=guest,
            conversation_id=conversation_id,
            after=after,
            before=before,
            limit=limit,
        )
    items, full = page.messages, len(page.messages) == limit
    return {
        "id": conversation_id,
        "handoff": page.handoff,
        "messages": items,
        "next_after": items[-1]["id"] if full and after is not None else None,
        "next_before": items[0]["id"] if full and after is None else None,
    }
