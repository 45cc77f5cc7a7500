"""Choosing the model tier and the retrieval text without calling a model."""

from __future__ import annotations

import re

from posada.providers.llm import ChatMessage
from posada.providers.registry import Tier

_FOLLOW_UP = re.compile(
    r"^\s*[¿¡]?\s*(y|e|and|also|tambi[eé]n|what about|how about|how much|cu[aá]nto|"
    r"and the|y el|y la|y los|y las)\b",
    re.IGNORECASE,
)
_QUESTION_WORDS = re.compile(
    r"\b(what|when|where|how|which|who|why|qu[eé]|cu[aá]ndo|d[oó]nde|c[oó]mo|cu[aá]l|"
    r"qui[eé]n|por qu[eé])\b",
    re.IGNORECASE,
)


def choose_tier(question: str) -> Tier:
    """Large for long or multi-part questions, small for simple factual ones."""
    words = len(question.split())
    parts = question.count("?") + len(_QUESTION_WORDS.findall(question)) // 2
    return "large" if words > 30 or parts >= 2 else "small"


def is_follow_up(question: str) -> bool:
    """A short question leaning on the one before ("¿y el desayuno?", "how much is it?")."""
    return bool(_FOLLOW_UP.match(question)) or len(question.split()) <= 3


def retrieval_text(question: str, history: list[ChatMessage]) -> str:
    """What to search for: a follow-up carries the guest's previous question along."""
    if not is_follow_up(question):
        return question
    previous = next((m.content for m in reversed(history) if m.role == "user"), None)
    return f"{previous} {question}" if previous else question
