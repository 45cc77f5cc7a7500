"""Only the sentences around a passage's best match, for a smaller prompt.

A passage is cut into sentences (a Markdown line is one, or several when it is long
prose); the one that best answers the question is found with `excerpt.evidence` (the
question's words it shares, glossary translations included, and whether it holds the
kind of value asked for: a time, an amount, a code), and it is kept with `around`
sentences on either side, in the passage's order; near either end the window slides so as
to keep as many. With no sentence sharing anything the passage's opening stands in, as
the extractive answer does.

Measured by bench/prompt_size.py, it drops the fact too often to be the default (the
answer is often a line the question shares no word with: "fridge" and "Nevera privada",
"how do I reach" and "Telefono"), so posada sends passages whole unless told otherwise
(`PromptSettings.window`).
"""

from __future__ import annotations

import re

from posada.answers.excerpt import evidence

# A sentence ends at . ! or ? followed by a capital (or an opening ¿ ¡): "7 p.m. y" and
# "3.5 km" stay whole.
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-ZÁÉÍÓÚÑ¡¿])")


def sentences(text: str) -> list[tuple[int, str]]:
    """(line number, sentence) for every sentence of `text`, in order; blank lines dropped."""
    found: list[tuple[int, str]] = []
    for number, line in enumerate(text.split("\n")):
        stripped = line.strip()
        if stripped:
            found.extend((number, s) for s in _SENTENCE.split(stripped) if s.strip())
    return found


def best_sentence(question: str, units: list[tuple[int, str]]) -> int:
    """The index of the sentence that best answers `question` (the first of equals; 0 when
    none shares anything with it)."""
    scores = [evidence(question, unit) for _line, unit in units]
    best = max(range(len(units)), key=lambda i: (scores[i], -i), default=0)
    return best if units and scores[best] > 0 else 0


def window(question: str, text: str, *, around: int) -> str:
    """The best-matching sentence of `text` with `around` sentences either side; sentences
    of one line stay on one line, as in the passage."""
    units = sentences(text)
    if len(units) <= 2 * around + 1:
        return text.strip()
    best = best_sentence(question, units)
    start = max(0, min(best - around, len(units) - (2 * around + 1)))
    kept = units[start : start + 2 * around + 1]
    lines: list[str] = []
    previous = -1
    for line, unit in kept:
        if line == previous:
            lines[-1] += " " + unit
        else:
            lines.append(unit)
        previous = line
    return "\n".join(lines)
