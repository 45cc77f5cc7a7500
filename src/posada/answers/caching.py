"""The pipeline's side of the caches: what may be reused, under which scope, and reusing it.

A question is looked up in (and its answer kept by) the answer caches only when it stands
alone (not a follow-up, whose meaning is in the turn before) and does not speak of the
guest's own stay or of the moment ("my booking", "tonight"). An answer is kept for one
unit when anything it drew on was that unit's private document, else for the whole hotel;
never when it was cut off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from posada.answers.lookup import Lookup
from posada.answers.routing import is_follow_up
from posada.cache.answers import CachedAnswer, ExactCache, normalize_question
from posada.cache.guard import is_reusable
from posada.cache.semantic import CacheEntry
from posada.knowledge.retrieval import Visibility
from posada.providers.types import Vectors
from posada.runtime import Caches

# Answers worth keeping, by the layer that made them.
EXACT_LAYERS = ("llm", "extractive", "faq")
SEMANTIC_LAYERS = ("llm", "extractive")


@dataclass(frozen=True)
class Reuse:
    """How one question meets the caches."""

    allowed: bool  # it may be looked up and kept
    normalized: str


def reuse_of(question: str, *, follow_up: bool | None = None) -> Reuse:
    """Whether the caches may serve and keep this question (a follow-up, `follow_up` found
    unless given, may not), and its normalised form."""
    later = is_follow_up(question) if follow_up is None else follow_up
    return Reuse(is_reusable(question) and not later, normalize_question(question))


async def find_exact(caches: Caches, visibility: Visibility, reuse: Reuse) -> CachedAnswer | None:
    """The exact cache's answer for this guest's question, if any."""
    version = await caches.versions.get(visibility.tenant_id)
    return await caches.answers.get(
        tenant_id=visibility.tenant_id,
        version=version,
        unit_id=visibility.unit_id,
        normalized=reuse.normalized,
    )


def scope_of(scopes: Sequence[str], visibility: Visibility) -> int | None:
    """The unit an answer belongs to (it drew on that unit's documents), else None: the hotel."""
    return visibility.unit_id if "unit" in scopes else None


async def keep_exact(
    cache: ExactCache,
    *,
    visibility: Visibility,
    reuse: Reuse,
    version: int,
    scopes: Sequence[str],
    answer: CachedAnswer,
) -> None:
    """Keep an answer in the exact cache, for its unit or the hotel."""
    await cache.put(
        tenant_id=visibility.tenant_id,
        version=version,
        unit_id=scope_of(scopes, visibility),
        normalized=reuse.normalized,
        answer=answer,
    )


def semantic_entry(
    *,
    visibility: Visibility,
    reuse: Reuse,
    retrieved: Lookup,
    question: str,
    language: str,
    embedding: Vectors,
    answer: CachedAnswer,
    scopes: Sequence[str],
) -> CacheEntry | None:
    """The semantic cache's entry for this answer, or None when it is not one to keep."""
    if retrieved.version is None or answer.origin not in SEMANTIC_LAYERS:
        return None
    if not answer.sources:
        return None  # "I don't have that information" rests on nothing a rewording could share
    return CacheEntry(
        tenant_id=visibility.tenant_id,
        unit_id=scope_of(scopes, visibility),
        version=retrieved.version,
        language=language,
        question=question,
        normalized=reuse.normalized,
        embedding=embedding,
        answer=answer.text,
        layer=answer.origin,
        model=answer.model,
        sources=answer.sources,
        evidence=retrieved.best_passage,
    )
