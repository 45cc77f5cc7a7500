"""docs/grafana/posada.json: a valid dashboard whose every query names what /metrics exposes;
time to first token observed; the per-hotel figures kept from other hotels' staff."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from posada.api.app import create_app
from posada.providers.registry import build_chat_models
from posada.runtime import Runtime
from tests.support.helpers import StayFinder, log_in, serve_posada

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana" / "posada.json"
LLM_QUESTION = "How much is a relaxing massage at the spa?"
FAQ_QUESTION = "What time is check-out?"
# Series that need an event the test's traffic does not make: a budget check, an
# embedding API (the session embeds locally). Their families are still declared.
NEEDS_AN_EVENT = {
    "posada_budget_projected_ratio",
    "posada_embedding_api_calls_total",
}
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": ("",),
}


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL the dashboard runs: the panels' targets and the variables' queries."""
    exprs = [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]
    return exprs + [v["definition"] for v in dashboard["templating"]["list"]]


def _names(expr: str) -> set[str]:
    return set(re.findall(r"\bposada_[a-z0-9_]+", expr))


def _labels_used(expr: str) -> Iterator[tuple[str, str]]:
    """(metric, label) for each label a selector matches or an aggregation keeps."""
    for metric, body in re.findall(r"\b(posada_[a-z0-9_]+)\{([^}]*)\}", expr):
        for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", body):
            yield metric, label
    pattern = r"by \(([^)]*)\) \((?:(?:rate|increase)\()?(posada_[a-z0-9_]+)"
    for labels, metric in re.findall(pattern, expr):
        for label in labels.split(","):
            yield metric, label.strip()


def _exposition(text: str) -> tuple[set[str], dict[str, set[str]]]:
    """The sample names each declared family may have, and the labels seen on each name."""
    declared: set[str] = set()
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        declared |= {family.name + s for s in _SUFFIXES.get(family.type, ("",))}
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return declared, labels


def test_the_dashboard_is_a_grafana_dashboard_with_the_expected_panels() -> None:
    dashboard = _dashboard()
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    assert dashboard["__inputs"][0]["pluginId"] == "prometheus"
    panels = list(_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    graphs = [p for p in panels if p["type"] != "row"]
    assert len({p["title"] for p in graphs}) == len(graphs), "panel titles are unique"
    for panel in graphs:
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        for t in panel["targets"]:
            assert t["expr"].count("(") == t["expr"].count(")"), t["expr"]
            assert t["expr"].count("{") == t["expr"].count("}"), t["expr"]
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"tenant", "route"}
    used = set().union(*(_names(e) for e in _queries(dashboard)))
    assert {
        "posada_request_duration_seconds_bucket",
        "posada_request_duration_seconds_count",
        "posada_cache_outcomes_total",
        "posada_answers_total",
        "posada_llm_cost_usd_total",
        "posada_llm_tokens_total",
        "posada_llm_ttft_seconds_bucket",
        "posada_embedding_api_calls_total",
        "posada_budget_projected_ratio",
        "posada_db_queries_per_request_sum",
    } <= used
    per_hotel = [e for e in _queries(dashboard) if "posada_answers_total{" in e]
    assert per_hotel
    assert all('tenant=~"$tenant"' in e for e in per_hotel), "the hotel variable applies"


