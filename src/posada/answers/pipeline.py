"""The answering pipeline: store the question, embed once, one lookup, answer, store it.

Each guest question costs one local embedding and one database round trip for all
lookups; storing the question before answering means nothing is lost if answering fails.
The answer comes from the FAQ when an entry asks the same question, from an LLM (the
cheapest tier that fits, with fallbacks) when one is configured and passages are
relevant, and otherwise from the extractive responder. `answer_events` streams it;
`answer_question` collects it. The stages a profile may do its own way (the benchmark's
baseline does them naively) are its `Steps` (`answers.steps`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing

from posada.answers.caching import find_exact
from posada.answers.extractive import Draft
from posada.answers.handoff import asks_for_person
from posada.answers.models import Answer, Done, LlmAllowance, Meta, PipelineEvent
from posada.answers.serving import (
    serve_exact,
    serve_handoff,
    serve_held,
    serve_llm,
    serve_semantic,
    store_left,
)
from posada.answers.steps import steps_for
from posada.answers.turn import Turn, draft, keep, look_up, semantic_hit, store_and_embed
from posada.core import context as observe
from posada.guests.tokens import GuestClaims
from posada.knowledge.retrieval import Hit, Visibility
from posada.providers.llm import ChatModel, Delta
from posada.providers.registry import Tier
from posada.runtime import Runtime
from posada.tenants.budgets import models_within_budget

log = logging.getLogger(__name__)
# Stores of interrupted answers run on after the request is gone; keep them referenced.
_BACKGROUND: set[asyncio.Task[None]] = set()


async def answer_events(
    *,
    runtime: Runtime,
    visibility: Visibility,
    question: str,
    guest: GuestClaims | None = None,
    conversation_id: int | None = None,
    hotel: str = "the hotel",
    llm_allowed: LlmAllowance | None = None,
) -> AsyncGenerator[PipelineEvent, None]:
    """Meta, then the answer's text as Deltas, then Done; stores it when a guest asks.

    `llm_allowed` caps a conversation's LLM answers: refused, the guest gets the FAQ or
    extractive answer instead (never an error). The layer that answered is counted into
    the request's figures (answers by layer).
    """
    events = _events(runtime, visibility, question, guest, conversation_id, hotel, llm_allowed)
    async with aclosing(events) as stream:
        async for event in stream:
            if isinstance(event, Done):
                observe.record_answer(event.answer.layer)
            yield event


async def _events(
    runtime: Runtime,
    visibility: Visibility,
    question: str,
    guest: GuestClaims | None,
    conversation_id: int | None,
    hotel: str,
    llm_allowed: LlmAllowance | None,
) -> AsyncGenerator[PipelineEvent, None]:
    turn = Turn(
        runtime, steps_for(runtime), observe.current_or_new(), visibility, question, guest,
        conversation_id, hotel,
    )  # fmt: skip
    steps, timer = turn.steps, turn.timer
    first = await _without_lookup(turn)
    if first is not None:
        async for event in first:
            yield event
        return
    await store_and_embed(turn)
    if turn.handoff is not None:
        async for event in serve_held(timer, turn.conversation_id, turn.handoff):
            yield event
        return
    retrieved = await look_up(turn)
    reused = semantic_hit(turn, retrieved)
    if reused is not None:
        exact_cache = runtime.caches.answers if runtime.settings.answer_cache else None
        events = serve_semantic(
            runtime.pool, exact_cache, steps, timer, guest, visibility, turn.reuse,
            turn.conversation_id, retrieved, reused,
        )  # fmt: skip
        async for event in events:
            yield event
        return
    answer, offline, passages = draft(turn, retrieved)
    use_llm = bool(runtime.chat_models and offline.layer != "faq" and passages)
    # Over its month's budget a hotel may have the small tier alone, or no LLM at all.
    models = await models_within_budget(
        pool=runtime.pool, tenant_id=visibility.tenant_id, settings=runtime.settings.budget,
        models=runtime.chat_models if use_llm else {},
    )  # fmt: skip
    if models and llm_allowed is not None and turn.conversation_id is not None:
        use_llm = await llm_allowed(turn.conversation_id)
        if not use_llm:
            models = {}
            log.info(
                "conversation %s is over its LLM cap; answering without one", turn.conversation_id
            )
    async with aclosing(_write(turn, answer, offline, passages, models)) as events:
        async for event in events:
            yield event
    await keep(turn, answer, retrieved)
    answer.timings = timer.timings()
    yield Done(answer)


async def _without_lookup(turn: Turn) -> AsyncGenerator[PipelineEvent, None] | None:
    """The events of an answer that needs no lookup, if there is one: a request for a
    person (posada then stays silent), or an exact-cache hit."""
    runtime, timer, question = turn.runtime, turn.timer, turn.question
    guest, conversation_id = turn.guest, turn.conversation_id
    if asks_for_person(question):
        return serve_handoff(runtime.pool, timer, guest, conversation_id, question, turn.language)
    if not (runtime.settings.answer_cache and turn.reuse.allowed):
        return None
    with timer.stage("exact_cache"):
        cached = await find_exact(runtime.caches, turn.visibility, turn.reuse)
    observe.record_cache("exact", hit=cached is not None)
    if cached is None:
        return None
    return serve_exact(runtime.pool, turn.steps, timer, guest, conversation_id, question, cached)


async def _write(
    turn: Turn, answer: Answer, draft: Draft, passages: list[Hit], models: dict[Tier, ChatModel]
) -> AsyncGenerator[PipelineEvent, None]:
    """The answer's events: from an LLM of `models` when there is one, else the draft."""
    try:
        with turn.timer.stage("generate"):
            if models:
                llm = serve_llm(
                    turn.settings, models, answer, draft, turn.question,
                    passages, turn.history, turn.hotel, turn.language,
                )  # fmt: skip
                async with aclosing(llm) as events:
                    async for event in events:
                        yield event
            else:
                answer.text = draft.text
                yield Meta(turn.conversation_id, answer.layer, None)
                yield Delta(draft.text)
            await turn.steps.after("generate")
    except (asyncio.CancelledError, GeneratorExit):
        # The guest left: keep what was written, marked incomplete, and stop generating.
        if turn.guest is not None and turn.conversation_id is not None:
            answer.incomplete = True
            timings = dict(turn.timer.stages)
            left = store_left(turn.runtime.pool, turn.steps, turn.guest, answer, timings)
            task = asyncio.ensure_future(left)
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)
        raise


async def answer_question(
    *,
    runtime: Runtime,
    visibility: Visibility,
    question: str,
    guest: GuestClaims | None = None,
    conversation_id: int | None = None,
    hotel: str = "the hotel",
    llm_allowed: LlmAllowance | None = None,
) -> Answer:
    """The whole answer at once (the non-streaming endpoint and `posada ask`)."""
    async for event in answer_events(
        runtime=runtime,
        visibility=visibility,
        question=question,
        guest=guest,
        conversation_id=conversation_id,
        hotel=hotel,
        llm_allowed=llm_allowed,
    ):
        if isinstance(event, Done):
            return event.answer
    raise AssertionError("the pipeline ended without an answer")
