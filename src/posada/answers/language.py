"""Which language a guest wrote in, Spanish or English, without a model."""

from __future__ import annotations

import re

_SPANISH = frozenset(
    [
        "el",
        "la",
        "los",
        "las",
        "de",
        "del",
        "que",
        "qué",
        "cuál",
        "cual",
        "cómo",
        "como",
        "dónde",
        "donde",
        "cuándo",
        "cuando",
        "hay",
        "es",
        "está",
        "esta",
        "tienen",
        "tiene",
        "puedo",
        "puede",
        "para",
        "por",
        "con",
        "una",
        "un",
        "mi",
        "mis",
        "hora",
        "horario",
        "clave",
        "contraseña",
        "habitación",
        "desayuno",
        "piscina",
        "llegar",
        "aeropuerto",
        "precio",
        "cuesta",
        "gracias",
        "hola",
        "necesito",
        "quiero",
        "hacer",
        "se",
        "le",
        "lo",
        "y",
        "o",
        "en",
        "al",
    ]
)
_ENGLISH = frozenset(
    [
        "the",
        "a",
        "an",
        "is",
        "are",
        "what",
        "when",
        "where",
        "how",
        "which",
        "can",
        "could",
        "do",
        "does",
        "my",
        "your",
        "to",
        "of",
        "for",
        "in",
        "on",
        "at",
        "time",
        "password",
        "room",
        "breakfast",
        "pool",
        "get",
        "from",
        "price",
        "cost",
        "thanks",
        "hello",
        "need",
        "want",
        "there",
        "have",
        "has",
        "and",
        "or",
        "with",
        "it",
        "i",
    ]
)


def detect_language(text: str) -> str:
    """'es' or 'en'; ties and empty text go to Spanish, the hotels' own language."""
    if re.search(r"[¿¡ñáéíóú]", text.lower()):
        return "es"
    words = re.findall(r"[a-záéíóúñü]+", text.lower())
    spanish = sum(word in _SPANISH for word in words)
    english = sum(word in _ENGLISH for word in words)
    return "en" if english > spanish else "es"
