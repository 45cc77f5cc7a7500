"""The offline responder: an FAQ answer, the most relevant passage, or an honest "I don't know"."""

from __future__ import annotations

import re
from dataclasses import dataclass

from posada.answers.language import detect_language
from posada.answers.phrases import PHRASES
from posada.cache.guard import same_question, signature
from posada.config import Settings
from posada.knowledge.retrieval import Hit, Retrieved

MAX_PASSAGE_CHARS = 700

NO_INFORMATION = PHRASES["no_information"]


@dataclass(frozen=True)
class Draft:
    """An answer before it is stored: its text, the layer that made it and its sources."""

    text: str
    layer: str
    sources: list[Hit]


def pick_faq(
    faqs: list[Hit], settings: Settings, *, question: str = "", best_passage: int | None = None
) -> Hit | None:
    """The FAQ entry asking the same question as the guest, if one does.

    Similar is not enough ("check-in" and "check-out" questions are neighbours in vector
    space). Either every word of the FAQ question is in the guest's question and most of
    the guest's words in it; or, for a paraphrase, the semantic cache's guard holds: near
    enough, the same concepts, numbers, names and language, and the FAQ entry's passage is
    the question's best passage.
    """
    asked = signature(question) if question and best_passage is not None else None
    for hit in faqs:
        if (
            hit.question_coverage >= settings.faq_min_coverage
            and hit.coverage >= 0.5
            and hit.similarity >= settings.faq_min_similarity
        ):
            return hit
        if (
            asked is not None
            and hit.similarity >= settings.semantic_min_similarity
            and hit.coverage >= 0.5  # most of what the guest asks about is in the entry
            and hit.chunk_id == best_passage
            and same_question(asked, signature(hit.question or ""))
        ):
            return hit
    return None


def is_relevant(hit: Hit, settings: Settings, *, language: str) -> bool:
    """Whether a passage is near enough to the question to be worth showing."""
    bar = settings.min_similarity_es if language == "es" else settings.min_similarity
    return hit.similarity >= bar or hit.coverage >= settings.min_coverage


def trim(text: str, limit: int = MAX_PASSAGE_CHARS) -> str:
    """At most `limit` characters, cut at a line or sentence end where there is one."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    for mark in ("\n", ". ", "; "):
        at = cut.rfind(mark)
        if at > limit // 2:
            return cut[: at + 1].rstrip() + " …"
    return cut.rstrip() + " …"


def respond(question: str, retrieved: Retrieved, settings: Settings) -> Draft:
    """Answer from the FAQ, else from the best passages, else say so."""
    faq = pick_faq(retrieved.faqs, settings, question=question, best_passage=retrieved.best_passage)
    if faq is not None:
        return Draft(faq.text, "faq", [faq])
    language = detect_language(question)
    relevant = [hit for hit in retrieved.chunks if is_relevant(hit, settings, language=language)]
    if not relevant:
        return Draft(NO_INFORMATION[language], "extractive", [])
    chosen = [relevant[0]]
    second = relevant[1] if len(relevant) > 1 else None
    # A second passage only when it ranks nearly as high and says something else.
    if (
        second is not None
        and second.score >= 0.9 * relevant[0].score
        and (second.heading != relevant[0].heading)
    ):
        chosen.append(second)
    text = "\n\n".join(_present(hit) for hit in chosen)
    return Draft(text, "extractive", chosen)


def _present(hit: Hit) -> str:
    # The last two levels: "Apartamento Brisa › Descripción" says whose description it is.
    heading = " › ".join(hit.heading.split(" › ")[-2:])
    body = re.sub(r"\n{2,}", "\n", hit.text).strip()
    return f"{heading}:\n{trim(body)}"
