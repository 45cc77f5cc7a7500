"""Serving an answer: from the exact or semantic cache, or from an LLM; and storing it.

The pipeline (`answers.pipeline`) decides where the answer comes from; these write it
out as events and store it, each in one round trip.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing

from posada.answers.caching import EXACT_LAYERS, Reuse, keep_exact
from posada.answers.extractive import Draft
from posada.answers.generation import Answering, Exhausted, Generated, generate
from posada.answers.lookup import Lookup
from posada.answers.models import Answer, Done, Meta, PipelineEvent, Source
from posada.answers.phrases import phrase
from posada.answers.prompt import build_prompt
from posada.answers.routing import choose_tier
from posada.answers.steps import Steps
from posada.cache.answers import CachedAnswer, ExactCache
from posada.cache.semantic import CacheEntry, Candidate, count_hit
from posada.core import context as observe
from posada.core.config import Settings
from posada.core.context import RequestStats
from posada.core.language import Language
from posada.db.pool import Pool
from posada.guests.conversations import record_exchange
from posada.guests.handoff import request_handoff
from posada.guests.tokens import GuestClaims
from posada.knowledge.retrieval import Hit, Visibility
from posada.providers.llm import ChatMessage, ChatModel, Delta, cost_usd
from posada.providers.registry import Tier, fallback_order

log = logging.getLogger(__name__)


def cacheable(answer: Answer) -> CachedAnswer | None:
    """The answer as the caches keep it, if it is one to keep."""
    if answer.layer not in EXACT_LAYERS or not answer.text.strip():
        return None
    sources = [s.as_dict() for s in answer.sources]
    return CachedAnswer(answer.text, answer.layer, answer.model, sources)


async def serve_exact(
    pool: Pool,
    steps: Steps,
    timer: RequestStats,
    guest: GuestClaims | None,
    conversation_id: int | None,
    question: str,
    cached: CachedAnswer,
) -> AsyncGenerator[PipelineEvent, None]:
    """An exact-cache hit: one round trip stores the question and the answer, nothing else."""
    sources = [Source(**s) for s in cached.sources]
    answer = Answer(cached.text, "exact", sources, conversation_id=conversation_id)
    if guest is not None:
        with timer.stage("store"):
            async with pool.connection() as conn:
                exchanged = await record_exchange(
                    conn,
                    guest=guest,
                    conversation_id=conversation_id,
                    question=question,
                    answer=cached.text,
                    layer="exact",
                    sources=cached.sources,
                    timings=dict(timer.stages),
                )
            await steps.after("store")
        answer.conversation_id = exchanged.conversation_id
        answer.message_id = exchanged.answer_id
        if exchanged.handoff is not None:
            async for event in serve_held(timer, answer.conversation_id, exchanged.handoff):
                yield event
            return
    yield Meta(answer.conversation_id, "exact", None)
    yield Delta(cached.text)
    answer.timings = timer.timings()
    yield Done(answer)


async def serve_held(
    timer: RequestStats, conversation_id: int | None, handoff: str
) -> AsyncGenerator[PipelineEvent, None]:
    """A question stored while a person has the conversation: no answer from posada."""
    answer = Answer("", "handoff", [], conversation_id=conversation_id, handoff=handoff)
    yield Meta(conversation_id, "handoff", None)
    answer.timings = timer.timings()
    yield Done(answer)


async def serve_handoff(
    pool: Pool,
    timer: RequestStats,
    guest: GuestClaims | None,
    conversation_id: int | None,
    question: str,
    language: Language,
) -> AsyncGenerator[PipelineEvent, None]:
    """The guest asked for a person: the conversation waits for one, and posada says so
    (unless a person already has it: then it says nothing more)."""
    notice = phrase("handoff_waiting", language)
    answer = Answer(notice, "handoff", [], conversation_id=conversation_id, handoff="waiting")
    if guest is not None:
        with timer.stage("store"):
            async with pool.connection() as conn:
                asked = await request_handoff(
                    conn,
                    guest=guest,
                    conversation_id=conversation_id,
                    notice=notice,
                    question=question,
                )
        answer.conversation_id, answer.handoff = asked.conversation_id, asked.state
        if asked.notice is None:
            answer.text = ""
    yield Meta(answer.conversation_id, "handoff", None)
    if answer.text:
        yield Delta(answer.text)
    answer.timings = timer.timings()
    yield Done(answer)


async def serve_semantic(
    pool: Pool,
    exact: ExactCache | None,
    steps: Steps,
    timer: RequestStats,
    guest: GuestClaims | None,
    visibility: Visibility,
    reuse: Reuse,
    conversation_id: int | None,
    retrieved: Lookup,
    reused: Candidate,
) -> AsyncGenerator[PipelineEvent, None]:
    """A semantic-cache hit: the cached answer, stored as this conversation's, and kept in
    the `exact` cache (None: it is off) under this wording too."""
    sources = [Source(**s) for s in reused.sources]
    answer = Answer(reused.answer, "semantic", sources, conversation_id=conversation_id)
    yield Meta(conversation_id, "semantic", None)
    yield Delta(reused.answer)
    with timer.stage("store"):
        if guest is not None and conversation_id is not None:
            await store(pool, steps, guest, answer, dict(timer.stages), hit=reused.id)
        else:
            async with pool.connection() as conn:
                await count_hit(conn, tenant_id=visibility.tenant_id, entry_id=reused.id)
        if exact is not None and retrieved.version is not None:
            kept = CachedAnswer(reused.answer, reused.layer, reused.model, reused.sources)
            await keep_exact(
                exact,
                visibility=visibility,
                reuse=reuse,
                version=retrieved.version,
                scopes=[reused.scope],
                answer=kept,
            )
    answer.timings = timer.timings()
    yield Done(answer)


async def serve_llm(
    settings: Settings,
    chat_models: dict[Tier, ChatModel],
    answer: Answer,
    draft: Draft,
    question: str,
    passages: list[Hit],
    history: list[ChatMessage],
    hotel: str,
    language: Language,
) -> AsyncGenerator[PipelineEvent, None]:
    prompt = build_prompt(
        hotel=hotel,
        question=question,
        passages=passages,
        history=history,
        budget=settings.prompt_budget_tokens,
        language=language,
        max_passages=settings.context.passages,
        around=settings.context.window,
    )
    answer.prompt_tokens = prompt.tokens
    tier: Tier = "large" if settings.tier_routing == "large" else choose_tier(question)
    models = fallback_order(chat_models, tier)
    generation = generate(
        models,
        prompt.messages,
        max_tokens=settings.llm_max_output_tokens,
        request_timeout=settings.llm_timeout_s,
        total_timeout=settings.llm_total_timeout_s,
    )
    async with aclosing(generation) as events:
        async for event in events:
            if isinstance(event, Answering):
                answer.layer, answer.model = "llm", event.model.model
                answer.sources = [Source.of(h) for h in prompt.passages]
                yield Meta(answer.conversation_id, "llm", event.model.model)
            elif isinstance(event, Delta):
                answer.text += event.text
                yield event
            elif isinstance(event, Generated):
                answer.usage = event.usage
                answer.cost_usd = cost_usd(event.model, event.usage)
                answer.incomplete = event.incomplete
                observe.record_llm(
                    model=event.model.model,
                    input_tokens=event.usage.input_tokens,
                    output_tokens=event.usage.output_tokens,
                    cost_usd=answer.cost_usd,
                )
            elif isinstance(event, Exhausted):
                log.warning(
                    "no LLM answered (%s); answering extractively", "; ".join(event.failures)
                )
                answer.text = draft.text
                yield Meta(answer.conversation_id, answer.layer, None)
                yield Delta(draft.text)


async def store(
    pool: Pool,
    steps: Steps,
    guest: GuestClaims,
    answer: Answer,
    timings: dict[str, float],
    *,
    entry: CacheEntry | None = None,
    hit: int | None = None,
) -> int | None:
    """Store the answer (and the cache entry it makes, or the reuse it was), noting its id
    on it; some steps also say how many messages there are now."""
    assert answer.conversation_id is not None
    async with pool.connection() as conn:
        stored = await steps.store_answer(
            conn,
            tenant_id=guest.tenant_id,
            conversation_id=answer.conversation_id,
            content=answer.text,
            layer=answer.layer,
            sources=[s.as_dict() for s in answer.sources],
            timings=timings,
            model=answer.model,
            input_tokens=answer.usage.input_tokens if answer.usage else None,
            output_tokens=answer.usage.output_tokens if answer.usage else None,
            cost_usd=answer.cost_usd if answer.usage else None,
            incomplete=answer.incomplete,
            cache_entry=entry,
            cache_hit=hit,
        )
    answer.message_id = stored.message_id
    return stored.count


async def store_left(
    pool: Pool, steps: Steps, guest: GuestClaims, answer: Answer, timings: dict[str, float]
) -> None:
    """Store an answer the guest left; nobody is waiting, so a failure is only logged."""
    try:
        await store(pool, steps, guest, answer, timings)
    except Exception:
        log.exception(
            "could not keep the interrupted answer of conversation %s", answer.conversation_id
        )
