"""The persisted figures on the real database: written by the rollups, rolled up into hours
and days, kept apart by hotel, and added up across two real `posada serve` processes whose
merged percentiles agree with their request windows."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TypedDict

import httpx

from posada.core.context import LLMUse, RequestStats
from posada.observe import histogram
from posada.observe.figures import (
    answer_figures,
    embedding_figures,
    layer_figures,
    model_figures,
    route_figures,
)
from posada.observe.rollup import Retention, Rollups, roll_up
from posada.observe.window import RequestRecord
from posada.runtime import Runtime
from posada.tenants.service import Tenant
from posada_bench.traffic import demo_guests
from tests.support.helpers import CliResult, posada_env, posada_process, run_cli

EVER = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
ADMIN = "rollups-admin-token-0123456789"


class Window(TypedDict):
    since: datetime
    until: datetime
    replicas: list[str]


def _ever(replicas: str | list[str]) -> Window:
    """All time, on these replicas."""
    listed = [replicas] if isinstance(replicas, str) else replicas
    return {"since": EVER[0], "until": EVER[1], "replicas": listed}


def _replica() -> str:
    """A replica name of the test's own: its rows are the only ones read."""
    return f"test-{uuid.uuid4().hex[:8]}"


def _record(at: datetime, ms: float, *, route: str = "/api/x", status: int = 200) -> RequestRecord:
    return RequestRecord(
        request_id=uuid.uuid4().hex,
        at=at.timestamp(),
        method="GET",
        route=route,
        status=status,
        duration_ms=ms,
        response_ms=ms,
        slow=ms > 1000,
    )


def _stats(tenant_id: int | None, **figures: object) -> RequestStats:
    stats = RequestStats(tenant_id=tenant_id)
    for name, value in figures.items():
        setattr(stats, name, value)
    return stats


def _exact(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile, as the request window computes it."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def _holds(bound: float, exact: float) -> bool:
    """`bound` is the upper bound of the histogram bucket that holds `exact`."""
    i = histogram.bucket_of(exact)
    lower = histogram.BOUNDS[i - 1] if i else 0.0
    return bound == histogram.BOUNDS[i] and lower < exact <= bound


async def test_a_flush_writes_every_table_and_a_second_adds_into_the_same_rows(
    runtime: Runtime, demo_tenant: Tenant
) -> None:
    replica = _replica()
    rollups = Rollups(replica=replica)
    at = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)
    durations = [3.0, 7.5, 12.0, 250.0, 1500.0]
    for _ in range(2):
        for ms in durations:
            stats = _stats(
                demo_tenant.id,
                cache=[("exact", "miss"), ("faq", "hit")],
                answers=["faq"],
                llm=[LLMUse("gpt-4o-mini", 100, 20, 0.001)],
                embed_computed=1,
                embed_provider="local",
            )
            rollups.add(_record(at + timedelta(seconds=ms / 100), ms), stats)
        rollups.add(_record(at, 5.0, status=503), _stats(None))
        assert await rollups.flush(runtime.pool) == 7  # rows: 2 routes, 2 layers, 3 more
        assert rollups.pending == 0

    window = _ever(replica)
    async with runtime.pool.connection() as conn:
        routes = await route_figures(conn, tenant_id=demo_tenant.id, **window)
        everyone = await route_figures(conn, tenant_id=None, **window)
        layers = await layer_figures(conn, tenant_id=demo_tenant.id, **window)
        answers = await answer_figures(conn, tenant_id=demo_tenant.id, **window)
        models = await model_figures(conn, tenant_id=demo_tenant.id, **window)
        embeddings = await embedding_figures(conn, tenant_id=demo_tenant.id, **window)
        cur = await conn.execute(
            "SELECT count(*) FROM metric_requests WHERE replica = %s", (replica,)
        )
        assert await cur.fetchone() == (2,), "one row per (minute, hotel, route), added into"
    (route,) = routes
    assert (route.route, route.requests, route.errors, route.slow) == ("GET /api/x", 10, 0, 2)
    assert route.mean_ms == round(sum(durations) / 5, 3)
    for p, bound in ((50, route.p50_ms), (95, route.p95_ms), (99, route.p99_ms)):
        assert _holds(bound, _exact(durations * 2, p))
    assert [(r.requests, r.errors) for r in everyone] == [(12, 2)]
    assert [(x.layer, x.hits, x.misses, x.hit_rate) for x in layers] == [
        ("exact", 0, 10, 0.0),
        ("faq", 10, 0, 1.0),
    ]
    assert (answers.total, answers.by_layer) == (10, {"faq": 10})
    ((model, calls, tokens_in, tokens_out, cost),) = [
        (m.model, m.calls, m.input_tokens, m.output_tokens, m.cost_usd) for m in models
    ]
    assert (model, calls, tokens_in, tokens_out) == ("gpt-4o-mini", 10, 1000, 200)
    assert abs(cost - 0.01) < 1e-9
    assert [(e.provider, e.computed, e.cached) for e in embeddings] == [("local", 10, 0)]


