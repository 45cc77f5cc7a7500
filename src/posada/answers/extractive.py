"""The offline responder: an FAQ answer, the most relevant passage, or an honest "I don't know"."""

from __future__ import annotations

from dataclasses import dataclass, fields

from posada.answers.excerpt import evidence, excerpt
from posada.answers.phrases import PHRASES
from posada.cache.guard import Signature, conflicts, rests_on, signature
from posada.core.config import Settings
from posada.core.language import Language, detect_language
from posada.knowledge.retrieval import Hit, Retrieved

MAX_PASSAGE_CHARS = 700

NO_INFORMATION = PHRASES["no_information"]


@dataclass(frozen=True)
class Draft:
    """An answer before it is stored: its text, the layer that made it and its sources."""

    text: str
    layer: str
    sources: list[Hit]


@dataclass(frozen=True)
class Thresholds:
    """What an offline answer needs: when a passage is relevant, when an FAQ entry answers,
    how well a line must answer. Taken from `Settings` (same names) once per question."""

    min_similarity: float
    min_similarity_es: float
    min_coverage: float
    faq_min_coverage: float
    faq_min_similarity: float
    faq_reuse_min_similarity: float
    reuse_evidence_within: int
    reuse_max_evidence_drop: float
    extractive_min_evidence: float

    @classmethod
    def of(cls, settings: Settings) -> Thresholds:
        """The thresholds `settings` sets (calibrated for the embedding model)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})


def pick_faq(
    faqs: list[Hit],
    thresholds: Thresholds,
    *,
    question: str = "",
    chunks: list[Hit] | None = None,
    asked: Signature | None = None,
) -> Hit | None:
    """The FAQ entry asking the same question as the guest, if one does.

    Similar is not enough ("check-in" and "check-out" questions are neighbours in vector
    space). Either the entry's question is the guest's, word for word as far as full-text
    search reads them; or, for a rewording, the guard of every reuse holds: the entry's
    passage is the question's best passage, the two questions are near enough, and
    nothing in them conflicts (`cache.guard`). `asked` is the question's signature, when
    already known.
    """
    if asked is None and question and chunks:
        asked = signature(question)
    for hit in faqs:
        if (
            hit.question_coverage >= thresholds.faq_min_coverage
            and hit.coverage > 0.5  # most of what the guest asks is in the entry's question
            and hit.similarity >= thresholds.faq_min_similarity
        ):
            return hit
        if (
            asked is not None
            and hit.similarity >= thresholds.faq_reuse_min_similarity
            # Same language (the guard), so words can be compared: an entry about "the
            # lobby Wi-Fi" must not answer "the wifi password" for lack of one word.
            and hit.question_coverage >= 0.5
            and rests_on(
                hit,
                chunks or [],
                within=thresholds.reuse_evidence_within,
                max_drop=thresholds.reuse_max_evidence_drop,
            )
            and not conflicts(asked, signature(hit.question or ""))
        ):
            return hit
    return None


def is_relevant(hit: Hit, thresholds: Thresholds, *, language: str) -> bool:
    """Whether a passage is near enough to the question to be worth showing."""
    bar = thresholds.min_similarity_es if language == "es" else thresholds.min_similarity
    return hit.similarity >= bar or hit.coverage >= thresholds.min_coverage


def respond(
    question: str,
    retrieved: Retrieved,
    thresholds: Thresholds,
    *,
    language: Language | None = None,
    asked: Signature | None = None,
) -> Draft:
    """Answer from the FAQ, else from the best passage's answering lines, else say so.

    One passage, never two glued together, and no heading path: the guest reads the lines
    that answer, and `sources` says where they come from. The question's `language` and
    signature (`asked`) are found here unless given.
    """
    faq = pick_faq(
        retrieved.faqs, thresholds, question=question, chunks=retrieved.chunks, asked=asked
    )
    if faq is not None:
        text = faq.text if len(faq.text) <= MAX_PASSAGE_CHARS else excerpt(question, faq.text)
        return Draft(text, "faq", [faq])
    language = language or detect_language(question)
    relevant = [hit for hit in retrieved.chunks if is_relevant(hit, thresholds, language=language)]
    # The best-ranked of the first relevant passages with a line that answers; none has one
    # (no word of the question, no value of the kind asked): better say so than guess.
    enough = thresholds.extractive_min_evidence
    scored = [(h, evidence(question, h.text, h.heading)) for h in relevant[:3]]
    answering = [(h, e) for h, e in scored if e >= enough]
    if not answering:
        return Draft(NO_INFORMATION[language], "extractive", [])
    chosen, support = answering[0]
    # The guest's own unit says it more exactly ("wifi password": their room's network).
    own = [h for h, e in answering if h.scope == "unit" and e >= support]
    if chosen.scope != "unit" and own:
        chosen = own[0]
    return Draft(excerpt(question, chosen.text), "extractive", [chosen])
