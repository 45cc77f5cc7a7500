"""The staff page's performance figures: per route percentiles over the window asked for,
answers by layer and the cache-and-FAQ share, from known rows of the persisted figures;
managers and owners only, each their own hotel's (never another's routes or costs); a
window that is none of hour, day or week is refused with a message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from posada.observe import histogram
from posada.runtime import Runtime
from tests.support.abuse import Hotel, app_client, make_hotel
from tests.support.staff_login import staff_login


def latency(*durations: float) -> list[int]:
    """The histogram of these durations (ms)."""
    counts = histogram.empty()
    for ms in durations:
        histogram.add(counts, ms)
    return counts


async def add_requests(
    runtime: Runtime,
    hotel: Hotel,
    route: str,
    durations: list[float],
    *,
    at: datetime,
    grain: str = "m",
    errors: int = 0,
    replica: str = "test-a",
) -> None:
    """A row of metric_requests as the rollup writer leaves it."""
    async with runtime.pool.connection() as conn:
        await conn.execute(
            """INSERT INTO metric_requests (grain, bucket, replica, tenant_id, route, requests,
                   errors, slow, latency_ms_sum, latency)
               VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s, %s)""",
            (grain, at, replica, hotel.tenant.id, route, len(durations), errors,
             sum(durations), latency(*durations)),
        )  # fmt: skip


async def add_answers(runtime: Runtime, hotel: Hotel, counts: dict[str, int], at: datetime) -> None:
    """Answers by layer, and a lookup row per cache layer (hits = its answers, one miss)."""
    async with runtime.pool.connection() as conn:
        for layer, n in counts.items():
            await conn.execute(
                """INSERT INTO metric_answers (grain, bucket, replica, tenant_id, layer, answers)
                   VALUES ('m', %s, 'test-a', %s, %s, %s)""",
                (at, hotel.tenant.id, layer, n),
            )
            if layer in ("exact", "semantic", "faq"):
                await conn.execute(
                    """INSERT INTO metric_layers (grain, bucket, replica, tenant_id, layer,
                           hits, misses) VALUES ('m', %s, 'test-a', %s, %s, %s, 1)""",
                    (at, hotel.tenant.id, layer, n),
                )


async def add_spend(runtime: Runtime, hotel: Hotel, cost: float, at: datetime) -> None:
    """One day's LLM spend."""
    async with runtime.pool.connection() as conn:
        await conn.execute(
            """INSERT INTO metric_llm (grain, bucket, replica, tenant_id, model, calls,
                   input_tokens, output_tokens, cost_usd)
               VALUES ('d', %s, 'test-a', %s, 'gpt-test', 3, 300, 30, %s)""",
            (at, hotel.tenant.id, cost),
        )


def this_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


async def test_percentiles_per_route_over_the_window_asked_for(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [("P1", "a", "3001", 1)])
    now = this_minute()
    # One route over two replicas and two minutes of the last hour: 100 requests, 1..100 ms.
    await add_requests(runtime, hotel, "POST /known/chat", [float(n) for n in range(1, 61)], at=now)
    await add_requests(
        runtime, hotel, "POST /known/chat", [float(n) for n in range(61, 101)],
        at=now - timedelta(minutes=30), replica="test-b", errors=2,
    )  # fmt: skip
    # Three days ago, as a day row: in the week, not in the hour or the day.
    await add_requests(
        runtime, hotel, "GET /known/old", [900.0] * 4,
        at=(now - timedelta(days=3)).replace(hour=0, minute=0), grain="d",
    )  # fmt: skip
    await add_requests(runtime, hotel, "GET /known/fast", [2.0] * 10, at=now)
    await add_requests(runtime, hotel, "GET /api/staff/events", [60_000.0] * 3, at=now)
    await add_answers(runtime, hotel, {"faq": 3, "exact": 2, "semantic": 1, "llm": 4}, now)

    async with app_client(runtime) as http:
        await staff_login(runtime, hotel, http, "manager")
        hour = (await http.get("/api/staff/performance", params={"window": "hour"})).json()
        week = (await http.get("/api/staff/performance", params={"window": "week"})).json()
        default = (await http.get("/api/staff/performance")).json()

    routes = {r["route"]: r for r in hour["routes"]}
    chat = routes["POST /known/chat"]
    assert (chat["requests"], chat["errors"]) == (100, 2)
    exact = list(range(1, 101))
    for p in (50, 95, 99):
        # The upper bound of the histogram bucket that holds the exact nearest-rank value.
        value = exact[p - 1]
        assert chat[f"p{p}_ms"] == histogram.BOUNDS[histogram.bucket_of(value)]
        assert chat[f"p{p}_ms"] >= value
    assert chat["mean_ms"] == 50.5
    assert "GET /known/old" not in routes
    assert {r["route"]: r["requests"] for r in week["routes"]}["GET /known/old"] == 4
    assert default["window"] == "hour"
    assert set(routes) <= {r["route"] for r in default["routes"]}

    # The slowest by P95, the live stream left out (its time is how long it stayed open).
    assert routes["GET /api/staff/events"]["stream"] is True
    slowest = [r["route"] for r in hour["slowest"]]
    assert "GET /api/staff/events" not in slowest
    assert slowest.index("POST /known/chat") < slowest.index("GET /known/fast")
    assert week["slowest"][0]["route"] == "GET /known/old"

    assert hour["answers_total"] == 10
    assert hour["answers"][0] == {"layer": "llm", "answers": 4}
    assert {a["layer"]: a["answers"] for a in hour["answers"]} == {
        "faq": 3, "exact": 2, "semantic": 1, "llm": 4,
    }  # fmt: skip
    assert hour["cache_faq_share"] == 0.6
    faq = next(layer for layer in hour["layers"] if layer["layer"] == "faq")
    assert (faq["hits"], faq["misses"], faq["hit_rate"]) == (3, 1, 0.75)


