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

from posada.answers.caching import find_exact, keep_exact, reuse_of, semantic_entry
from posada.answers.extractive import is_relevant, respond
from posada.answers.models import Answer, Done, LlmAllowance, Meta, PipelineEvent, Source
from posada.answers.routing import is_follow_up, retrieval_text
from posada.answers.serving import (
    kept as keep_of,
)
from posada.answers.serving import (
    serve_exact,
    serve_llm,
    serve_semantic,
    store,
    store_left,
)
from posada.answers.steps import steps_for
from posada.answers.timer import StageTimer
from posada.cache.semantic import pick_cached, store_entry
from posada.core import context as observe
from posada.core.config import Settings
from posada.core.language import detect_language
from posada.guests.tokens import GuestClaims
from posada.knowledge.retrieval import Retrieved, Visibility
from posada.providers.llm import ChatMessage, Delta
from posada.providers.types import Vectors
from posada.runtime import Runtime

log = logging.getLogger(__name__)
# Stores of interrupted answers run on after the request is gone; keep them referenced.
_BACKGROUND: set[asyncio.Task[None]] = set()


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
    steps = steps_for(runtime)
    pool, settings = runtime.pool, runtime.settings
    history: list[ChatMessage] = []
    reuse = reuse_of(question)

    if settings.answer_cache and reuse.allowed:
        with timer.stage("exact_cache"):
            cached = await find_exact(runtime, visibility, reuse)
        observe.record_cache("exact", hit=cached is not None)
        if cached is not None:
            async for event in serve_exact(
                runtime, steps, timer, guest, conversation_id, question, cached
            ):
                yield event
            return

    async def embed(text: str) -> Vectors:
        with timer.stage("embed"):
            row = await steps.embed(text)
            await steps.after("embed")
        return row

    # A question that stands alone is embedded while it is being stored; a follow-up
    # waits for the turn before it, which it is searched with.
    later = is_follow_up(question) or steps.rewrites_follow_ups
    early = None if later else asyncio.ensure_future(embed(question))
    if guest is not None:
        try:
            with timer.stage("store"):
                async with pool.connection() as conn:
                    recorded = await steps.store_question(
                        conn, guest=guest, conversation_id=conversation_id, content=question
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
    search = await steps.rewrite(question, history, timer) or search
    embedding = await early if early is not None else await embed(search)
    await steps.classify(question, timer)
    language = detect_language(question)
    semantic = settings.semantic_cache and reuse.allowed and search == question
    with timer.stage("lookup"):
        async with pool.connection() as conn:
            retrieved = await steps.lookup(
                conn,
                visibility=visibility,
                text=search,
                embedding=embedding,
                k=settings.retrieval_k,
                candidates=settings.retrieval_candidates,
                weights=fusion_weights(question, settings),
                cache=semantic,
                language=language,
                glossary=settings.fulltext_glossary,
                rrf_k=settings.rrf_k,
            )
        await steps.after("lookup")
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
            events = serve_semantic(
                runtime, steps, timer, guest, visibility, reuse, conversation_id, retrieved, reused
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
    relevant = [h for h in retrieved.chunks if is_relevant(h, settings, language=language)]
    passages = steps.passages(retrieved, relevant)
    use_llm = bool(runtime.chat_models and draft.layer != "faq" and passages)
    if use_llm and llm_allowed is not None and conversation_id is not None:
        use_llm = await llm_allowed(conversation_id)
        if not use_llm:
            log.info("conversation %s is over its LLM cap; answering without one", conversation_id)
    try:
        with timer.stage("generate"):
            if use_llm:
                async with aclosing(
                    serve_llm(runtime, answer, draft, question, passages, history, hotel)
                ) as events:
                    async for event in events:
                        yield event
            else:
                answer.text = draft.text
                yield Meta(conversation_id, answer.layer, None)
                yield Delta(draft.text)
            await steps.after("generate")
    except (asyncio.CancelledError, GeneratorExit):
        # The guest left: keep what was written, marked incomplete, and stop generating.
        if guest is not None and conversation_id is not None:
            answer.incomplete = True
            timings = dict(timer.timings)
            task = asyncio.ensure_future(store_left(runtime, steps, guest, answer, timings))
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)
        raise
    keep = reuse.allowed and search == question and not answer.incomplete
    kept = keep_of(answer) if keep and retrieved.version is not None else None
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
            count = await store(runtime, steps, guest, answer, dict(timer.timings), entry=entry)
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
        await steps.after("store")
    if guest is not None and conversation_id is not None:
        await steps.after_answer(guest, conversation_id, count, timer)
    answer.timings = timer.finish()
    yield Done(answer)


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
