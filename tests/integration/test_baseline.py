"""The baseline profile: each switch makes posada do what the naive system does, and no more.

Every figure here is counted by the observability counters of a real request through the
app (or, for the lookup, of the call itself), against the simulated upstream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from posada.api.app import create_app
from posada.core import context as observe
from posada.core.config import BASELINE, Settings
from posada.knowledge.retrieval import Visibility, retrieve
from posada.observe.ledger import usage_recorder
from posada.providers.embeddings import OpenAIEmbedder
from posada.providers.registry import build_chat_models
from posada.runtime import Runtime
from tests.support.helpers import StayFinder, log_in

Ask = Callable[..., Any]


def _variant(runtime: Runtime, llm: str, **switches: Any) -> Runtime:
    settings = runtime.settings.model_copy(
        update={"llm_base_url": llm, "llm_api_key": SecretStr("test"), **switches}
    )
    embedder = runtime.embedder
    if switches.get("embedding_calls", 1) > 1:
        # As the baseline embeds: through a paid API (here the simulated upstream's).
        embedder = OpenAIEmbedder(api_key="test", base_url=llm, model="emb", dimensions=384)
        embedder.on_usage = usage_recorder(None, api_price_per_m=settings.embedding_price_per_m)
    return dataclasses.replace(
        runtime,
        settings=settings,
        chat_models=build_chat_models(settings),
        embedder=embedder,
        query_embedder=embedder,
    )


@pytest.fixture
def ask(runtime: Runtime, quick_llm: str, current_stay: StayFinder) -> Ask:
    """Ask questions as the guest of Caracola of a posada with these switches."""

    async def run(questions: list[str], **switches: Any) -> list[dict[str, Any]]:
        app = create_app(runtime=_variant(runtime, quick_llm, **switches))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            auth = await log_in(http, await current_stay("caracola"))
            bodies: list[dict[str, Any]] = []
            conversation = None
            for question in questions:
                response = await http.post(
                    "/api/guest/chat",
                    json={"message": question, "conversation_id": conversation},
                    headers=auth,
                )
                assert response.status_code == 200, response.text
                bodies.append(response.json())
                conversation = bodies[-1]["conversation_id"]
        return bodies

    return run


@pytest.fixture
async def upstream(quick_llm: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the simulated upstream's own figures."""
    async with httpx.AsyncClient(base_url=quick_llm.removesuffix("/v1")) as http:
        yield http


def test_the_baseline_profile_turns_every_switch_unless_told_otherwise() -> None:
    optimized = Settings(_env_file=None)
    baseline = Settings(_env_file=None, profile="baseline")
    for name, naive in BASELINE.items():
        assert getattr(baseline, name) == naive, name
        assert getattr(optimized, name) != naive, name
    told = Settings(_env_file=None, profile="baseline", llm_streaming=True)
    assert told.llm_streaming is True
    assert told.lookup == "sequential"


async def test_three_embedding_calls_go_to_the_api_and_are_paid(ask: Ask) -> None:
    question = "Where can I go snorkelling near the hotel?"
    optimized, baseline = (await ask([question]))[0], (await ask([question], embedding_calls=3))[0]
    assert (optimized["counters"]["embed_computed"], optimized["counters"]["embed_api_calls"]) == (
        1,
        0,
    )
    assert optimized["counters"]["embed_cost_usd"] == 0
    assert (baseline["counters"]["embed_computed"], baseline["counters"]["embed_api_calls"]) == (
        3,
        3,
    )
    assert baseline["counters"]["embed_cost_usd"] > 0
    assert baseline["answer"] == optimized["answer"], "the same vectors find the same passages"


async def test_sequential_lookup_runs_five_statements_and_finds_the_same_rows(
    runtime: Runtime, demo_tenant: Any, current_stay: StayFinder
) -> None:
    stay = await current_stay("caracola")
    visibility = Visibility(tenant_id=demo_tenant.id, unit_id=stay.unit_id)
    for text in ("wifi password", "¿A qué hora es el desayuno?", "dive shop"):
        embedding = (await runtime.embedder.embed_batch([text]))[0]
        found = {}
        for sequential in (False, True):
            with observe.measure() as stats:
                async with runtime.pool.connection() as conn:
                    found[sequential] = await retrieve(
                        conn,
                        visibility=visibility,
                        text=text,
                        embedding=embedding,
                        sequential=sequential,
                    )
            assert stats.db_queries == (5 if sequential else 1)
        assert [h.id for h in found[True].chunks] == [h.id for h in found[False].chunks]
        assert sorted(h.id for h in found[True].faqs) == sorted(h.id for h in found[False].faqs)
        assert [round(h.coverage, 6) for h in found[True].chunks] == [
            round(h.coverage, 6) for h in found[False].chunks
        ]


