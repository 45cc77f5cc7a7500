"""The guest chat endpoint."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Literal

import anyio
from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, field_validator
from starlette.background import BackgroundTask

from posada.answers.models import Answer, LlmAllowance, Meta, PipelineEvent
from posada.answers.phrases import phrase
from posada.answers.pipeline import answer_events, answer_question
from posada.api.chat_limits import AdmittedGuestDep, ChatLimits, ChatLimitsDep, StreamSlot
from posada.api.deps import RuntimeDep, TimingsVisible
from posada.api.openapi import BODY, COMMON, SSE_EVENT, responses
from posada.core import context as observe
from posada.core.errors import NotAuthorized, NotFound, PosadaError, TooManyAttempts
from posada.core.language import detect_language
from posada.guests.tokens import GuestClaims
from posada.knowledge.retrieval import Visibility
from posada.providers.llm import Delta

router = APIRouter(prefix="/api/guest", tags=["guest"])
log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000


class ChatRequest(BaseModel):
    """A guest's message, in a conversation or starting one."""

    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    conversation_id: int | None = Field(default=None, ge=1, le=2**63 - 1)

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("message must not be empty")
        if "\x00" in value:
            raise ValueError("message must not contain NUL characters")
        return value


class SourceOut(BaseModel):
    """A document an answer drew on."""

    title: str
    heading: str
    source: str
    scope: str


class UsageOut(BaseModel):
    """Tokens of an LLM answer; `estimated` when the provider did not say."""

    input_tokens: int
    output_tokens: int
    estimated: bool


class ChatResponse(BaseModel):
    """The answer and what produced it.

    How it was produced (`layer` onwards) is left out unless timings are exposed (dev, the
    benchmark, staff): a cache layer or a quick answer tells a guest that someone else
    asked the same question.
    """

    answer: str
    conversation_id: int
    sources: list[SourceOut]
    incomplete: bool
    # 'waiting' or 'staff': a person has the conversation and posada did not answer (the
    # answer is empty, or says a person will answer); null: posada answered.
    handoff: Literal["waiting", "staff"] | None
    # The stored answer, for the guest's thumbs (POST /api/guest/messages/{id}/feedback);
    # null when there is none to rate (posada kept silent, or the notice of a handoff).
    message_id: int | None
    layer: str | None = None
    model: str | None = None
    usage: UsageOut | None = None
    cost_usd: float | None = None
    prompt_tokens: dict[str, int] | None = None
    timings: dict[str, float] | None = None
    counters: dict[str, float | int] | None = None


_RAISES: tuple[type[PosadaError], ...] = (NotAuthorized, NotFound, TooManyAttempts, *BODY, *COMMON)


def _response(answer: Answer, *, visible: bool) -> ChatResponse:
    assert answer.conversation_id is not None
    sources = [SourceOut(**s.as_dict()) for s in answer.sources]
    if not visible:
        return ChatResponse(
            answer=answer.text,
            conversation_id=answer.conversation_id,
            sources=sources,
            incomplete=answer.incomplete,
            handoff=answer.handoff,
            message_id=answer.message_id,
        )
    usage = answer.usage
    # The request's figures (auth included): the stages were timed on them, and the total
    # is up to this moment, not only to the pipeline's end.
    stats = observe.current()
    timings = stats.timings() if stats is not None else answer.timings
    counters = stats.counters() if stats is not None else {}
    return ChatResponse(
        answer=answer.text,
        conversation_id=answer.conversation_id,
        layer=answer.layer,
        model=answer.model,
        sources=sources,
        usage=UsageOut(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            estimated=usage.estimated,
        )
        if usage
        else None,
        cost_usd=round(answer.cost_usd, 8),
        incomplete=answer.incomplete,
        handoff=answer.handoff,
        message_id=answer.message_id,
        prompt_tokens=answer.prompt_tokens,
        timings=timings,
        counters=counters,
    )


