"""The part of a passage that answers: a sentence or a few list items, not the whole section.

A passage is cut into lines and sentences; each is scored by the question's words it
shares (compared by their first letters, so "precios" meets "precio" and "tarifas" meets
"tarifa") and by whether it holds the kind of value asked for (a time for "what time", an
amount for "how much", a code for "password"): that second signal is what lets an English
question find its answer in a Spanish passage. The best line comes with the list items
under it, or the label line it completes ("Claves de acceso:" and then the codes). With
no signal at all the passage's opening is shown, cut at a sentence.
"""

from __future__ import annotations

import re
import unicodedata

from posada.knowledge.glossary import translations

MAX_EXCERPT_CHARS = 420
_STEM = 5  # letters compared: crude, language-free stemming

_WANTS = {
    "time": re.compile(
        r"\b(what time|when|hora|horario|cuando|until|hasta|quelle heure|heure|horas?|que horas"
        r"|check.?in|check.?out|open|abre|cierra|close)\b"
    ),
    "price": re.compile(
        r"\b(how much|price|cost|precio|cuanto|cuesta|vale|tarifa|rate|fee|prix|combien|quanto"
        r"|custa|preco)\b"
    ),
    "code": re.compile(r"\b(code|codigo|password|clave|contrasena|pin|senha|mot de passe|wifi)\b"),
    "phone": re.compile(r"\b(phone|telefono|numero|number|call|llamar|whatsapp|contact\w*)\b"),
}
_HAS = {
    "time": re.compile(r"\b\d{1,2}(:\d{2}| ?(am|pm|a\.m|p\.m|h\b))", re.IGNORECASE),
    "price": re.compile(r"(\$|cop\b|usd\b|pesos|\b\d{1,3}([.,]\d{3})+\b)", re.IGNORECASE),
    # A quoted value, a run of digits, or a token mixing letters and digits ("Faro#27").
    "code": re.compile(r"(`[^`]+`|\"[^\"]+\"|(?<!\S)(?=\S*\d)(?=\S*[a-z])\S{4,}|\b\d{4,}\b)", re.I),
    "phone": re.compile(r"(\+\d[\d ]{7,}|\b\d{3} ?\d{3} ?\d{4}\b)"),
}
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-ZÁÉÍÓÚÑ¡¿])")
_SHORT = frozenset(
    (
        "the", "and", "for", "you", "are", "with", "que", "los", "las", "del", "por", "para",
        "una", "con", "hay", "como", "donde", "cual", "esta", "what", "how", "where", "when",
        "which", "can", "does", "this", "that", "have", "your",
    )
)  # fmt: skip


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _stems(text: str) -> set[str]:
    words = re.findall(r"[a-z0-9]+", _fold(text))
    return {w[:_STEM] for w in words if len(w) > 2 and w not in _SHORT}


def wants(question: str) -> set[str]:
    """The kinds of value the question asks for."""
    folded = _fold(question)
    return {kind for kind, pattern in _WANTS.items() if pattern.search(folded)}


def _units(text: str) -> list[tuple[int, str]]:
    """(indent, line or sentence) in order; list items stay whole."""
    units: list[tuple[int, str]] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        stripped = line.strip()
        if re.match(r"^([-*+]|\d+[.)])\s", stripped) or len(stripped) < 160:
            units.append((indent, stripped))
        else:
            units.extend((indent, s) for s in _SENTENCE.split(stripped))
    return units


def evidence(question: str, text: str, heading: str = "") -> float:
    """How well the passage's best line answers: shared words plus values of the kind asked;
    half a point more for each word its own heading shares with the question."""
    asked, kinds = _stems(question) | _stems(translations(question)), wants(question)
    best = max((_score(asked, kinds, unit) for _, unit in _units(text)), default=0.0)
    last = heading.rsplit(" › ", 1)[-1]
    return best + 0.5 * len(asked & _stems(last))


def _score(asked: set[str], kinds: set[str], unit: str) -> float:
    score = len(asked & _stems(unit)) + sum(2 for k in kinds if _HAS[k].search(unit))
    return score - (0.5 if unit.endswith("?") else 0.0)


def excerpt(question: str, text: str, *, limit: int = MAX_EXCERPT_CHARS) -> str:
    """The lines of `text` that answer `question`, at most about `limit` characters."""
    units = _units(text)
    # The question a Q:/A: block repeats, or a heading line, answers nothing.
    while units and units[0][1].rstrip().endswith("?"):
        units.pop(0)
    if not units:
        return text.strip()[:limit]
    asked, kinds = _stems(question) | _stems(translations(question)), wants(question)
    scores = [_score(asked, kinds, unit) for _indent, unit in units]
    best = max(range(len(units)), key=lambda i: (scores[i], -i))
    if scores[best] <= 0:
        return _opening(units, limit)
    start, end = best, best + 1
    indent, line = units[best]
    if line.endswith(":"):  # a label: its items follow
        while end < len(units) and (units[end][0] > indent or _is_item(units[end][1])):
            end += 1
            if _length(units[start:end]) > limit:
                break
    else:
        while end < len(units) and units[end][0] > indent:  # its own sub-items
            end += 1
        if start > 0 and units[start - 1][1].endswith(":") and _is_item(line):
            start -= 1  # the label this item completes
    # What follows often finishes the answer (the next steps of a route, the sentence
    # after): keep some, but not past the end of a list or into the next label.
    while (
        end < len(units)
        and not (_is_item(units[end - 1][1]) and not _is_item(units[end][1]))
        and not units[end][1].endswith(":")
        and _length(units[start : end + 1]) <= limit * 0.6
    ):
        end += 1
    chosen = units[start:end]
    while len(chosen) > 1 and _length(chosen) > limit:
        chosen.pop()
    return "\n".join(" " * min(i, 4) + u for i, u in chosen)[: limit + 80]


def _is_item(line: str) -> bool:
    return bool(re.match(r"^([-*+]|\d+[.)])\s", line))


def _length(units: list[tuple[int, str]]) -> int:
    return sum(len(u) + 1 for _, u in units)


def _opening(units: list[tuple[int, str]], limit: int) -> str:
    chosen: list[str] = []
    for _indent, unit in units:
        if chosen and sum(len(c) + 1 for c in chosen) + len(unit) > limit:
            break
        chosen.append(unit)
    return "\n".join(chosen)