@pytest.fixture
async def llm_http(runtime: Runtime, quick_llm: str) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh app (its own registry) answering through the simulated upstream; every
    request counts as slow, and one statement run twice as N+1, so those series exist too."""
    settings = runtime.settings.model_copy(
        update={
            "llm_base_url": quick_llm,
            "llm_api_key": SecretStr("test"),
            "slow_request_ms": 0.001,
            "n_plus_one_threshold": 1,
        }
    )
    with_llm = dataclasses.replace(
        runtime, settings=settings, chat_models=build_chat_models(settings)
    )
    transport = httpx.ASGITransport(app=create_app(runtime=with_llm))
    async with httpx.AsyncClient(transport=transport, base_url="http://posada.test") as http:
        yield http


async def test_every_metric_a_panel_names_is_exposed_after_traffic(
    llm_http: httpx.AsyncClient, current_stay: StayFinder
) -> None:
    auth = await log_in(llm_http, await current_stay("coral"))
    llm = await llm_http.post("/api/guest/chat", json={"message": LLM_QUESTION}, headers=auth)
    assert llm.json()["layer"] == "llm"
    faq = await llm_http.post("/api/guest/chat", json={"message": FAQ_QUESTION}, headers=auth)
    assert faq.json()["layer"] == "faq"
    text = (await llm_http.get("/metrics")).text
    declared, seen = _exposition(text)

    dashboard = _dashboard()
    for expr in _queries(dashboard):
        names = _names(expr)
        assert names, expr
        assert names <= declared, (expr, names - declared)
        for name in names - NEEDS_AN_EVENT:
            assert name in seen, f"{name}: no series after a chat through the LLM"
        for metric, label in _labels_used(expr):
            if metric in seen:
                assert label in seen[metric], (expr, metric, label)

    answers = {
        (s.labels["tenant"], s.labels["layer"]): s.value
        for f in text_string_to_metric_families(text)
        if f.name == "posada_answers"
        for s in f.samples
        if s.name == "posada_answers_total"
    }
    assert answers == {("casa-azul", "llm"): 1, ("casa-azul", "faq"): 1}


def _ttft(text: str) -> dict[str, tuple[float, float]]:
    """model -> (count, sum) of posada_llm_ttft_seconds."""
    out: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "posada_llm_ttft_seconds":
            continue
        for s in family.samples:
            if s.name.endswith(("_count", "_sum")):
                pair = out.setdefault(s.labels["model"], [0.0, 0.0])
                pair[0 if s.name.endswith("_count") else 1] += s.value
    return {model: (count, total) for model, (count, total) in out.items()}


async def test_a_streamed_llm_answer_observes_its_time_to_first_token(
    llm_http: httpx.AsyncClient, current_stay: StayFinder
) -> None:
    auth = await log_in(llm_http, await current_stay("coral"))
    assert _ttft((await llm_http.get("/metrics")).text) == {}
    response = await llm_http.post(
        "/api/guest/chat/stream", json={"message": LLM_QUESTION}, headers=auth
    )
    assert response.status_code == 200
    done = json.loads(response.text.strip().split("\n\n")[-1].split("data: ", 1)[1])
    assert done["layer"] == "llm"
    ttft = _ttft((await llm_http.get("/metrics")).text)
    assert set(ttft) == {done["model"]}
    count, seconds = ttft[done["model"]]
    assert count == 1
    # The simulated upstream waits 10 ms before its first token (conftest's quick_llm),
    # and the first token comes before the answer is done.
    assert 0.010 <= seconds <= done["timings"]["generate"] / 1000

    # An answer that needs no model observes none.
    faq = await llm_http.post("/api/guest/chat", json={"message": FAQ_QUESTION}, headers=auth)
    assert faq.json()["layer"] == "faq"
    assert _ttft((await llm_http.get("/metrics")).text)[done["model"]][0] == 1


async def test_several_workers_expose_the_llm_series_the_dashboard_reads(
    runtime: Runtime, quick_llm: str, current_stay: StayFinder
) -> None:
    env = {"POSADA_LLM_BASE_URL": quick_llm, "POSADA_LLM_API_KEY": "test"}
    for base in serve_posada(runtime, "--workers", "2", env=env):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            auth = await log_in(http, await current_stay("coral"))
            for _ in range(4):
                async with httpx.AsyncClient(base_url=base, timeout=30) as fresh:
                    body = (
                        await fresh.post(
                            "/api/guest/chat", json={"message": LLM_QUESTION}, headers=auth
                        )
                    ).json()
                    assert body["layer"] == "llm"
            text = (await http.get("/metrics")).text
    _, seen = _exposition(text)
    for name in (
        "posada_llm_ttft_seconds_bucket",
        "posada_answers_total",
        "posada_llm_cost_usd_total",
        "posada_llm_tokens_total",
    ):
        assert name in seen, name
    assert sum(count for count, _ in _ttft(text).values()) == 4
