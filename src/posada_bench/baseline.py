"""The baseline's steps: the naive RAG chat posada replaces, stage by stage.

The same `Steps` as posada's own (`posada.answers.steps`), each done the way the system
it replaces does it, under its own switch (`config.BASELINE` sets them all), so that the
benchmark shows what each costs:

- `embedding_calls`: one paid API call per vector size, for the same text;
- `conversation_store = stepwise`: a round trip per check and write (`stepwise`);
- `follow_up_rewrite = llm`: an LLM rewrites every question that has history;
- `intent_detection = llm`: an LLM classifies the message before answering;
- `lookup = sequential`: the searches one after another, then a read of the rows;
- `llm_needs_context = false`: the LLM is sent whatever was found, relevant or not;
- `compaction_every`: an LLM summarises the conversation on the request path;
- `stage_delay_ms`: a deliberately slowed build, to prove the budget catches it.

Registered as the `posada.steps` entry point `baseline`; posada picks it when any of
these is set.
"""

from __future__ import annotations

import asyncio
from typing import Any

from posada.answers.lookup import Lookup
from posada.answers.steps import Steps, Stored
from posada.core.context import RequestStats
from posada.db.pool import AsyncConn
from posada.guests.tokens import GuestClaims
from posada.knowledge.retrieval import Hit, retrieve
from posada.providers.llm import ChatMessage
from posada.providers.registry import fallback_order
from posada.providers.types import Vectors
from posada_bench.naive_calls import (
    complete,
    intent_prompt,
    read_transcript,
    rewrite_prompt,
    store_summary,
    summary_prompt,
)
from posada_bench.stepwise import record_answer_stepwise, record_guest_message_stepwise


class BaselineSteps(Steps):
    """Each stage as the naive system does it, where its switch says so."""

    def __init__(self, **parts: Any) -> None:
        super().__init__(**parts)
        if self.settings.conversation_store == "stepwise":
            self.record_question = record_guest_message_stepwise

    @property
    def rewrites_follow_ups(self) -> bool:
        return self.settings.follow_up_rewrite == "llm"

    async def embed(self, text: str) -> Vectors:
        row = await super().embed(text)
        for _ in range(self.settings.embedding_calls - 1):
            await self.embedder.embed_batch([text])  # one more call per vector size
        return row

    async def rewrite(
        self, question: str, history: list[ChatMessage], timer: RequestStats
    ) -> str | None:
        if not (self.rewrites_follow_ups and history and self.chat_models):
            return None
        with timer.stage("rewrite"):
            return await self._ask_aside(rewrite_prompt(question, history))

    async def classify(self, question: str, timer: RequestStats) -> None:
        if self.settings.intent_detection == "llm" and self.chat_models:
            with timer.stage("intent"):
                await self._ask_aside(intent_prompt(question))

    async def lookup(self, conn: AsyncConn, **search: Any) -> Lookup:
        if self.settings.lookup != "sequential":
            return await super().lookup(conn, **search)
        # One search after another, and no cached answers or version (the baseline caches
        # nothing); `cache` and `language` only choose cached answers.
        search = {k: v for k, v in search.items() if k not in ("cache", "language")}
        found = await retrieve(conn, **search, sequential=True)
        return Lookup(found.chunks, found.faqs)

    def passages(self, retrieved: Lookup, relevant: list[Hit]) -> list[Hit]:
        if not self.settings.llm_needs_context:
            return retrieved.chunks  # whatever was found
        return relevant

    async def store_answer(self, conn: AsyncConn, **answer: Any) -> Stored:
        if self.settings.conversation_store != "stepwise":
            return await super().store_answer(conn, **answer)
        return Stored(*await record_answer_stepwise(conn, **answer))

    async def after_answer(
        self, guest: GuestClaims, conversation_id: int, count: int | None, timer: RequestStats
    ) -> None:
        every = self.settings.compaction_every
        if not (every and self.chat_models and count is not None and count % every == 0):
            return
        with timer.stage("compact"):
            async with self.pool.connection() as conn:
                transcript = await read_transcript(
                    conn, tenant_id=guest.tenant_id, conversation_id=conversation_id
                )
            summary = await self._ask_aside(summary_prompt(transcript))
            if summary:
                async with self.pool.connection() as conn:
                    await store_summary(
                        conn,
                        tenant_id=guest.tenant_id,
                        conversation_id=conversation_id,
                        summary=summary,
                    )

    async def after(self, stage: str) -> None:
        delay = self.settings.stage_delay_ms.get(stage, 0.0)
        if delay > 0:
            await asyncio.sleep(delay / 1000)

    async def _ask_aside(self, messages: list[ChatMessage]) -> str | None:
        """A whole answer from the large model (the intent, the rewrite, the summary)."""
        settings = self.settings
        return await complete(
            fallback_order(self.chat_models, "large"),
            messages,
            max_tokens=settings.llm_max_output_tokens,
            request_timeout=settings.llm_timeout_s,
            total_timeout=settings.llm_total_timeout_s,
        )