async def test_the_workers_of_one_replica_add_into_the_same_rows_at_once(
    runtime: Runtime, demo_tenant: Tenant
) -> None:
    replica = _replica()
    workers = [Rollups(replica=replica) for _ in range(3)]
    at = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
    for n, worker in enumerate(workers):
        for route in ("/api/a", "/api/b", "/api/c"):
            for i in range(n + 1):
                worker.add(_record(at, 10.0 + i, route=route), _stats(demo_tenant.id))
            worker.add(_record(at, 1.0, route=route), _stats(None))
    assert await asyncio.gather(*(w.flush(runtime.pool) for w in workers)) == [6, 6, 6]
    async with runtime.pool.connection() as conn:
        hotel = await route_figures(conn, tenant_id=demo_tenant.id, **_ever(replica))
        cur = await conn.execute(
            "SELECT count(*) FROM metric_requests WHERE replica = %s", (replica,)
        )
        assert await cur.fetchone() == (6,), "three routes, of the hotel and of none"
    assert [(f.route, f.requests) for f in hotel] == [
        ("GET /api/a", 6),
        ("GET /api/b", 6),
        ("GET /api/c", 6),
    ]


async def test_a_failed_flush_keeps_the_figures_for_the_next(runtime: Runtime) -> None:
    replica = _replica()
    rollups = Rollups(replica=replica)
    at = datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
    rollups.add(_record(at, 4.0), _stats(None))

    class Down:
        def connection(self) -> object:
            raise OSError("the database is away")

    assert await rollups.flush(Down()) == 0  # type: ignore[arg-type]
    rollups.add(_record(at, 6.0), _stats(None))
    assert rollups.pending == 1
    assert await rollups.flush(runtime.pool) == 1
    async with runtime.pool.connection() as conn:
        (route,) = await route_figures(conn, tenant_id=None, **_ever(replica))
    assert (route.requests, route.mean_ms) == (2, 5.0)


async def test_the_roll_up_keeps_sums_and_histograms_and_deletes_past_retention(
    runtime: Runtime, demo_tenant: Tenant
) -> None:
    replica = _replica()
    rollups = Rollups(replica=replica)
    now = datetime(2026, 6, 15, 10, 20, tzinfo=UTC)
    retention = Retention(minute_hours=48, hour_days=35, day_days=400)
    # Recent minutes stay minutes; two-day-old ones become hours; older hours become days;
    # days past retention go.
    moments = {
        "minute": now - timedelta(minutes=5),
        "hour": now - timedelta(hours=60, minutes=7),
        "hour-2": now - timedelta(hours=60, minutes=15),
        "day": now - timedelta(days=40, hours=3),
        "expired": now - timedelta(days=401),
    }
    durations: dict[str, list[float]] = {}
    for n, (name, moment) in enumerate(moments.items()):
        durations[name] = [1.0 + n + i * 3.7 for i in range(20)]
        for i, ms in enumerate(durations[name]):
            stats = _stats(demo_tenant.id, answers=["exact"], cache=[("exact", "hit")])
            rollups.add(_record(moment + timedelta(seconds=i), ms), stats)
    await rollups.flush(runtime.pool)

    kept = [ms for name, values in durations.items() if name != "expired" for ms in values]

    async def figures() -> tuple[list[tuple[str, int]], tuple[int, ...], int, int]:
        async with runtime.pool.connection() as conn:
            routes = await route_figures(conn, tenant_id=demo_tenant.id, **_ever(replica))
            answers = await answer_figures(conn, tenant_id=demo_tenant.id, **_ever(replica))
            cur = await conn.execute(
                """SELECT grain, count(*)::int FROM metric_requests WHERE replica = %s
                   GROUP BY grain ORDER BY grain""",
                (replica,),
            )
            grains = [(g, n) for g, n in await cur.fetchall()]
        (route,) = routes
        return grains, route.latency, route.requests, answers.total

    grains, latency_before, requests, answered = await figures()
    assert grains == [("m", 5)]
    assert requests == answered == 100

    async with runtime.pool.connection() as conn:
        report = await roll_up(conn, now=now, retention=retention)
    assert report is not None
    grains, latency_after, requests, answered = await figures()
    # Minutes: the recent one. Hours: the two minutes of one hour, in one row. Days: the
    # 40-day-old hour, and the 401-day-old one (as a day, past retention) deleted.
    assert grains == [("d", 1), ("h", 1), ("m", 1)]
    assert requests == answered == 80
    expected = histogram.empty()
    for ms in kept:
        histogram.add(expected, ms)
    assert list(latency_after) == expected
    assert latency_before != latency_after

    # Run again at the same clock: nothing moves twice.
    async with runtime.pool.connection() as conn:
        again = await roll_up(conn, now=now, retention=retention)
    assert again is not None
    assert (again.hours, again.days, again.deleted) == (0, 0, 0)
    assert (await figures())[2] == 80


