"""One guest question's way through the pipeline: what is known of it, stage by stage.

`answers.pipeline` runs these in order; each is one stage of the README's list (store and
embed, the one lookup, the semantic cache, the offline draft, keeping the answer).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cached_property

from posada.answers.caching import Reuse, keep_exact, reuse_of, semantic_entry
from posada.answers.extractive import Draft, Thresholds, is_relevant, respond
from posada.answers.lookup import Lookup
from posada.answers.models import Answer, Source
from posada.answers.routing import is_follow_up, retrieval_text
from posada.answers.serving import cacheable, store
from posada.answers.steps import Steps
from posada.cache.guard import Signature, signature
from posada.cache.semantic import Candidate, pick_cached, store_entry
from posada.core import context as observe
from posada.core.config import Settings
from posada.core.context import RequestStats
from posada.core.language import Language, detect_language
from posada.guests.tokens import GuestClaims
from posada.knowledge.retrieval import Hit, Visibility
from posada.providers.llm import ChatMessage
from posada.providers.types import Vectors
from posada.runtime import Runtime


@dataclass
class Turn:
    """One guest question on its way through the pipeline: what is known of it so far."""

    runtime: Runtime
    steps: Steps
    timer: RequestStats
    visibility: Visibility
    question: str
    guest: GuestClaims | None
    conversation_id: int | None
    hotel: str
    history: list[ChatMessage] = field(default_factory=list)
    search: str = ""  # what is embedded and searched: the question, or it with the turn before
    embedding: Vectors | None = None
    retrieved: Lookup | None = None
    handoff: str | None = None  # the conversation's, once stored: set, posada does not answer

    # The question's facts, each found once, when a stage first needs it (an exact-cache
    # hit needs only `reuse`).
    @cached_property
    def follow_up(self) -> bool:
        """Whether the question leans on the turn before it ("and on Sundays?")."""
        return is_follow_up(self.question)

    @cached_property
    def reuse(self) -> Reuse:
        """Whether the caches may serve and keep it, and its normalised form."""
        return reuse_of(self.question, follow_up=self.follow_up)

    @cached_property
    def language(self) -> Language:
        """The guest's language."""
        return detect_language(self.question)

    @cached_property
    def signature(self) -> Signature:
        """What the reuse guard compares (`cache.guard`)."""
        return signature(self.question, language=self.language)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @cached_property
    def thresholds(self) -> Thresholds:
        """What the offline answer needs, from the settings."""
        return Thresholds.of(self.settings)

    @property
    def semantic(self) -> bool:
        """Whether the semantic cache may answer (and keep) this question."""
        return self.settings.semantic_cache and self.reuse.allowed and self.search == self.question

    @property
    def stored(self) -> bool:
        return self.guest is not None and self.conversation_id is not None


def fusion_weights(
    question: str, settings: Settings, *, language: str | None = None
) -> tuple[float, float]:
    """(vector, full-text) weights for this question's language (detected unless given)."""
    if (language or detect_language(question)) == "es":
        return (settings.vector_weight_es, 1.0)
    return (settings.vector_weight_en, 1.0)


async def store_and_embed(turn: Turn) -> None:
    """Store the question (while it is embedded, when it stands alone) and embed it."""
    steps, timer = turn.steps, turn.timer

    async def embed(text: str) -> Vectors:
        with timer.stage("embed"):
            row = await steps.embed(text)
            await steps.after("embed")
        return row

    # A question that stands alone is embedded while it is being stored; a follow-up
    # waits for the turn before it, which it is searched with.
    later = turn.follow_up or steps.rewrites_follow_ups
    early = None if later else asyncio.ensure_future(embed(turn.question))
    if turn.guest is not None:
        try:
            with timer.stage("store"):
                async with turn.runtime.pool.connection() as conn:
                    recorded = await steps.store_question(
                        conn,
                        guest=turn.guest,
                        conversation_id=turn.conversation_id,
                        content=turn.question,
                    )
        except BaseException:
            if early is not None:
                early.cancel()
            raise
        turn.conversation_id, turn.hotel = recorded.conversation_id, recorded.hotel
        turn.history, turn.handoff = recorded.history, recorded.handoff
        if turn.handoff is not None:
            if early is not None:
                early.cancel()
            return
    search = retrieval_text(turn.question, turn.history, follow_up=turn.follow_up)
    turn.search = await steps.rewrite(turn.question, turn.history, timer) or search
    turn.embedding = await early if early is not None else await embed(turn.search)
    await steps.classify(turn.question, timer)


