"""The answering pipeline: store the question, embed once, one lookup, answer, store it.

Each guest question costs one local embedding and one database round trip for all
lookups; storing the question before answering means nothing is lost if answering fails.
The answer comes from the FAQ when an entry asks the same question, from an LLM (the
cheapest tier that fits, with fallbacks) when one is configured and passages are
relevant, and otherwise from the extractive responder. `answer_events` streams it;
`answer_question` collects it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from typing import Any

from posada.answers.baseline import (
    complete,
    intent_prompt,
    read_transcript,
    rewrite_prompt,
    store_summary,
    summary_prompt,
)
from posada.answers.caching import (
    EXACT_LAYERS,
    Reuse,
    find_exact,
    keep_exact,
    reuse_of,
    semantic_entry,
)
from posada.answers.extractive import Draft, is_relevant, respond
from posada.answers.generation import Answering, Exhausted, Generated, generate
from posada.answers.prompt import build_prompt
from posada.answers.routing import choose_tier, is_follow_up, retrieval_text
from posada.cache.answers import CachedAnswer
from posada.cache.semantic import CacheEntry, count_hit, pick_cached, store_entry
from posada.core import context as observe
from posada.core.config import Settings
from posada.core.language import detect_language
from posada.guests.conversations import record_answer, record_exchange, record_guest_message
from posada.guests.stepwise import record_answer_stepwise, record_guest_message_stepwise
from posada.guests.tokens import GuestClaims
from posada.knowledge.retrieval import Hit, Retrieved, Visibility, retrieve
from posada.providers.llm import ChatMessage, Delta, Usage, cost_usd
from posada.providers.registry import Tier, fallback_order
from posada.providers.types import Vectors
from posada.runtime import Runtime

log = logging.getLogger(__name__)
# Stores of interrupted answers run on after the request is gone; keep them referenced.
_BACKGROUND: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class Source:
    """Where an answer came from."""

    title: str
    heading: str
    source: str
    scope: str

    @classmethod
    def of(cls, hit: Hit) -> Source:
        """The source of a retrieved row."""
        return cls(hit.title, hit.heading, hit.source, hit.scope)

    def as_dict(self) -> dict[str, Any]:
        """JSON form, as stored and returned."""
        return {
            "title": self.title,
            "heading": self.heading,
            "source": self.source,
            "scope": self.scope,
        }


@dataclass
class Answer:
    """What the guest gets back, and what it cost."""

    text: str
    layer: str
    sources: list[Source]
    timings: dict[str, float] = field(default_factory=dict)
    conversation_id: int | None = None
    model: str | None = None
    usage: Usage | None = None
    cost_usd: float = 0.0
    incomplete: bool = False
    prompt_tokens: dict[str, int] = field(default_factory=dict)  # estimated, by part


@dataclass(frozen=True)
class Meta:
    """First event: where the answer will come from."""

    conversation_id: int | None
    layer: str
    model: str | None


@dataclass(frozen=True)
class Done:
    """Last event: the whole answer."""

    answer: Answer


PipelineEvent = Meta | Delta | Done
# Asked (with the conversation's id) before an LLM answers: may it? No: answer without one.
LlmAllowance = Callable[[int], Awaitable[bool]]


class StageTimer:
    """Milliseconds per pipeline stage, in the order they first ran; also the request's."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._started = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as (part of) stage `name`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            ms = (time.perf_counter() - start) * 1000
            self.timings[name] = round(self.timings.get(name, 0.0) + ms, 3)
            observe.add_stage(name, ms)

    def finish(self) -> dict[str, float]:
        """The stages and their total."""
        self.timings["total"] = round((time.perf_counter() - self._started) * 1000, 3)
        return self.timings


