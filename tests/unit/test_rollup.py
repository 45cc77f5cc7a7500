"""The rollups' accumulation in memory: what one request adds, per minute, hotel and key;
the bound on what waits; what a failed write keeps; the settings that shape them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from posada.core.config import Settings
from posada.core.context import LLMUse, RequestStats
from posada.observe import histogram
from posada.observe.rollup import (
    ANSWERS,
    EMBEDDINGS,
    LAYERS,
    LLM,
    REQUESTS,
    TABLES,
    UPSERT,
    Rollups,
    _array_text,
    rollups_for,
)
from posada.observe.window import RequestRecord

NOON = datetime(2026, 5, 4, 12, 0, 30, tzinfo=UTC).timestamp()
MINUTE = int(NOON // 60)


def _record(at: float, ms: float, *, status: int = 200, route: str = "/api/guest/chat",
            slow: bool = False) -> RequestRecord:  # fmt: skip
    return RequestRecord(
        request_id="r", at=at, method="POST", route=route, status=status,
        duration_ms=ms, response_ms=ms, slow=slow,
    )  # fmt: skip


def test_a_request_adds_to_its_minutes_rows_in_every_table() -> None:
    rollups = Rollups(replica="a")
    stats = RequestStats(
        tenant_id=7,
        cache=[("exact", "miss"), ("semantic", "miss"), ("faq", "hit")],
        answers=["faq"],
        llm=[LLMUse("small", 120, 30, 0.0002), LLMUse("small", 10, 5, 0.0001)],
        embed_computed=1,
        embed_cached=2,
        embed_api_calls=1,
        embed_cost_usd=0.00001,
        embed_provider="openai",
    )
    rollups.add(_record(NOON, 12.5, slow=True), stats)
    rollups.add(_record(NOON + 20, 600.0, status=502), RequestStats(tenant_id=7))
    rows = rollups._sums.rows
    key = (MINUTE, 7, "POST /api/guest/chat")
    assert rows[REQUESTS] == {key: [2, 1, 1, 612.5]}
    latency = rollups._sums.latency[key]
    assert sum(latency) == 2
    assert latency[histogram.bucket_of(12.5)] == latency[histogram.bucket_of(600.0)] == 1
    assert rows[LAYERS] == {
        (MINUTE, 7, "exact"): [0, 1],
        (MINUTE, 7, "semantic"): [0, 1],
        (MINUTE, 7, "faq"): [1, 0],
    }
    assert rows[ANSWERS] == {(MINUTE, 7, "faq"): [1]}
    ((llm_key, llm),) = rows[LLM].items()
    assert llm_key == (MINUTE, 7, "small")
    assert llm[:3] == [2, 130, 35]
    assert llm[3] == pytest.approx(0.0003)
    assert rows[EMBEDDINGS] == {(MINUTE, 7, "openai"): [1, 2, 1, 0.00001]}
    assert rollups.pending == 7


def test_minutes_hotels_and_routes_are_rows_of_their_own() -> None:
    rollups = Rollups(replica="a")
    rollups.add(_record(NOON, 1.0), RequestStats(tenant_id=1))
    rollups.add(_record(NOON + 60, 1.0), RequestStats(tenant_id=1))
    rollups.add(_record(NOON, 1.0), RequestStats(tenant_id=2))
    rollups.add(_record(NOON, 1.0), RequestStats(tenant_id=None))
    rollups.add(_record(NOON, 1.0, route="/healthz"), RequestStats(tenant_id=None))
    assert sorted(rollups._sums.rows[REQUESTS], key=str) == sorted(
        [
            (MINUTE, 1, "POST /api/guest/chat"),
            (MINUTE + 1, 1, "POST /api/guest/chat"),
            (MINUTE, 2, "POST /api/guest/chat"),
            (MINUTE, None, "POST /api/guest/chat"),
            (MINUTE, None, "POST /healthz"),
        ],
        key=str,
    )
    assert rollups._sums.rows[EMBEDDINGS] == {}, "no embedding, no embedding row"


def test_past_the_bound_the_oldest_minutes_go_and_the_log_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rollups = Rollups(replica="a", max_rows=100)
    with caplog.at_level(logging.WARNING, logger="posada.observe.rollup"):
        for minute in range(30):
            for route in range(4):
                rollups.add(_record(NOON + 60 * minute, 1.0, route=f"/r{route}"), RequestStats())
    assert rollups.pending <= 100
    kept = {key[0] for key in rollups._sums.rows[REQUESTS]}
    assert max(kept) == MINUTE + 29, "the newest minute is kept"
    assert min(kept) > MINUTE, "the oldest went first"
    assert rollups.dropped_requests == 120 - rollups.pending
    assert "dropped" in caplog.text


class _Down:
    def connection(self) -> object:
        raise OSError("the database is away")


async def test_a_failed_write_keeps_the_rows_and_adds_what_came_meanwhile() -> None:
    rollups = Rollups(replica="a")
    rollups.add(_record(NOON, 2.0), RequestStats(tenant_id=3, answers=["llm"]))
    assert await rollups.flush(_Down()) == 0  # type: ignore[arg-type]
    rollups.add(_record(NOON, 4.0), RequestStats(tenant_id=3, answers=["llm"]))
    assert await rollups.flush(_Down()) == 0  # type: ignore[arg-type]
    key = (MINUTE, 3, "POST /api/guest/chat")
    assert rollups._sums.rows[REQUESTS][key] == [2, 0, 0, 6.0]
    assert sum(rollups._sums.latency[key]) == 2
    assert rollups._sums.rows[ANSWERS][(MINUTE, 3, "llm")] == [2]


async def test_closing_without_a_task_writes_what_is_left() -> None:
    rollups = Rollups(replica="a")
    assert await rollups.flush(_Down()) == 0, "nothing to write: the pool is not touched"  # type: ignore[arg-type]
    rollups.add(_record(NOON, 2.0), RequestStats())
    await rollups.close(_Down())  # type: ignore[arg-type]
    assert rollups.pending == 1, "still there for a later try"


def test_a_histogram_is_sent_without_its_trailing_zeros() -> None:
    counts = histogram.empty()
    assert _array_text(counts) == "{}"
    histogram.add(counts, 0.01)
    histogram.add(counts, 0.07)
    histogram.add(counts, 0.07)
    zeros = "0," * (histogram.bucket_of(0.07) - 1)
    assert _array_text(counts) == "{1," + zeros + "2}"


def test_every_table_is_one_upsert_that_adds() -> None:
    for table in TABLES:
        sql = UPSERT[table]
        assert sql.count("INSERT INTO") == 1
        assert f"ON CONFLICT (grain, bucket, replica, tenant_id, {table.key})" in sql
        for name, _ in table.sums:
            assert f"{name} = t.{name} + excluded.{name}" in sql
    assert "posada_hist_add(t.latency, excluded.latency)" in UPSERT[REQUESTS]


def test_the_settings_name_the_replica_and_can_turn_them_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POSADA_METRICS_REPLICA", "web-2")
    monkeypatch.setenv("POSADA_METRICS_FLUSH_S", "2.5")
    monkeypatch.setenv("POSADA_METRICS_MINUTE_HOURS", "24")
    settings = Settings(_env_file=None)
    rollups = rollups_for(settings)
    assert rollups is not None
    assert (rollups.replica, rollups.flush_s, rollups.retention.minute_hours) == ("web-2", 2.5, 24)
    assert rollups_for(Settings(_env_file=None, metrics_enabled=False)) is None
    assert rollups_for(Settings(_env_file=None, instrumentation=False)) is None
    monkeypatch.setenv("POSADA_METRICS_HOUR_DAYS", "500")
    with pytest.raises(
        ValidationError, match="POSADA_METRICS_HOUR_DAYS <= POSADA_METRICS_DAY_DAYS"
    ):
        Settings(_env_file=None)