async def look_up(turn: Turn) -> Lookup:
    """The one round trip: chunks, FAQ candidates, cached answers."""
    settings = turn.settings
    assert turn.embedding is not None
    with turn.timer.stage("lookup"):
        async with turn.runtime.pool.connection() as conn:
            retrieved = await turn.steps.lookup(
                conn,
                visibility=turn.visibility,
                text=turn.search,
                embedding=turn.embedding,
                k=settings.retrieval_k,
                candidates=settings.retrieval_candidates,
                weights=fusion_weights(turn.question, settings, language=turn.language),
                cache=turn.semantic,
                language=turn.language,
                glossary=settings.fulltext_glossary,
                rrf_k=settings.rrf_k,
            )
        await turn.steps.after("lookup")
    return retrieved


def semantic_hit(turn: Turn, retrieved: Lookup) -> Candidate | None:
    """The cached answer that answers this very question, if the semantic cache may say."""
    if not turn.semantic:
        return None
    settings = turn.settings
    reused = pick_cached(
        question=turn.question,
        candidates=retrieved.cached,
        chunks=retrieved.chunks,
        min_similarity=settings.semantic_min_similarity,
        evidence_within=settings.reuse_evidence_within,
        max_evidence_drop=settings.reuse_max_evidence_drop,
        asked=turn.signature,
    )
    observe.record_cache("semantic", hit=reused is not None)
    return reused


def draft(turn: Turn, retrieved: Lookup) -> tuple[Answer, Draft, list[Hit]]:
    """The offline answer (FAQ or extractive), and the passages an LLM would be sent."""
    settings = turn.settings
    if turn.search != turn.question or not settings.faq_answers:
        # A follow-up searched with the turn before it; an FAQ entry matching that pair
        # would answer the earlier question, not this one.
        retrieved = retrieved.without_faqs()
    draft = respond(
        turn.question, retrieved, turn.thresholds, language=turn.language, asked=turn.signature
    )
    if settings.faq_answers:
        observe.record_cache("faq", hit=draft.layer == "faq")
    sources = [Source.of(h) for h in draft.sources]
    answer = Answer("", draft.layer, sources, conversation_id=turn.conversation_id)
    bars, language = turn.thresholds, turn.language
    relevant = [h for h in retrieved.chunks if is_relevant(h, bars, language=language)]
    return answer, draft, turn.steps.passages(retrieved, relevant)


async def keep(turn: Turn, answer: Answer, retrieved: Lookup) -> None:
    """Store the answer, keep it in the caches it may be reused from, then what follows."""
    runtime, settings, version = turn.runtime, turn.settings, retrieved.version
    keep = turn.reuse.allowed and turn.search == turn.question and not answer.incomplete
    kept = cacheable(answer) if keep and version is not None else None
    scopes = [s.scope for s in answer.sources]
    entry = None
    if kept is not None and turn.semantic and turn.embedding is not None:
        entry = semantic_entry(
            visibility=turn.visibility,
            reuse=turn.reuse,
            retrieved=retrieved,
            question=turn.question,
            language=turn.language,
            embedding=turn.embedding,
            answer=kept,
            scopes=scopes,
        )
    with turn.timer.stage("store"):
        count = None
        if turn.guest is not None and turn.conversation_id is not None:
            timings = dict(turn.timer.stages)
            count = await store(runtime.pool, turn.steps, turn.guest, answer, timings, entry=entry)
        elif entry is not None:
            async with runtime.pool.connection() as conn:
                await store_entry(conn, entry=entry)
        if kept is not None and settings.answer_cache and version is not None:
            await keep_exact(
                runtime.caches.answers,
                visibility=turn.visibility,
                reuse=turn.reuse,
                version=version,
                scopes=scopes,
                answer=kept,
            )
        await turn.steps.after("store")
    if turn.guest is not None and turn.conversation_id is not None:
        await turn.steps.after_answer(turn.guest, turn.conversation_id, count, turn.timer)