def _llm_allowance(limits: ChatLimits, guest: GuestClaims) -> LlmAllowance:
    async def allowed(conversation_id: int) -> bool:
        return await limits.llm_allowed(tenant_id=guest.tenant_id, conversation_id=conversation_id)

    return allowed


@router.post("/chat", response_model_exclude_unset=True, responses=responses(*_RAISES))
async def chat(
    body: ChatRequest,
    guest: AdmittedGuestDep,
    runtime: RuntimeDep,
    limits: ChatLimitsDep,
    visible: TimingsVisible,
) -> ChatResponse:
    """Answer a guest's question from their hotel's knowledge, all at once."""
    answer = await answer_question(
        runtime=runtime,
        visibility=Visibility(tenant_id=guest.tenant_id, unit_id=guest.unit_id),
        question=body.message,
        guest=guest,
        conversation_id=body.conversation_id,
        llm_allowed=_llm_allowance(limits, guest),
    )
    return _response(answer, visible=visible)


async def _stream(
    first: PipelineEvent,
    events: AsyncGenerator[PipelineEvent, None],
    *,
    slot: StreamSlot,
    visible: bool,
    question: str,
) -> AsyncIterator[bytes]:
    """The pipeline's events as SSE; the pipeline closed (shielded) and the slot freed at
    the end, however it ends."""
    try:
        event: PipelineEvent = first
        while True:
            if isinstance(event, Meta):
                meta: dict[str, object] = {"conversation_id": event.conversation_id}
                if visible:
                    meta |= {"layer": event.layer, "model": event.model}
                yield _sse("meta", meta)
            elif isinstance(event, Delta):
                yield _sse("delta", {"text": event.text})
            else:
                done = _response(event.answer, visible=visible)
                yield _sse(
                    "done", done.model_dump(mode="json", exclude={"answer"}, exclude_unset=True)
                )
                return
            event = await anext(events)
    except PosadaError as exc:
        yield _sse("error", {"detail": exc.message})
    except Exception:
        log.exception("streamed answer failed")
        # In the guest's language: a client may show it as the answer.
        language = detect_language(question)
        yield _sse("error", {"detail": phrase("error", language)})
    finally:
        # A guest who leaves cancels this task; close the pipeline now (it keeps the
        # partial answer and stops the upstream) rather than whenever it is collected.
        try:
            with anyio.CancelScope(shield=True):
                await events.aclose()
        finally:
            slot.release()


class EventStream(StreamingResponse):
    """Server-Sent Events (named so the OpenAPI document says `text/event-stream`)."""

    media_type = "text/event-stream"


def _sse(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@router.post(
    "/chat/stream",
    response_class=EventStream,
    responses={
        200: {
            "description": "`meta`, `delta`s, then `done` or `error`",
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        },
        **responses(*_RAISES, json_refs=True),
    },
)
async def chat_stream(
    body: ChatRequest,
    guest: AdmittedGuestDep,
    runtime: RuntimeDep,
    limits: ChatLimitsDep,
    visible: TimingsVisible,
) -> EventStream:
    """The same answer as Server-Sent Events: `meta`, `delta`s, then `done` (or `error`)."""
    # Held from here until the stream ends (or fails to start): 429 past the stay's bound.
    slot = limits.open_stream(guest)
    events = answer_events(
        runtime=runtime,
        visibility=Visibility(tenant_id=guest.tenant_id, unit_id=guest.unit_id),
        question=body.message,
        guest=guest,
        conversation_id=body.conversation_id,
        llm_allowed=_llm_allowance(limits, guest),
    )
    # Store the question (and check the conversation) before the response starts, so that
    # a wrong conversation or a stale token is a plain 404/401, not an event.
    try:
        first = await anext(events)
    except BaseException:
        slot.release()
        raise

    return EventStream(
        _stream(first, events, slot=slot, visible=visible, question=body.message),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        # Also when the body never started (the client left first).
        background=BackgroundTask(slot.release),
    )
