"""The answering pipeline: store the question, embed once, one lookup, respond, store the answer.

Each guest question costs one local embedding and one database round trip for all
lookups; storing the question before answering means nothing is lost if answering fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from posada.answers.extractive import respond
from posada.answers.language import detect_language
from posada.config import Settings
from posada.guests.conversations import record_answer, record_guest_message
from posada.guests.tokens import GuestClaims
from posada.knowledge.retrieval import Hit, Visibility, retrieve
from posada.runtime import Runtime


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
    """What the guest gets back."""

    text: str
    layer: str
    sources: list[Source]
    timings: dict[str, float] = field(default_factory=dict)
    conversation_id: int | None = None


class StageTimer:
    """Milliseconds per pipeline stage, in the order they ran."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._started = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage `name`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round((time.perf_counter() - start) * 1000, 3)

    def finish(self) -> dict[str, float]:
        """The stages and their total."""
        self.timings["total"] = round((time.perf_counter() - self._started) * 1000, 3)
        return self.timings


def fusion_weights(question: str, settings: Settings) -> tuple[float, float]:
    """(vector, full-text) weights for this question's language."""
    if detect_language(question) == "es":
        return (settings.vector_weight_es, 1.0)
    return (settings.vector_weight_en, 1.0)


async def answer_question(
    *,
    runtime: Runtime,
    visibility: Visibility,
    question: str,
    guest: GuestClaims | None = None,
    conversation_id: int | None = None,
) -> Answer:
    """Answer one question; with a guest, store the question first and the answer after."""
    timer = StageTimer()
    pool, settings = runtime.pool, runtime.settings
    if guest is not None:
        with timer.stage("store_question"):
            async with pool.connection() as conn:
                conversation_id = await record_guest_message(
                    conn, guest=guest, conversation_id=conversation_id, content=question
                )
    with timer.stage("embed"):
        embedding = (await runtime.embedder.embed_batch([question]))[0]
    with timer.stage("lookup"):
        async with pool.connection() as conn:
            retrieved = await retrieve(
                conn,
                visibility=visibility,
                text=question,
                embedding=embedding,
                k=settings.retrieval_k,
                candidates=settings.retrieval_candidates,
                weights=fusion_weights(question, settings),
            )
    with timer.stage("generate"):
        draft = respond(question, retrieved, settings)
    sources = [Source.of(hit) for hit in draft.sources]
    if guest is not None and conversation_id is not None:
        with timer.stage("store_answer"):
            async with pool.connection() as conn:
                await record_answer(
                    conn,
                    tenant_id=guest.tenant_id,
                    conversation_id=conversation_id,
                    content=draft.text,
                    layer=draft.layer,
                    sources=[s.as_dict() for s in sources],
                    timings=dict(timer.timings),
                )
    return Answer(draft.text, draft.layer, sources, timer.finish(), conversation_id)
