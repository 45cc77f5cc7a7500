"""The staff's side of a handoff: reply to a guest, hand the conversation back to posada,
and the hotel's conversations live (every message and handoff change, as it happens)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response
from pydantic import BaseModel, Field, field_validator

from posada.answers.phrases import phrase
from posada.api.chat_limits import ChatLimitsDep
from posada.api.deps import RuntimeDep
from posada.api.openapi import BODY, COMMON, responses
from posada.api.routes.chat import MAX_MESSAGE_CHARS, EventStream
from posada.api.routes.guest_live import BIGINT, KEEPALIVE, KEEPALIVE_S, live_stream, sse
from posada.api.staff_auth import StaffDep
from posada.core.errors import Forbidden, NotAuthorized, NotFound, TooManyAttempts
from posada.db.pool import Pool
from posada.guests.handoff import (
    LIVE_ROWS,
    hand_back,
    latest_message_id,
    read_hotel_live,
    reply,
)
from posada.guests.live import Hub, hub_for
from posada.staff.sessions import Session, find_session

router = APIRouter(prefix="/api/staff", tags=["staff"])
log = logging.getLogger(__name__)
ConversationId = Annotated[int, Path(ge=1, le=BIGINT)]


class ReplyRequest(BaseModel):
    """What the staff member writes to the guest."""

    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("text must not be empty")
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        return value


class ReplyOut(BaseModel):
    """The stored reply."""

    id: int
    created_at: datetime


@router.post(
    "/conversations/{conversation_id}/reply",
    status_code=201,
    responses=responses(NotAuthorized, Forbidden, NotFound, *BODY, *COMMON),
)
async def staff_reply(
    conversation_id: ConversationId, body: ReplyRequest, session: StaffDep, runtime: RuntimeDep
) -> ReplyOut:
    """Reply to the guest; a person has the conversation now, posada stays silent in it."""
    async with runtime.pool.connection() as conn:
        stored = await reply(
            conn,
            tenant_id=session.member.tenant_id,
            staff_id=session.member.id,
            conversation_id=conversation_id,
            text=body.text,
        )
    return ReplyOut(**stored)


@router.post(
    "/conversations/{conversation_id}/handback",
    status_code=204,
    responses=responses(NotAuthorized, Forbidden, NotFound, *COMMON),
)
async def staff_handback(
    conversation_id: ConversationId, session: StaffDep, runtime: RuntimeDep
) -> Response:
    """posada answers the conversation again (the guest is told, in their language)."""
    async with runtime.pool.connection() as conn:
        await hand_back(
            conn,
            tenant_id=session.member.tenant_id,
            conversation_id=conversation_id,
            notice_for=lambda language: phrase("handoff_back", language),
        )
    return Response(status_code=204)


@router.get(
    "/events",
    response_class=EventStream,
    responses={
        200: {
            "description": "`conversation` {id, handoff, message {id, role, content, "
            "created_at}} (its `id:` the message's), `error` {detail}; a comment every 15 s",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **responses(NotAuthorized, TooManyAttempts, *COMMON, json_refs=True),
    },
)
async def staff_events(
    request: Request,
    session: StaffDep,
    runtime: RuntimeDep,
    limits: ChatLimitsDep,
    last_event_id: Annotated[int | None, Header(ge=0, le=BIGINT)] = None,
) -> EventStream:
    """The hotel's conversations as they get messages or change hands (from now, or after
    `Last-Event-ID` when an EventSource reconnects)."""
    slot = limits.open_live(("staff", session.member.id))
    hub = hub_for(runtime.pool, runtime.direct_url)
    events = _hotel_events(runtime.pool, hub, session, last_event_id)
    return live_stream(events, slot, request.app.state.draining)


async def _still_in(pool: Pool, session: Session) -> bool:
    """Whether the session still holds (not logged out, expired, or its member removed)."""
    async with pool.connection() as conn:
        return await find_session(conn, token=session.token) is not None


async def _hotel_events(
    pool: Pool, hub: Hub, session: Session, after: int | None
) -> AsyncIterator[bytes]:
    tenant_id = session.member.tenant_id
    sent: set[int] = set()
    noted: list[int] = []
    async with hub.subscribe(tenant_id=tenant_id) as sub:
        if after is None:
            async with pool.connection() as conn:
                after = await latest_message_id(conn)
        yield KEEPALIVE  # the headers and a first line now: the page knows it is connected
        read = True
        while True:
            # Checked before each read and each keep-alive: a member logged out or removed
            # stops seeing the hotel's conversations within a keep-alive's time.
            if not await _still_in(pool, session):
                yield sse("error", {"detail": "the session has ended: log in again"})
                return
            if read:
                async with pool.connection() as conn:
                    events = await read_hotel_live(
                        conn, tenant_id=tenant_id, after=after, also=noted
                    )
                for event in events:
                    message_id = event.message["id"]
                    after = max(after, message_id)
                    if message_id in sent:
                        continue
                    sent.add(message_id)
                    data = {"id": event.conversation_id, "handoff": event.handoff,
                            "message": event.message}  # fmt: skip
                    yield sse("conversation", data, event_id=message_id)
                if len(sent) > 4 * LIVE_ROWS:
                    # A tab left open for weeks: keep only the ids a late commit could
                    # still bring (a repeat is harmless: the page keys messages by id).
                    sent = {i for i in sent if i > after - LIVE_ROWS}
                if len(events) >= LIVE_ROWS:
                    noted = []
                    continue
            notes = await sub.wait(KEEPALIVE_S)
            read = bool(notes)
            if not read:
                yield KEEPALIVE
            noted = [i for note in notes if note is not None for i in note.message_ids]
