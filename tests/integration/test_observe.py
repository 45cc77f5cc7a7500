"""Timing headers, per-request counters, the request window, the N+1 detector, Prometheus."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from posada.api.app import create_app
from posada.api.deps import RuntimeDep
from posada.observe.window import RequestRecord, RequestWindow, percentile, summarize
from posada.providers.registry import build_chat_models
from posada.runtime import Runtime
from tests.support.helpers import LoginAs, StayFinder, log_in, serve_posada


def _server_timing(header: str) -> dict[str, float]:
    out = {}
    for part in header.split(", "):
        name, dur = part.split(";dur=")
        out[name] = float(dur)
    return out


async def _window(http: httpx.AsyncClient) -> dict[str, RequestRecord]:
    body = (await http.get("/api/performance/metrics?format=full")).json()
    return {r["request_id"]: RequestRecord(**r) for r in body["recent"]}


async def test_headers_carry_the_stages_and_agree_with_the_window(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    auth = await login_as("caracola")
    response = await client.post(
        "/api/guest/chat", json={"message": "What time is check-out?"}, headers=auth
    )
    assert response.status_code == 200
    response_ms = float(response.headers["X-Response-Time"].removesuffix("ms"))
    timing = _server_timing(response.headers["Server-Timing"])
    assert set(timing) == {"auth", "store", "embed", "lookup", "generate", "total"}
    assert next(iter(timing)) == "auth"
    assert timing["total"] == pytest.approx(response_ms, abs=0.001)
    assert max(timing.values()) == timing["total"], "stages overlap, none outlasts the total"
    body = response.json()
    for stage in ("auth", "store", "embed", "lookup", "generate"):
        assert body["timings"][stage] == pytest.approx(timing[stage], abs=0.001)

    record = (await _window(client))[response.headers["X-Request-ID"]]
    assert record.route == "/api/guest/chat"
    assert record.method == "POST"
    assert record.status == 200
    assert record.response_ms == pytest.approx(response_ms, abs=0.001)
    assert record.duration_ms >= record.response_ms
    assert record.stages == pytest.approx({k: v for k, v in timing.items() if k != "total"})
    assert record.tenant == "casa-azul"
    assert record.counters == body["counters"]


async def test_every_response_is_timed_even_errors(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/guest/chat", json={"message": "hi"})
    assert response.status_code == 401
    assert "X-Response-Time" in response.headers
    assert list(_server_timing(response.headers["Server-Timing"])) == ["total"]
    missing = await client.get("/no/such/page")
    record = (await _window(client))[missing.headers["X-Request-ID"]]
    assert (record.route, record.status) == ("unmatched", 404), "raw paths never become routes"
    invented = await client.request("BREW", "/no/such/pot")
    record = (await _window(client))[invented.headers["X-Request-ID"]]
    assert (record.method, record.route) == ("OTHER", "unmatched"), "nor made-up methods"


async def test_a_faq_answer_makes_three_round_trips_and_one_embedding(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    auth = await login_as("caracola")
    body = (
        await client.post(
            "/api/guest/chat", json={"message": "What time is check-out?"}, headers=auth
        )
    ).json()
    assert body["layer"] == "faq"
    # Store the question (with the history read), one lookup, store the answer.
    assert body["counters"] == {
        "db_queries": 3,
        "embed_computed": 1,
        "embed_api_calls": 0,
        "embed_cached": 0,
        "llm_calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0,
        "embed_cost_usd": 0,
    }


async def test_login_makes_six_round_trips_and_listing_one(
    client: httpx.AsyncClient, current_stay: StayFinder
) -> None:
    auth = await log_in(client, await current_stay("brisa"))
    records = await _window(client)
    login = [r for r in records.values() if r.route == "/api/guest/login"][-1]
    # The hotel by slug, a slot in the stay's and the address's throttle buckets (no Redis
    # here: in PostgreSQL), the reservation, and the two slots given back.
    assert login.counters["db_queries"] == 6
    listed = await client.get("/api/guest/conversations", headers=auth)
    record = (await _window(client))[listed.headers["X-Request-ID"]]
    assert record.counters["db_queries"] == 1
    assert record.counters["embed_computed"] == 0


@pytest.fixture
async def llm_client(runtime: Runtime, quick_llm: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app answering through the simulated upstream."""
    settings = runtime.settings.model_copy(
        update={"llm_base_url": quick_llm, "llm_api_key": SecretStr("test")}
    )
    with_llm = dataclasses.replace(runtime, chat_models=build_chat_models(settings))
    transport = httpx.ASGITransport(app=create_app(runtime=with_llm))
    async with httpx.AsyncClient(transport=transport, base_url="http://posada.test") as http:
        yield http