def fusion_weights(question: str, settings: Settings) -> tuple[float, float]:
    """(vector, full-text) weights for this question's language."""
    if detect_language(question) == "es":
        return (settings.vector_weight_es, 1.0)
    return (settings.vector_weight_en, 1.0)


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
    extractive answer instead (never an error).
    """
    timer = StageTimer()
    pool, settings = runtime.pool, runtime.settings
    history: list[ChatMessage] = []
    reuse = reuse_of(question)

    if settings.answer_cache and reuse.allowed:
        with timer.stage("exact_cache"):
            cached = await find_exact(runtime, visibility, reuse)
        observe.record_cache("exact", hit=cached is not None)
        if cached is not None:
            async for event in _serve_exact(
                runtime, timer, guest, conversation_id, question, cached
            ):
                yield event
            return

    async def embed(text: str) -> Vectors:
        with timer.stage("embed"):
            row: Vectors = (await runtime.query_embedder.embed_batch([text]))[0]
            for _ in range(settings.embedding_calls - 1):
                # The baseline: one more call per vector size, for the same text.
                await runtime.query_embedder.embed_batch([text])
            await _pause(settings, "embed")
        return row

    # A question that stands alone is embedded while it is being stored; a follow-up
    # waits for the turn before it, which it is searched with.
    rewrites = settings.follow_up_rewrite == "llm"
    early = None if is_follow_up(question) or rewrites else asyncio.ensure_future(embed(question))
    if guest is not None:
        try:
            with timer.stage("store"):
                async with pool.connection() as conn:
                    record = (
                        record_guest_message_stepwise
                        if settings.conversation_store == "stepwise"
                        else record_guest_message
                    )
                    recorded = await record(
                        conn,
                        guest=guest,
                        conversation_id=conversation_id,
                        content=question,
                        history_turns=settings.history_turns,
                    )
        except BaseException:
            if early is not None:
                early.cancel()
            raise
        conversation_id, hotel, history = (
            recorded.conversation_id,
            recorded.hotel,
            recorded.history,
        )
    search = retrieval_text(question, history)
    if rewrites and history and runtime.chat_models:
        with timer.stage("rewrite"):
            search = await _ask_aside(runtime, rewrite_prompt(question, history)) or search
    embedding = await early if early is not None else await embed(search)
    if settings.intent_detection == "llm" and runtime.chat_models:
        with timer.stage("intent"):
            await _ask_aside(runtime, intent_prompt(question))
    language = detect_language(question)
    semantic = settings.semantic_cache and reuse.allowed and search == question
    with timer.stage("lookup"):
        async with pool.connection() as conn:
            retrieved = await retrieve(
                conn,
                visibility=visibility,
                text=search,
                embedding=embedding,
                k=settings.retrieval_k,
                candidates=settings.retrieval_candidates,
                weights=fusion_weights(question, settings),
                sequential=settings.lookup == "sequential",
                cache=semantic,
                language=language,
                glossary=settings.fulltext_glossary,
                rrf_k=settings.rrf_k,
            )
        await _pause(settings, "lookup")
    if semantic:
        reused = pick_cached(
            question=question,
            candidates=retrieved.cached,
            chunks=retrieved.chunks,
            min_similarity=settings.semantic_min_similarity,
            evidence_within=settings.reuse_evidence_within,
            max_evidence_drop=settings.reuse_max_evidence_drop,
        )
        observe.record_cache("semantic", hit=reused is not None)
        if reused is not None:
            events = _serve_semantic(
                runtime, timer, guest, visibility, reuse, conversation_id, retrieved, reused
            )
            async for event in events:
                yield event
            return
    if search != question or not settings.faq_answers:
        # A follow-up searched with the turn before it; an FAQ entry matching that pair
        # would answer the earlier question, not this one.
        retrieved = Retrieved(retrieved.chunks, [], retrieved.cached, retrieved.version)
    draft = respond(question, retrieved, settings)
    if settings.faq_answers:
        observe.record_cache("faq", hit=draft.layer == "faq")
    answer = Answer(
        "", draft.layer, [Source.of(h) for h in draft.sources], conversation_id=conversation_id
    )
    passages = [h for h in retrieved.chunks if is_relevant(h, settings, language=language)]
    if not settings.llm_needs_context:
        passages = retrieved.chunks  # the naive system sends whatever it found
    use_llm = bool(runtime.chat_models and draft.layer != "faq" and passages)
    if use_llm and llm_allowed is not None and conversation_id is not None:
        use_llm = await llm_allowed(conversation_id)
        if not use_llm:
            log.info("conversation %s is over its LLM cap; answering without one", conversation_id)
    try:
        with timer.stage("generate"):
            if use_llm:
                async with aclosing(
                    _generate(runtime, answer, draft, question, passages, history, hotel)
                ) as events:
                    async for event in events:
                        yield event
            else:
                answer.text = draft.text
                yield Meta(conversation_id, answer.layer, None)
                yield Delta(draft.text)
            await _pause(settings, "generate")
    except (asyncio.CancelledError, GeneratorExit):
        # The guest left: keep what was written, marked incomplete, and stop generating.
        if guest is not None and conversation_id is not None:
            answer.incomplete = True
            task = asyncio.ensure_future(_store_left(runtime, guest, answer, dict(timer.timings)))
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)
        raise
    keep = reuse.allowed and search == question and not answer.incomplete
    kept = _kept(answer) if keep and retrieved.version is not None else None
    scopes = [s.scope for s in answer.sources]
    entry = None
    if kept is not None and semantic:
        entry = semantic_entry(
            visibility=visibility,
            reuse=reuse,
            retrieved=retrieved,
            question=question,
            language=language,
            embedding=embedding,
            answer=kept,
            scopes=scopes,
        )
    with timer.stage("store"):
        count = None
        if guest is not None and conversation_id is not None:
            count = await _store(runtime, guest, answer, dict(timer.timings), entry=entry)
        elif entry is not None:
            async with pool.connection() as conn:
                await store_entry(conn, entry=entry)
        if kept is not None and settings.answer_cache and retrieved.version is not None:
            await keep_exact(
                runtime,
                visibility=visibility,
                reuse=reuse,
                version=retrieved.version,
                scopes=scopes,
                answer=kept,
            )
        await _pause(settings, "store")
    every = settings.compaction_every
    compacts = every and runtime.chat_models and count is not None and count % every == 0
    if compacts and guest is not None and conversation_id is not None:
        with timer.stage("compact"):
            await _compact(runtime, guest, conversation_id)
    answer.timings = timer.finish()
    yield Done(answer)


def _kept(answer: Answer) -> CachedAnswer | None:
    """The answer as the caches keep it, if it is one to keep."""
    if answer.layer not in EXACT_LAYERS or not answer.text.strip():
        return None
    sources = [s.as_dict() for s in answer.sources]
    return CachedAnswer(answer.text, answer.layer, answer.model, sources)


async def _serve_exact(
    runtime: Runtime,
    timer: StageTimer,
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
            async with runtime.pool.connection() as conn:
                answer.conversation_id = await record_exchange(
                    conn,
                    guest=guest,
                    conversation_id=conversation_id,
                    question=question,
                    answer=cached.text,
                    layer="exact",
                    sources=cached.sources,
                    timings=dict(timer.timings),
                )
            await _pause(runtime.settings, "store")
    yield Meta(answer.conversation_id, "exact", None)
    yield Delta(cached.text)
    answer.timings = timer.finish()
    yield Done(answer)


async def _serve_semantic(
    runtime: Runtime,
    timer: StageTimer,
    guest: GuestClaims | None,
    visibility: Visibility,
    reuse: Reuse,
    conversation_id: int | None,
    retrieved: Retrieved,
    reused: Hit,
) -> AsyncGenerator[PipelineEvent, None]:
    """A semantic-cache hit: the cached answer, stored as this conversation's, and kept in
    the exact cache under this wording too."""
    extra = reused.extra or {}
    sources = [Source(**s) for s in extra.get("sources", [])]
    answer = Answer(reused.text, "semantic", sources, conversation_id=conversation_id)
    yield Meta(conversation_id, "semantic", None)
    yield Delta(reused.text)
    with timer.stage("store"):
        if guest is not None and conversation_id is not None:
            await _store(runtime, guest, answer, dict(timer.timings), hit=reused.id)
        else:
            async with runtime.pool.connection() as conn:
                await count_hit(conn, tenant_id=visibility.tenant_id, entry_id=reused.id)
        if runtime.settings.answer_cache and retrieved.version is not None:
            origin = str(extra.get("layer", "llm"))
            kept = CachedAnswer(reused.text, origin, extra.get("model"), extra.get("sources", []))
            await keep_exact(
                runtime,
                visibility=visibility,
                reuse=reuse,
                version=retrieved.version,
                scopes=[reused.scope],
                answer=kept,
            )
    answer.timings = timer.finish()
    yield Done(answer)


async def _pause(settings: Settings, stage: str) -> None:
    """The configured delay of a stage (a deliberately slowed build, for the budget test)."""
    delay = settings.stage_delay_ms.get(stage, 0.0)
    if delay > 0:
        await asyncio.sleep(delay / 1000)


async def _ask_aside(runtime: Runtime, messages: list[ChatMessage]) -> str | None:
    """A whole answer from the large model (the baseline's intent, rewrite and summary)."""
    settings = runtime.settings
    return await complete(
        fallback_order(runtime.chat_models, "large"),
        messages,
        max_tokens=settings.llm_max_output_tokens,
        request_timeout=settings.llm_timeout_s,
        total_timeout=settings.llm_total_timeout_s,
    )


async def _compact(runtime: Runtime, guest: GuestClaims, conversation_id: int) -> None:
    """Summarise the conversation with an LLM and keep the summary (the baseline only)."""
    async with runtime.pool.connection() as conn:
        transcript = await read_transcript(
            conn, tenant_id=guest.tenant_id, conversation_id=conversation_id
        )
    summary = await _ask_aside(runtime, summary_prompt(transcript))
    if summary:
        async with runtime.pool.connection() as conn:
            await store_summary(
                conn, tenant_id=guest.tenant_id, conversation_id=conversation_id, summary=summary
            )


async def _generate(
    runtime: Runtime,
    answer: Answer,
    draft: Draft,
    question: str,
    passages: list[Hit],
    history: list[ChatMessage],
    hotel: str,
) -> AsyncGenerator[PipelineEvent, None]:
    settings = runtime.settings
    prompt = build_prompt(
        hotel=hotel,
        question=question,
        passages=passages,
        history=history,
        budget=settings.prompt_budget_tokens,
    )
    answer.prompt_tokens = prompt.tokens
    tier: Tier = "large" if settings.tier_routing == "large" else choose_tier(question)
    models = fallback_order(runtime.chat_models, tier)
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


async def _store(
    runtime: Runtime,
    guest: GuestClaims,
    answer: Answer,
    timings: dict[str, float],
    *,
    entry: CacheEntry | None = None,
    hit: int | None = None,
) -> int | None:
    """Store the answer (and the cache entry it makes, or the reuse it was); the stepwise
    store also says how many messages there are now."""
    assert answer.conversation_id is not None
    stepwise = runtime.settings.conversation_store == "stepwise"
    async with runtime.pool.connection() as conn:
        stored = await (record_answer_stepwise if stepwise else record_answer)(
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
    return stored if stepwise else None  # record_answer's is the message's id, not a count


async def _store_left(
    runtime: Runtime, guest: GuestClaims, answer: Answer, timings: dict[str, float]
) -> None:
    """Store an answer the guest left; nobody is waiting, so a failure is only logged."""
    try:
        await _store(runtime, guest, answer, timings)
    except Exception:
        log.exception(
            "could not keep the interrupted answer of conversation %s", answer.conversation_id
        )


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