async def test_the_stepwise_store_and_sequential_lookup_make_at_least_eleven_round_trips(
    ask: Ask,
) -> None:
    questions = ["Is there a pool?", "Where can I rent a kayak?"]
    combined = await ask(questions, faq_answers=False)
    stepwise = await ask(
        questions, faq_answers=False, conversation_store="stepwise", lookup="sequential"
    )
    assert [b["counters"]["db_queries"] for b in combined] == [3, 3]
    # Stay, conversation (created or checked), insert, history, previous question; four
    # searches and a read of their rows; answer insert, count, update.
    assert [b["counters"]["db_queries"] for b in stepwise] == [13, 13]
    assert [b["answer"] for b in stepwise] == [b["answer"] for b in combined]


async def test_an_llm_rewrites_questions_that_have_history(ask: Ask) -> None:
    questions = ["Is there a pool?", "and the spa?"]
    local = await ask(questions)
    rewritten = await ask(questions, follow_up_rewrite="llm")
    assert rewritten[0]["counters"]["llm_calls"] == local[0]["counters"]["llm_calls"]
    assert "rewrite" not in rewritten[0]["timings"], "a first question has nothing to rewrite"
    assert rewritten[1]["counters"]["llm_calls"] == local[1]["counters"]["llm_calls"] + 1
    assert "rewrite" in rewritten[1]["timings"]
    assert rewritten[1]["counters"]["cost_usd"] > local[1]["counters"]["cost_usd"]


async def test_an_llm_classifies_the_intent_first(ask: Ask) -> None:
    plain, classified = [
        (await ask(["Where can I rent a kayak?"], **switches))[0]
        for switches in ({}, {"intent_detection": "llm"})
    ]
    assert classified["counters"]["llm_calls"] == plain["counters"]["llm_calls"] + 1
    assert "intent" in classified["timings"]


async def test_one_large_model_answers_everything(ask: Ask) -> None:
    routed, large = [
        (await ask(["Where can I rent a kayak?"], **switches))[0]
        for switches in ({}, {"tier_routing": "large"})
    ]
    assert (routed["layer"], routed["model"]) == ("llm", "gpt-4o-mini")
    assert (large["layer"], large["model"]) == ("llm", "gpt-4o")
    assert large["cost_usd"] > routed["cost_usd"], "the large model's prices are higher"


async def test_compaction_summarises_on_the_request_path(ask: Ask, runtime: Runtime) -> None:
    bodies = await ask(
        ["Is there a pool?", "Where can I rent a kayak?"],
        compaction_every=4,
        conversation_store="stepwise",
    )
    # The second answer is the conversation's fourth message: the summary runs then.
    assert "compact" not in bodies[0]["timings"]
    assert "compact" in bodies[1]["timings"]
    assert bodies[1]["counters"]["llm_calls"] == bodies[0]["counters"]["llm_calls"] + 1
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT summary FROM conversations WHERE id = %s", (bodies[1]["conversation_id"],)
        )
        row = await cur.fetchone()
    assert row is not None
    assert row[0]


async def test_without_streaming_the_answer_is_asked_for_whole(
    ask: Ask, upstream: httpx.AsyncClient
) -> None:
    before = (await upstream.get("/stats")).json()
    body = (await ask(["Where can I rent a kayak?"], llm_streaming=False))[0]
    after = (await upstream.get("/stats")).json()
    assert body["layer"] == "llm"
    assert body["answer"]
    assert after["whole"] == before["whole"] + 1
    assert after["started"] == before["started"], "no streamed request"
    assert body["usage"]["estimated"] is False


async def test_without_faq_answers_an_faq_question_goes_to_the_llm(ask: Ask) -> None:
    with_faq, without = [
        (await ask(["What time is check-out?"], **switches))[0]
        for switches in ({}, {"faq_answers": False})
    ]
    assert (with_faq["layer"], with_faq["counters"]["llm_calls"]) == ("faq", 0)
    assert (without["layer"], without["counters"]["llm_calls"]) == ("llm", 1)


async def test_without_context_the_naive_system_still_asks_the_llm(ask: Ask) -> None:
    question = "Is there a casino with roulette tables?"
    honest, naive = [
        (await ask([question], **switches))[0] for switches in ({}, {"llm_needs_context": False})
    ]
    assert (honest["layer"], honest["counters"]["llm_calls"]) == ("extractive", 0)
    assert (naive["layer"], naive["counters"]["llm_calls"]) == ("llm", 1)


async def test_a_stage_delay_slows_that_stage(ask: Ask) -> None:
    body = (await ask(["Where can I rent a kayak?"], stage_delay_ms={"lookup": 300}))[0]
    assert body["timings"]["lookup"] >= 300