async def test_only_one_roll_up_runs_at_a_time(runtime: Runtime) -> None:
    now = datetime.now(UTC)
    async with runtime.pool.connection() as holder, holder.transaction():
        await holder.execute("SELECT pg_advisory_xact_lock(%s)", (0x706F736164610010,))
        async with runtime.pool.connection() as conn:
            assert await roll_up(conn, now=now, retention=Retention()) is None


async def test_one_hotels_figures_never_hold_anothers(
    runtime: Runtime, demo_tenant: Tenant, new_tenant: Tenant
) -> None:
    replica = _replica()
    rollups = Rollups(replica=replica)
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for i in range(3):
        rollups.add(
            _record(at, 10.0 + i, route="/api/guest/chat"),
            _stats(demo_tenant.id, answers=["llm"], cache=[("exact", "miss")]),
        )
    rollups.add(
        _record(at, 900.0, route="/api/other"),
        _stats(new_tenant.id, answers=["faq"], cache=[("faq", "hit")],
               llm=[LLMUse("gpt-4o", 1, 1, 5.0)]),
    )  # fmt: skip
    await rollups.flush(runtime.pool)
    window = _ever(replica)
    async with runtime.pool.connection() as conn:
        mine = await route_figures(conn, tenant_id=demo_tenant.id, **window)
        theirs = await route_figures(conn, tenant_id=new_tenant.id, **window)
        my_answers = await answer_figures(conn, tenant_id=demo_tenant.id, **window)
        my_layers = await layer_figures(conn, tenant_id=demo_tenant.id, **window)
        my_models = await model_figures(conn, tenant_id=demo_tenant.id, **window)
        everyone = await route_figures(conn, tenant_id=None, **window)
    assert [(r.route, r.requests) for r in mine] == [("GET /api/guest/chat", 3)]
    assert [(r.route, r.requests) for r in theirs] == [("GET /api/other", 1)]
    assert max(r.p99_ms for r in mine) < 900
    assert my_answers.by_layer == {"llm": 3}
    assert [x.layer for x in my_layers] == ["exact"]
    assert my_models == []
    assert sum(r.requests for r in everyone) == 4


QUESTIONS = (
    "¿Cuál es la clave del wifi?",
    "What time is check-out?",
    "Where can I go diving near the hotel?",
    "¿Tienen servicio de lavandería y cuánto cuesta?",
)


async def _traffic(base: str, rounds: int) -> list[RequestRecord]:
    """Health checks, guest logins and chats through one process; then its window, once it
    holds every one of them."""
    sent: set[str] = set()

    async def note(response: httpx.Response) -> None:
        sent.add(response.headers["X-Request-ID"])

    hooks = {"response": [note]}
    async with httpx.AsyncClient(base_url=base, timeout=60, event_hooks=hooks) as http:
        guests = await demo_guests(http)
        for i in range(rounds):
            assert (await http.get("/healthz")).status_code == 200
            chat = await http.post(
                "/api/guest/chat",
                json={"message": QUESTIONS[i % len(QUESTIONS)]},
                headers=guests[i % len(guests)],
            )
            assert chat.status_code == 200, chat.text
        assert (await http.get("/api/guest/no-such-route")).status_code == 404
        # A request is recorded when its handler is done, which may be after its client
        # has the last byte (work after the response): read until none is missing.
        for _ in range(100):
            window = await http.get(
                "/api/performance/metrics",
                params={"format": "full"},
                headers={"Authorization": f"Bearer {ADMIN}"},
            )
            assert window.status_code == 200, window.text
            records = [RequestRecord(**r) for r in window.json()["recent"]]
            if sent - {window.headers["X-Request-ID"]} <= {r.request_id for r in records}:
                return records
            await asyncio.sleep(0.1)
    raise AssertionError("the window never held every request sent")


