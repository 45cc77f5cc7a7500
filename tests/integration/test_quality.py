"""The labelled question set (bench/quality) as a regression test: no leak, targets held.

Runs in a database of its own, so that other tests' tenants cannot shift its figures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from bench import quality
from rich.console import Console

from posada.core.config import Settings
from posada.runtime import Runtime


@pytest.fixture(scope="module")
async def quality_runtime(settings: Settings, runtime: Runtime) -> AsyncIterator[Runtime]:
    # The caches on, as served: a wrong reuse of a cached answer would fail the targets.
    own = settings.model_copy(
        update={
            "database_name": "posada_quality",
            "embedding_cache": True,
            "answer_cache": True,
            "semantic_cache": True,
        }
    )
    opened = await Runtime.open(own, embedder=runtime.embedder)
    try:
        yield opened
    finally:
        await opened.close()


async def test_labelled_questions_never_leak_and_meet_the_targets(
    quality_runtime: Runtime,
) -> None:
    labels = quality.load_labels(quality.QUESTIONS)
    assert len(labels.questions) >= 150
    await quality.load_everything(quality_runtime, Console(quiet=True), labels.other_tenant_slug)
    outcomes = await quality.measure(
        quality_runtime, labels, quality.MemoEmbedder(quality_runtime.query_embedder)
    )
    report = quality.figures(outcomes, quality_runtime.settings, {})
    leaked = [o.q.id for o in outcomes if o.answer_leaks or o.retrieval_leaks]
    assert leaked == [], "another unit's or hotel's private fact reached a guest"
    overall = report["groups"]["all"]
    assert overall["recall_at_3"]["fused"] >= quality.TARGET_RECALL
    assert overall["accuracy"] >= quality.TARGET_ACCURACY
    assert report["faq_layer"]["wrong"] == 0, "an FAQ answer was given to another question"
