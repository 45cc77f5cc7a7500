"""The LLM calls the naive RAG chat makes and posada does not (the benchmark's baseline).

Each runs only under its switch (`config.BASELINE`): an LLM to classify the guest's
intent, an LLM to rewrite a question that has history into a standalone one, and an LLM
to summarise the conversation every few messages, on the request path. They are paid
for and counted like any other call, so that the benchmark can show what they cost.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from posada.answers.generation import Exhausted, Generated, generate
from posada.core import context as observe
from posada.db.pool import AsyncConn
from posada.providers.llm import ChatMessage, ChatModel, Delta, cost_usd

log = logging.getLogger(__name__)

INTENT = (
    "Classify the hotel guest's message as exactly one of: greeting, question, request, "
    "complaint, other. Reply with the label only."
)
REWRITE = (
    "Given the conversation so far, rewrite the guest's last message as a standalone "
    "question in the same language. Reply with the question only."
)
SUMMARY = "Summarise this conversation between a hotel guest and its concierge in at most "
SUMMARY += "five sentences, keeping every fact the guest was given."


async def complete(
    models: Sequence[ChatModel],
    messages: Sequence[ChatMessage],
    *,
    max_tokens: int,
    request_timeout: float,
    total_timeout: float,
) -> str | None:
    """One LLM answer, whole, counted in the request's figures; None when none answered."""
    text = ""
    async for event in generate(
        models,
        messages,
        max_tokens=max_tokens,
        request_timeout=request_timeout,
        total_timeout=total_timeout,
    ):
        if isinstance(event, Delta):
            text += event.text
        elif isinstance(event, Generated):
            observe.record_llm(
                model=event.model.model,
                input_tokens=event.usage.input_tokens,
                output_tokens=event.usage.output_tokens,
                cost_usd=cost_usd(event.model, event.usage),
            )
        elif isinstance(event, Exhausted):
            log.warning("auxiliary LLM call failed: %s", "; ".join(event.failures))
            return None
    return text.strip() or None


def intent_prompt(question: str) -> list[ChatMessage]:
    """The intent classifier's prompt."""
    return [ChatMessage("system", INTENT), ChatMessage("user", question)]


def rewrite_prompt(question: str, history: Sequence[ChatMessage]) -> list[ChatMessage]:
    """The question rewriter's prompt: the conversation, then the question to rewrite."""
    turns = "\n".join(f"{m.role}: {m.content}" for m in history)
    return [
        ChatMessage("system", REWRITE),
        ChatMessage("user", f"Conversation:\n{turns}\n\nLast message: {question}"),
    ]


async def read_transcript(conn: AsyncConn, *, tenant_id: int, conversation_id: int) -> str:
    """The whole conversation as text, for the summary."""
    cur = await conn.execute(
        """SELECT role, content FROM messages WHERE conversation_id = %s AND tenant_id = %s
           ORDER BY id""",
        (conversation_id, tenant_id),
    )
    return "\n".join(f"{role}: {content}" for role, content in await cur.fetchall())


async def store_summary(
    conn: AsyncConn, *, tenant_id: int, conversation_id: int, summary: str
) -> None:
    """Keep the conversation's summary."""
    await conn.execute(
        "UPDATE conversations SET summary = %s WHERE id = %s AND tenant_id = %s",
        (summary, conversation_id, tenant_id),
    )


def summary_prompt(transcript: str) -> list[ChatMessage]:
    """The summariser's prompt."""
    return [ChatMessage("system", SUMMARY), ChatMessage("user", transcript)]