async def test_two_processes_add_up_to_the_percentiles_of_their_windows(
    runtime: Runtime, demo_tenant: Tenant, quick_llm: str
) -> None:
    first, second = _replica(), _replica()
    env = {
        "POSADA_ADMIN_TOKEN": ADMIN,
        "POSADA_LLM_BASE_URL": quick_llm,
        "POSADA_LLM_API_KEY": "test",
    }
    with (
        posada_process(runtime, env={**env, "POSADA_METRICS_REPLICA": first}) as (one, _),
        posada_process(runtime, env={**env, "POSADA_METRICS_REPLICA": second}) as (two, _),
    ):
        windows = await asyncio.gather(_traffic(one, 24), _traffic(two, 17))
    # Both stopped: each wrote what it still held as it shut down.
    records = [r for window in windows for r in window]
    by_route: dict[str, list[float]] = {}
    for record in records:
        by_route.setdefault(record.key, []).append(record.duration_ms)

    async with runtime.pool.connection() as conn:
        merged = await route_figures(conn, tenant_id=None, **_ever([first, second]))
        alone = [await route_figures(conn, tenant_id=None, **_ever([r])) for r in (first, second)]
        hotel = await route_figures(conn, tenant_id=demo_tenant.id, **_ever([first, second]))
        answers = await answer_figures(conn, tenant_id=None, **_ever([first, second]))
        models = await model_figures(conn, tenant_id=None, **_ever([first, second]))
        embeddings = await embedding_figures(conn, tenant_id=None, **_ever([first, second]))

    figures = {f.route: f for f in merged}
    # Each process's last read of its window came after the window it returned.
    assert figures["GET /api/performance/metrics"].requests == 2 + len(
        by_route.pop("GET /api/performance/metrics", [])
    )
    figures.pop("GET /api/performance/metrics")
    assert {route: f.requests for route, f in figures.items()} == {
        route: len(durations) for route, durations in by_route.items()
    }
    for route, f in figures.items():
        for p, bound in ((50, f.p50_ms), (95, f.p95_ms), (99, f.p99_ms)):
            exact = _exact(by_route[route], p)
            assert _holds(bound, exact), (route, p, bound, exact)
        assert f.errors == sum(r.status >= 500 for r in records if r.key == route)
        # Rounded to 3 decimals from sums added in another order: a tie may round either way.
        mean = sum(by_route[route]) / len(by_route[route])
        assert abs(f.mean_ms - mean) <= 0.0005 + 1e-9, (route, f.mean_ms, mean)
    for replica_figures, window in zip(alone, windows, strict=True):
        assert sum(f.requests for f in replica_figures) == len(window) + 1

    demo = dict.fromkeys(by_route, 0)
    for record in records:
        if record.tenant == demo_tenant.slug:
            demo[record.key] += 1
    assert {f.route: f.requests for f in hotel} == {k: n for k, n in demo.items() if n}
    chats = [r for r in records if r.key == "POST /api/guest/chat"]
    assert len(chats) == 24 + 17
    assert answers.total == len(chats)

    def total(name: str) -> float:
        return sum(r.counters.get(name, 0) for r in records)

    assert sum(m.input_tokens for m in models) == total("input_tokens") > 0
    assert sum(m.output_tokens for m in models) == total("output_tokens")
    assert abs(sum(m.cost_usd for m in models) - total("cost_usd")) < 1e-6
    assert sum(e.computed for e in embeddings) == total("embed_computed")
    assert sum(e.cached for e in embeddings) == total("embed_cached")


async def test_the_cli_rolls_up_at_a_given_clock_and_reads_a_hotels_routes(
    runtime: Runtime, demo_tenant: Tenant, new_tenant: Tenant
) -> None:
    replica = _replica()
    rollups = Rollups(replica=replica)
    recent = datetime.now(UTC) - timedelta(minutes=10)
    for ms in (5.0, 6.0, 70.0):
        rollups.add(_record(recent, ms), _stats(demo_tenant.id))
    rollups.add(_record(recent, 9.0, route="/api/theirs"), _stats(new_tenant.id))
    await rollups.flush(runtime.pool)
    env = posada_env(runtime)

    async def cli(*args: str) -> CliResult:
        return await asyncio.to_thread(run_cli, env, "metrics", *args)

    rolled = await cli("rollup", "--now", "2000-01-01T00:00:00")
    assert rolled.returncode == 0, rolled.stderr
    assert rolled.stdout.startswith("rolled up at 2000-01-01 00:00 UTC: 0 hour rows")

    read = await cli("routes", "--tenant", demo_tenant.slug, "--replica", replica, "--json")
    assert read.returncode == 0, read.stderr
    (route,) = json.loads(read.stdout)
    assert (route["route"], route["requests"]) == ("GET /api/x", 3)
    assert route["p50_ms"] == histogram.BOUNDS[histogram.bucket_of(6.0)]
    shown = await cli("routes", "--hours", "2", "--replica", replica)
    assert "GET /api/theirs" in shown.stdout
    assert "GET /api/x" in shown.stdout

    unknown = await cli("routes", "--tenant", "no-such-hotel")
    assert unknown.returncode == 1
    assert "no-such-hotel" in unknown.stderr or "not found" in unknown.stderr.lower()