async def test_no_answers_no_share(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [("P2", "a", "3002", 1)])
    async with app_client(runtime) as http:
        await staff_login(runtime, hotel, http, "owner")
        response = await http.get("/api/staff/performance", params={"window": "day"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["answers_total"], body["cache_faq_share"], body["answers"]) == (0, None, [])


async def test_managers_and_owners_only(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [("P3", "a", "3003", 1)])
    async with app_client(runtime) as http:
        assert (await http.get("/api/staff/performance")).status_code == 401
        await staff_login(runtime, hotel, http, "reception")
        refused = await http.get("/api/staff/performance")
        assert refused.status_code == 403
        assert "manager" in refused.json()["detail"]
    for role in ("manager", "owner"):
        async with app_client(runtime) as http:
            await staff_login(runtime, hotel, http, role)
            assert (await http.get("/api/staff/performance")).status_code == 200


async def test_a_window_that_is_not_hour_day_or_week_is_refused(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [("P4", "a", "3004", 1)])
    async with app_client(runtime) as http:
        await staff_login(runtime, hotel, http, "manager")
        for bad in ("month", "", "HOUR", "1h"):
            response = await http.get("/api/staff/performance", params={"window": bad})
            assert response.status_code == 422, (bad, response.text)
            body = response.json()
            assert body["detail"]
            assert [e["field"] for e in body["errors"]] == ["query.window"]
            assert "hour" in body["errors"][0]["error"]


async def test_a_hotels_manager_never_sees_another_hotels_routes_or_costs(
    runtime: Runtime,
) -> None:
    one = await make_hotel(runtime, [("A1", "a", "4001", 1)])
    other = await make_hotel(runtime, [("B1", "a", "4002", 1)])
    now = this_minute()
    await add_requests(runtime, one, "GET /known/only-a", [5.0], at=now)
    await add_requests(runtime, other, "GET /known/only-b", [7.0] * 3, at=now)
    await add_answers(runtime, other, {"faq": 9}, now)
    today = now.replace(hour=0, minute=0)
    await add_spend(runtime, one, 0.25, today)
    await add_spend(runtime, other, 7.5, today)

    async with app_client(runtime) as http:
        await staff_login(runtime, one, http, "manager")
        mine = (await http.get("/api/staff/performance", params={"window": "week"})).json()
        costs = await http.get("/api/staff/costs", params={"month": now.strftime("%Y-%m")})
    seen = {r["route"] for r in mine["routes"]}
    assert "GET /known/only-a" in seen
    assert "GET /known/only-b" not in seen
    assert mine["answers_total"] == 0
    assert costs.status_code == 200, costs.text
    assert costs.json()["totals"]["llm_usd"] == 0.25

    async with app_client(runtime) as http:
        await staff_login(runtime, other, http, "owner")
        theirs = (await http.get("/api/staff/performance", params={"window": "week"})).json()
    assert "GET /known/only-a" not in {r["route"] for r in theirs["routes"]}
    assert theirs["answers_total"] == 9
