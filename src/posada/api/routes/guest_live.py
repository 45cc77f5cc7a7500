"""The guest's side of a handoff: "talk to reception", and the conversation's live events."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from posada.answers.phrases import phrase
from posada.api.chat_limits import AdmittedGuestDep, ChatLimitsDep, StreamSlot
from posada.api.deps import GuestDep, RuntimeDep
from posada.api.draining import Draining
from posada.api.openapi import BODY, COMMON, responses
from posada.api.routes.chat import EventStream
from posada.core.errors import NotAuthorized, NotFound, PosadaError, TooManyAttempts
from posada.core.language import LANGUAGES, Language
from posada.db.pool import Pool
from posada.guests.handoff import LIVE_ROWS, read_live, request_handoff
from posada.guests.live import Hub, hub_for
from posada.guests.tokens import GuestClaims

router = APIRouter(prefix="/api/guest", tags=["guest"])
log = logging.getLogger(__name__)

BIGINT = 2**63 - 1
KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing a quiet stream
KEEPALIVE = b": keep-alive\n\n"
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
State = Literal["waiting", "staff"]


class HandoffRequest(BaseModel):
    """Ask for a person in a conversation (null: a new one)."""

    conversation_id: int | None = Field(default=None, ge=1, le=BIGINT)
    language: Language | None = Field(
        default=None, description="the notice's language; else the Accept-Language header's"
    )


class MessageOut(BaseModel):
    """A message as the live streams and the handoff give it."""

    id: int
    role: Literal["guest", "assistant", "staff", "notice"]
    content: str
    created_at: datetime


class HandoffOut(BaseModel):
    """The conversation, its state, and the notice stored (null: a person already had it)."""

    conversation_id: int
    handoff: State
    message: MessageOut | None


def sse(event: str, data: object, *, event_id: int | None = None) -> bytes:
    """One Server-Sent Event; `event_id` becomes the `id:` a reconnect resumes from."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _language(header: str | None) -> Language:
    """The first of the guest page's languages the Accept-Language header names."""
    for part in (header or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        for language in LANGUAGES:
            if tag == language:
                return language
    return "en"


@router.post(
    "/handoff", responses=responses(NotAuthorized, NotFound, TooManyAttempts, *BODY, *COMMON)
)
async def handoff(
    body: HandoffRequest, guest: AdmittedGuestDep, runtime: RuntimeDep, request: Request
) -> HandoffOut:
    """Ask for a person ("talk to reception"): posada stays silent in the conversation
    until staff hands it back, and says so."""
    language = body.language or _language(request.headers.get("accept-language"))
    async with runtime.pool.connection() as conn:
        asked = await request_handoff(
            conn,
            guest=guest,
            conversation_id=body.conversation_id,
            notice=phrase("handoff_waiting", language),
        )
    notice = MessageOut.model_validate(asked.notice) if asked.notice else None
    return HandoffOut(conversation_id=asked.conversation_id, handoff=asked.state, message=notice)


@router.get(
    "/conversations/{conversation_id}/events",
    response_class=EventStream,
    responses={
        200: {
            "description": "`message` {id, role, content, created_at} (its `id:` the "
            "message's), `handoff` {state}, `error` {detail}; a comment every 15 s",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **responses(NotAuthorized, NotFound, TooManyAttempts, *COMMON, json_refs=True),
    },
)
async def conversation_events(
    request: Request,
    conversation_id: Annotated[int, Path(ge=1, le=BIGINT)],
    guest: GuestDep,
    runtime: RuntimeDep,
    limits: ChatLimitsDep,
    after: Annotated[int | None, Query(ge=0, le=BIGINT, description="a message id")] = None,
    last_event_id: Annotated[int | None, Header(ge=0, le=BIGINT)] = None,
) -> EventStream:
    """The conversation's messages newer than `after` (or `Last-Event-ID`; neither: from
    now) as they are stored, and its handoff state as it changes."""
    start = max((v for v in (after, last_event_id) if v is not None), default=None)
    # Checked before the response starts: a stale stay or a stranger's conversation is a
    # plain 401/404, not an event.
    async with runtime.pool.connection() as conn:
        await read_live(conn, guest=guest, conversation_id=conversation_id, after=None, also=[])
    slot = limits.open_live(("guest", guest.tenant_id, guest.reservation_id))
    hub = hub_for(runtime.pool, runtime.direct_url)
    events = _guest_events(runtime.pool, hub, guest, conversation_id, start)
    return live_stream(events, slot, request.app.state.draining)


def live_stream(events: AsyncIterator[bytes], slot: StreamSlot, draining: Draining) -> EventStream:
    """The events as a response holding `slot` until it ends, however it ends (also when
    the client left before the body started, or the process began to stop)."""

    async def held() -> AsyncIterator[bytes]:
        try:
            async for chunk in draining.until(events):
                yield chunk
        finally:
            slot.release()

    return EventStream(held(), headers=STREAM_HEADERS, background=BackgroundTask(slot.release))


async def _guest_events(
    pool: Pool, hub: Hub, guest: GuestClaims, conversation_id: int, after: int | None
) -> AsyncIterator[bytes]:
    sent: set[int] = set()
    state: str | None = "unsent"
    noted: list[int] = []
    async with hub.subscribe(tenant_id=guest.tenant_id, conversation_id=conversation_id) as sub:
        read = True
        while True:
            if read:
                try:
                    async with pool.connection() as conn:
                        live = await read_live(
                            conn, guest=guest, conversation_id=conversation_id, after=after,
                            also=noted,
                        )  # fmt: skip
                except PosadaError as exc:  # the stay ended, the conversation was erased
                    yield sse("error", {"detail": exc.message})
                    return
                after = live.latest if after is None else after
                for message in live.messages:
                    after = max(after, message["id"])
                    if message["id"] not in sent:
                        sent.add(message["id"])
                        yield sse("message", message, event_id=message["id"])
                if live.handoff != state:
                    state = live.handoff
                    yield sse("handoff", {"state": state})
                if len(live.messages) >= LIVE_ROWS:
                    noted = []
                    continue  # a long absence: read on before waiting
            notes = await sub.wait(KEEPALIVE_S)
            read = bool(notes)
            if not read:
                yield KEEPALIVE
            noted = [i for note in notes if note is not None for i in note.message_ids]
