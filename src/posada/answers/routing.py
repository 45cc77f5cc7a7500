"""Choosing the model tier and the retrieval text without calling a model."""

from __future__ import annotations

import re

from posada.providers.llm import ChatMessage
from posada.providers.registry import Tier

_FOLLOW_UP = re.compile(
    r"^\s*[¿¡]?\s*(y|e|and|also|tambi[eé]n|what about|how about|and the|y el|y la|y los|"
    r"y las|and on|y en)\b",
    re.IGNORECASE,
)
# Words that say nothing of what is asked about: a question made only of these ("how much
# is it?", "¿cuánto cuesta?", "what time?") leans on the one before it.
# fmt: off
_FUNCTION_WORDS = frozenset((
    "what", "when", "where", "how", "which", "who", "why", "much", "many", "is", "are", "was",
    "were", "be", "the", "a", "an", "it", "its", "that", "this", "there", "they", "them", "those",
    "these", "do", "does", "did", "can", "could", "may", "i", "we", "you", "me", "my", "our",
    "your", "to", "of", "for", "in", "on", "at", "by", "with", "and", "or", "also", "about",
    "cost", "costs", "price", "open", "close", "closes", "time", "hours", "hour", "please", "ok",
    "okay", "then", "one", "ones", "que", "qué", "cual", "cuál", "cuales", "cuáles", "cuando",
    "cuándo", "donde", "dónde", "como", "cómo", "cuanto", "cuánto", "cuanta", "cuánta", "cuantos",
    "cuántos", "quien", "quién", "por", "para", "el", "la", "los", "las", "un", "una", "unos",
    "unas", "es", "son", "está", "esta", "están", "estan", "hay", "y", "e", "o", "u", "de", "del",
    "a", "al", "en", "con", "lo", "le", "les", "eso", "esa", "ese", "esto", "ahí", "ahi", "allí",
    "alli", "me", "mi", "mis", "se", "nos", "puedo", "puede", "podemos", "cuesta", "cuestan",
    "vale", "valen", "precio", "hora", "horas", "horario", "abre", "cierra", "también", "tambien",
    "tiene", "tienen", "favor", "entonces",
))
# fmt: on
_WORD = re.compile(r"[\wáéíóúñü-]+", re.IGNORECASE)
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
    """A question leaning on the one before ("¿y el desayuno?", "how much is it?").

    It opens with "and", "y", "what about"..., or names nothing of its own: every word is a
    question word, a pronoun or a verb like "cost". "Check-out time?" and "wifi password"
    stand alone, however short.
    """
    if _FOLLOW_UP.match(question):
        return True
    words = [w.lower() for w in _WORD.findall(question)]
    return bool(words) and all(w in _FUNCTION_WORDS or w.isdigit() for w in words)


def retrieval_text(
    question: str, history: list[ChatMessage], *, follow_up: bool | None = None
) -> str:
    """What to search for: a follow-up (`follow_up`, found unless given) carries the
    guest's previous question along."""
    if not (is_follow_up(question) if follow_up is None else follow_up):
        return question
    previous = next((m.content for m in reversed(history) if m.role == "user"), None)
    return f"{previous} {question}" if previous else question
