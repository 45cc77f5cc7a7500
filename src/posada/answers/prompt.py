"""The prompt: a compact system message, the retrieved passages, recent turns, the question.

Everything is kept within a token budget, counted with the local estimate before the
call (the provider's usage replaces it afterwards). The system message and the question
always fit; passages go in by rank until their share is spent (each whole, or only the
sentences around its best match: `answers.context_window`); the most recent turns of the
conversation fill what is left, newest first, so a follow-up ("¿y el desayuno?") keeps
the turn it follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from posada.answers.context_window import window
from posada.core.groups import PromptSettings
from posada.core.language import Language, detect_language
from posada.knowledge.retrieval import Hit
from posada.providers.llm import ChatMessage, estimate_tokens

LANGUAGES: dict[Language, str] = {
    "es": "Spanish",
    "en": "English",
    "pt": "Portuguese",
    "fr": "French",
}

SYSTEM = (
    "You are the concierge of {hotel}. Answer only from the context below. If the context "
    "does not hold the answer, say plainly that you do not have that information and "
    "suggest asking reception. Answer in {language}, the language of the guest's last "
    "message. Keep it short: at most three sentences."
)

# Today's context (five whole passages): no smaller one measured kept the fact as often.
DEFAULTS = PromptSettings()


@dataclass(frozen=True)
class Prompt:
    """The messages to send and the estimated tokens of each part."""

    messages: list[ChatMessage]
    tokens: dict[str, int]  # system, context, history, question
    passages: list[Hit]  # the passages that fit, in rank order


def build_prompt(
    *,
    hotel: str,
    question: str,
    passages: Sequence[Hit],
    history: Sequence[ChatMessage],
    budget: int,
    context_share: float = 0.75,
    language: Language | None = None,
    max_passages: int | None = DEFAULTS.passages,
    around: int = DEFAULTS.window,
) -> Prompt:
    """Messages for the model within `budget` estimated tokens, in the question's `language`
    (detected unless given): at most `max_passages` passages (None: as many as fit), each
    whole (`around` 0) or only its best-matching sentence and `around` either side."""
    name = LANGUAGES[language or detect_language(question)]
    system = SYSTEM.format(hotel=hotel, language=name)
    fixed = estimate_tokens(system) + estimate_tokens(question) + 8
    room = max(0, budget - fixed)
    # The turns keep up to (1 - context_share) of the room, but only what they need: a
    # short exchange leaves the rest to the passages (bench/prompt_size.py: a reserve of a
    # fixed quarter dropped passages that held the fact).
    wanted = sum(estimate_tokens(t.content) + 4 for t in history)
    context_room = room - min(wanted, room - int(room * context_share))
    kept: list[Hit] = []
    blocks: list[str] = []
    used = 0
    for hit in passages:
        if max_passages is not None and len(kept) >= max_passages:
            break
        text = window(question, hit.text, around=around) if around else hit.text
        block = f"[{hit.title} › {hit.heading.split(' › ')[-1]}]\n{text}"
        cost = estimate_tokens(block) + 2
        if used + cost > context_room:
            continue  # a shorter passage further down may still fit
        kept.append(hit)
        blocks.append(block)
        used += cost
    context = "\n\n".join(blocks) if blocks else "(no relevant passage found)"
    turns = _newest(history, room - used)
    history_used = sum(estimate_tokens(t.content) + 4 for t in turns)
    messages = [
        ChatMessage("system", f"{system}\n\nContext:\n{context}"),
        *turns,
        ChatMessage("user", question),
    ]
    return Prompt(
        messages=messages,
        tokens={
            "system": estimate_tokens(system),
            "context": estimate_tokens(context),
            "history": history_used,
            "question": estimate_tokens(question),
        },
        passages=kept,
    )


def _newest(history: Sequence[ChatMessage], room: int) -> list[ChatMessage]:
    """The most recent turns that fit in `room` estimated tokens, in their order."""
    turns: list[ChatMessage] = []
    used = 0
    for turn in reversed(history):
        cost = estimate_tokens(turn.content) + 4
        if used + cost > room:
            break
        turns.insert(0, turn)
        used += cost
    return turns
