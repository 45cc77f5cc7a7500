"""What the answering pipeline gives back: the answer, its sources, and its events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from posada.knowledge.retrieval import Hit
from posada.providers.llm import Delta, Usage


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
    # Not None: a person has the conversation ('waiting' for one, or 'staff'), so posada
    # did not answer (the text is empty, or the notice that a person will answer).
    handoff: str | None = None
    # The stored answer's id: the guest's thumbs up or down names it.
    message_id: int | None = None


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