async def test_an_llm_answer_counts_one_call_its_tokens_and_cost(
    llm_client: httpx.AsyncClient, current_stay: StayFinder
) -> None:
    auth = await log_in(llm_client, await current_stay("coral"))
    body = (
        await llm_client.post(
            "/api/guest/chat",
            json={"message": "How much is a relaxing massage at the spa?"},
            headers=auth,
        )
    ).json()
    assert body["layer"] == "llm"
    counters = body["counters"]
    assert counters["db_queries"] == 3
    assert counters["embed_computed"] == 1
    assert counters["llm_calls"] == 1
    assert counters["input_tokens"] == body["usage"]["input_tokens"]
    assert counters["output_tokens"] == body["usage"]["output_tokens"]
    assert counters["cost_usd"] == pytest.approx(body["cost_usd"])

    text = (await llm_client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    tokens = {
        (s.labels["tenant"], s.labels["model"], s.labels["direction"]): s.value
        for s in families["posada_llm_tokens"].samples
        if s.name == "posada_llm_tokens_total"
    }
    assert tokens[("casa-azul", "gpt-4o-mini", "output")] == counters["output_tokens"]
    cost = [s for s in families["posada_llm_cost_usd"].samples if s.name.endswith("_total")]
    assert cost[0].labels == {"tenant": "casa-azul", "model": "gpt-4o-mini"}
    assert cost[0].value == pytest.approx(body["cost_usd"])


async def test_a_streamed_answer_ends_with_the_same_figures(
    llm_client: httpx.AsyncClient, current_stay: StayFinder
) -> None:
    auth = await log_in(llm_client, await current_stay("coral"))
    response = await llm_client.post(
        "/api/guest/chat/stream",
        json={"message": "How much is a relaxing massage at the spa?"},
        headers=auth,
    )
    done = json.loads(response.text.strip().split("\n\n")[-1].split("data: ", 1)[1])
    assert set(done["timings"]) == {"auth", "store", "embed", "lookup", "generate", "total"}
    assert done["counters"]["llm_calls"] == 1
    assert done["counters"]["db_queries"] == 3
    record = (await _window(llm_client))[response.headers["X-Request-ID"]]
    assert record.route == "/api/guest/chat/stream"
    assert record.stages == pytest.approx(
        {k: v for k, v in done["timings"].items() if k != "total"}
    )
    # The headers left before the answer was written; the window has the whole of it.
    assert record.duration_ms >= done["timings"]["total"] >= record.response_ms


async def test_the_n_plus_one_detector_flags_a_handler_repeating_a_statement(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(runtime=runtime)

    @app.get("/crafted/n-plus-one")
    async def one_query_per_row(rt: RuntimeDep) -> dict[str, int]:
        async with rt.pool.connection() as conn:
            cur = await conn.execute("SELECT id FROM chunks ORDER BY id LIMIT 15")
            ids = [r[0] for r in await cur.fetchall()]
            for chunk_id in ids:  # the classic mistake: one query per row
                await conn.execute("SELECT heading FROM chunks WHERE id = %s", (chunk_id,))
            await conn.execute("SELECT count(*) FROM chunks")
        return {"rows": len(ids)}

    @app.get("/crafted/batched")
    async def one_query(rt: RuntimeDep) -> dict[str, int]:
        async with rt.pool.connection() as conn:
            cur = await conn.execute("SELECT id, heading FROM chunks ORDER BY id LIMIT 15")
            rows = await cur.fetchall()
        return {"rows": len(rows)}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://posada.test") as http:
        rows = (await http.get("/crafted/n-plus-one")).json()["rows"]
        assert rows > runtime.settings.n_plus_one_threshold, "the demo has enough chunks"
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="posada.requests"):
            flagged = await http.get("/crafted/n-plus-one")
            fine = await http.get("/crafted/batched")
        records = await _window(http)
    bad, good = records[flagged.headers["X-Request-ID"]], records[fine.headers["X-Request-ID"]]
    assert bad.n_plus_one
    assert bad.counters["db_queries"] == rows + 2
    assert not good.n_plus_one
    assert good.counters["db_queries"] == 1
    warnings = [r.getMessage() for r in caplog.records if "N+1" in r.getMessage()]
    assert len(warnings) == 1
    assert f"ran {rows} times: SELECT heading FROM chunks WHERE id = %s" in warnings[0]  # noqa: S608


def test_percentiles_are_exact_on_a_known_series() -> None:
    assert percentile([], 95) == 0.0
    series = [float(n) for n in range(1, 101)]
    assert (percentile(series, 50), percentile(series, 95), percentile(series, 99)) == (
        50.0,
        95.0,
        99.0,
    )
    assert percentile([7.0], 99) == 7.0
    window = RequestWindow(size=100)
    for n in range(1, 121):  # the first 20 fall out of the window
        window.add(
            RequestRecord(
                request_id=str(n),
                at=0,
                method="GET",
                route="/a" if n % 2 else "/b",
                status=500 if n % 10 == 0 else 200,
                duration_ms=float(n),
                response_ms=float(n),
                counters={"db_queries": 2},
                slow=n > 110,
            )
        )
    summary = window.summary(full=True)
    overall = summary["overall"]
    assert overall["count"] == 100
    assert (overall["p50_ms"], overall["p95_ms"], overall["p99_ms"]) == (70.0, 115.0, 119.0)
    assert overall["error_rate"] == 0.1
    assert overall["slow_rate"] == 0.1
    assert overall["totals"] == {"db_queries": 200}
    assert overall["per_request"] == {"db_queries": 2.0}
    by_route = {r["route"]: r for r in summary["routes"]}
    assert by_route["GET /a"]["count"] == 50
    assert by_route["GET /a"]["p50_ms"] == 69.0  # 21, 23, ... 119: the 25th
    assert by_route["GET /b"]["error_rate"] == 0.2
    assert summary["top_slow"][0]["route"] == "GET /b"
    assert len(summary["recent"]) == 100
    assert summarize([])["count"] == 0
    assert window.summary(route="/a")["overall"]["count"] == 50


async def test_metrics_parse_with_the_prometheus_parser(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    auth = await login_as("caracola")
    await client.post("/api/guest/chat", json={"message": "What time is check-out?"}, headers=auth)
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for name in (
        "posada_request_duration_seconds",
        "posada_stage_duration_seconds",
        "posada_db_queries_per_request",
        "posada_embedded_texts",
        "posada_cache_outcomes",
    ):
        assert name in families, name
    counts = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["posada_request_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert counts[("/api/guest/chat", "200")] == 1
    assert counts[("/api/guest/login", "200")] == 1
    stages = {
        s.labels["stage"]
        for s in families["posada_stage_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert {"auth", "store", "embed", "lookup", "generate"} <= stages
    embedded = {
        (s.labels["provider"], s.labels["outcome"]): s.value
        for s in families["posada_embedded_texts"].samples
        if s.name.endswith("_total")
    }
    assert embedded == {("local", "computed"): 1}
    faq = {
        s.labels["outcome"]: s.value
        for s in families["posada_cache_outcomes"].samples
        if s.name.endswith("_total") and s.labels["layer"] == "faq"
    }
    assert faq == {"hit": 1}


async def test_staff_endpoints_need_the_admin_token_or_loopback(
    runtime: Runtime, login_as: LoginAs
) -> None:
    guest = await login_as("caracola")
    remote = httpx.ASGITransport(app=create_app(runtime=runtime), client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=remote, base_url="http://posada.test") as http:
        assert (await http.get("/api/performance/metrics")).status_code == 403
        assert (await http.get("/metrics")).status_code == 403

    settings = runtime.settings.model_copy(update={"admin_token": SecretStr("s3cret-admin")})
    guarded = dataclasses.replace(runtime, settings=settings)
    transport = httpx.ASGITransport(app=create_app(runtime=guarded))
    async with httpx.AsyncClient(transport=transport, base_url="http://posada.test") as http:
        assert (await http.get("/api/performance/metrics")).status_code == 401, "loopback too"
        assert (await http.get("/metrics", headers=guest)).status_code == 401, "a guest's token"
        wrong = {"Authorization": "Bearer s3cret-admiN"}
        assert (await http.get("/api/performance/metrics", headers=wrong)).status_code == 401
        right = {"Authorization": "Bearer s3cret-admin"}
        assert (await http.get("/api/performance/metrics", headers=right)).status_code == 200
        assert (await http.get("/metrics", headers=right)).status_code == 200
        assert (
            await http.get("/api/performance/metrics?format=everything", headers=right)
        ).status_code == 422


async def test_slow_requests_are_logged_as_one_structured_line(
    runtime: Runtime, login_as: LoginAs, caplog: pytest.LogCaptureFixture
) -> None:
    auth = await login_as("caracola")
    settings = runtime.settings.model_copy(update={"slow_request_ms": 0.001})
    app = create_app(runtime=dataclasses.replace(runtime, settings=settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://posada.test") as http:
        with caplog.at_level(logging.WARNING, logger="posada.requests"):
            response = await http.post(
                "/api/guest/chat", json={"message": "What time is check-out?"}, headers=auth
            )
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("slow request")]
    assert len(lines) == 1
    logged = json.loads(lines[0].removeprefix("slow request "))
    assert logged["request_id"] == response.headers["X-Request-ID"]
    assert logged["route"] == "/api/guest/chat"
    assert set(logged["stages"]) == {"auth", "store", "embed", "lookup", "generate"}
    assert logged["db_queries"] == 3


async def test_several_workers_share_one_metrics_view(
    runtime: Runtime, current_stay: StayFinder
) -> None:
    for base in serve_posada(runtime, "--workers", "2"):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            auth = await log_in(http, await current_stay("caracola"))
            folder = runtime.settings.data_dir / "prometheus"
            sent = 0
            # A new connection each time, until both workers have answered some (the kernel
            # may hand a dozen in a row to one worker; waiting for both is no race).
            while sent < 12 or (len(_writers(folder)) < 2 and sent < 200):
                async with httpx.AsyncClient(base_url=base, timeout=30) as fresh:
                    response = await fresh.post(
                        "/api/guest/chat", json={"message": "pool hours"}, headers=auth
                    )
                    assert response.status_code == 200
                sent += 1
            # Whichever worker answers, it reports every worker's requests.
            for _ in range(3):
                text = (await http.get("/metrics")).text
                families = {f.name: f for f in text_string_to_metric_families(text)}
                counts = [
                    s.value
                    for s in families["posada_request_duration_seconds"].samples
                    if s.name.endswith("_count") and s.labels["route"] == "/api/guest/chat"
                ]
                assert sum(counts) == sent, text
            # Both workers write their values where /metrics merges them from.
            assert len(_writers(folder)) == 2


def _writers(folder: Path) -> set[str]:
    """The processes that wrote multiprocess metrics into `folder` (by pid)."""
    return {f.stem.rsplit("_", 1)[1] for f in folder.glob("histogram_*.db")}


def _alert_rules() -> list[dict[str, str]]:
    import yaml

    text = (Path(__file__).parents[2] / "docs" / "alerts.yml").read_text()
    rules: list[dict[str, str]] = yaml.safe_load(text)["groups"][0]["rules"]
    return rules


async def test_alert_rules_name_only_metrics_posada_exposes(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    auth = await login_as("caracola")
    await client.post("/api/guest/chat", json={"message": "What time is check-out?"}, headers=auth)
    exposed = {
        sample.name
        for family in text_string_to_metric_families((await client.get("/metrics")).text)
        for sample in family.samples
    } | {  # counters that only appear once something happened
        "posada_slow_requests_total",
        "posada_llm_cost_usd_total",
        "posada_n_plus_one_requests_total",
        "posada_budget_projected_ratio",  # once a hotel with a budget is checked
    }
    rules = _alert_rules()
    names = {rule["alert"] for rule in rules}
    assert {"PosadaP95Regression", "PosadaErrorRate", "PosadaSlowRequestRate"} <= names
    assert "PosadaLLMCostPerHour" in names
    for rule in rules:
        used = set(re.findall(r"\bposada_[a-z0-9_]+", rule["expr"]))
        assert used, rule["alert"]
        assert used <= exposed, (rule["alert"], used - exposed)
