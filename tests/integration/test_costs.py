"""The costs report against a known ledger: rows of every grain, on both sides of a day's
and a month's edge, of two models, two hotels and no hotel, summed exactly by day, with
the month's projection on a fixed clock; the same for one hotel on the staff page, which
another hotel's staff and the front desk cannot read."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from posada.cli import costs as costs_cli
from posada.runtime import Runtime
from posada.tenants.budgets import guard_for
from tests.support.abuse import Hotel, app_client, make_hotel
from tests.support.helpers import posada_env, run_cli
from tests.support.staff_login import staff_login

# A month of its own, far from the figures other tests write (today's).
MONTH = "2037-04"
NOW = datetime(2037, 4, 16, tzinfo=UTC)  # half of April gone: the projection doubles


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Ledger:
    a: Hotel
    b: Hotel


async def _insert(runtime: Runtime, table: str, rows: list[tuple[Any, ...]]) -> None:
    columns = {
        "metric_llm": "grain, bucket, replica, tenant_id, model, calls, input_tokens, "
        "output_tokens, cost_usd",
        "metric_embeddings": "grain, bucket, replica, tenant_id, provider, computed, cached, "
        "api_calls, cost_usd",
        "metric_answers": "grain, bucket, replica, tenant_id, layer, answers",
    }[table]
    marks = ", ".join(["%s"] * len(columns.split(",")))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
    async with runtime.pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany(sql, rows)


@pytest.fixture(scope="module")
async def ledger(runtime: Runtime) -> Ledger:
    """Two hotels' April 2037, amounts exact in binary (sums compare with ==)."""
    a = await make_hotel(runtime, [])
    b = await make_hotel(runtime, [])
    ta, tb = a.tenant.id, b.tenant.id
    await _insert(runtime, "metric_llm", [
        ("m", at("2037-04-01 10:03"), "r1", ta, "small-1", 2, 100, 20, 0.25),
        ("h", at("2037-04-01 11:00"), "r2", ta, "small-1", 3, 300, 30, 0.5),
        ("d", at("2037-04-02 00:00"), "r1", ta, "large-1", 1, 1000, 200, 1.0),
        ("m", at("2037-04-02 23:59"), "r2", ta, "small-1", 1, 50, 5, 0.125),
        # The edges of the month: not April's.
        ("m", at("2037-03-31 23:59"), "r1", ta, "small-1", 9, 9, 9, 100.0),
        ("d", at("2037-05-01 00:00"), "r1", ta, "small-1", 9, 9, 9, 100.0),
        # Another hotel, and no hotel at all.
        ("h", at("2037-04-01 09:00"), "r1", tb, "small-1", 9, 900, 90, 7.0),
        ("h", at("2037-04-01 09:00"), "r1", None, "small-1", 4, 4, 4, 50.0),
    ])  # fmt: skip
    await _insert(runtime, "metric_embeddings", [
        ("h", at("2037-04-01 12:00"), "r1", ta, "openai", 10, 5, 2, 0.0625),
    ])  # fmt: skip
    await _insert(runtime, "metric_answers", [
        ("m", at("2037-04-01 10:03"), "r1", ta, "exact", 3),
        ("h", at("2037-04-01 11:00"), "r1", ta, "faq", 2),
        ("d", at("2037-04-01 00:00"), "r2", ta, "llm", 5),
        ("m", at("2037-04-01 23:00"), "r1", ta, "extractive", 2),
        ("h", at("2037-04-02 08:00"), "r1", ta, "semantic", 1),
        ("m", at("2037-04-02 08:01"), "r2", ta, "llm", 3),
        ("m", at("2037-04-02 08:01"), "r2", tb, "llm", 9),
    ])  # fmt: skip
    return Ledger(a, b)


@pytest.fixture
def fixed_clock(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI's, the staff page's and the budget check's clock at NOW."""
    guard = guard_for(runtime.pool)
    monkeypatch.setattr(costs_cli, "clock", lambda: NOW)
    before, guard.clock = guard.clock, lambda: NOW
    try:
        yield
    finally:
        guard.clock = before
        guard.forget()


@pytest.fixture
def env(runtime: Runtime) -> dict[str, str]:
    return posada_env(runtime)


def _day(block: dict[str, Any], day: str) -> dict[str, Any]:
    found: dict[str, Any] = next(d for d in block["days"] if d["day"] == day)
    return found


def _check_hotel_a(block: dict[str, Any]) -> None:
    assert [d["day"] for d in block["days"]] == [f"2037-04-{n:02d}" for n in range(1, 17)]
    first, second = _day(block, "2037-04-01"), _day(block, "2037-04-02")
    assert (first["llm_usd"], first["embedding_usd"], first["spend_usd"]) == (0.75, 0.0625, 0.8125)
    assert (first["llm_calls"], first["input_tokens"], first["output_tokens"]) == (5, 400, 50)
    assert first["models"] == [
        {"model": "small-1", "calls": 5, "input_tokens": 400, "output_tokens": 50, "cost_usd": 0.75}
    ]
    assert first["embeddings"] == [
        {"provider": "openai", "computed": 10, "cached": 5, "api_calls": 2, "cost_usd": 0.0625}
    ]
    assert first["answers"] == {"exact": 3, "extractive": 2, "faq": 2, "llm": 5}
    assert (first["answers_total"], first["cache_faq_share"]) == (12, round(5 / 12, 4))
    models = [(m["model"], m["calls"], m["input_tokens"], m["cost_usd"]) for m in second["models"]]
    assert models == [("large-1", 1, 1000, 1.0), ("small-1", 1, 50, 0.125)]
    assert (second["spend_usd"], second["answers_total"], second["cache_faq_share"]) == (
        1.125, 4, 0.25,
    )  # fmt: skip
    quiet = _day(block, "2037-04-16")
    assert (quiet["spend_usd"], quiet["answers_total"], quiet["cache_faq_share"]) == (0, 0, None)
    totals = block["totals"]
    assert (totals["spend_usd"], totals["llm_calls"], totals["answers_total"]) == (1.9375, 7, 16)
    assert block["projection"] == {
        "spent_usd": 1.9375,
        "elapsed_fraction": 0.5,
        "projected_usd": 3.875,
        "days_in_month": 30,
        "finished": False,
    }


def test_the_report_sums_a_known_ledger_by_day_with_the_projection(
    ledger: Ledger, env: dict[str, str], fixed_clock: None
) -> None:
    one = run_cli(
        env, "costs", "report", "--tenant", ledger.a.tenant.slug, "--month", MONTH, "--json"
    )
    assert one.returncode == 0, one.stderr
    report = json.loads(one.stdout)
    assert report["month"] == MONTH
    assert [h["tenant"] for h in report["hotels"]] == [ledger.a.tenant.slug]
    _check_hotel_a(report["hotels"][0])

    every = json.loads(run_cli(env, "costs", "report", "--month", MONTH, "--json").stdout)
    blocks = {h["tenant"]: h for h in every["hotels"]}
    _check_hotel_a(blocks[ledger.a.tenant.slug])
    assert blocks[ledger.b.tenant.slug]["totals"]["spend_usd"] == 7.0
    # Every hotel together: A's and B's, never the rows of no hotel.
    assert every["total"]["tenant"] is None
    assert every["total"]["totals"]["spend_usd"] == 8.9375
    assert every["total"]["totals"]["answers"] == {
        "exact": 3, "extractive": 2, "faq": 2, "llm": 17, "semantic": 1,
    }  # fmt: skip
    assert every["total"]["projection"]["projected_usd"] == 17.875


def test_a_finished_month_projects_its_total_and_the_text_and_csv_agree(
    ledger: Ledger, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(costs_cli, "clock", lambda: at("2037-06-03 12:00"))
    slug = ledger.a.tenant.slug
    done = json.loads(
        run_cli(env, "costs", "report", "--tenant", slug, "--month", MONTH, "--json").stdout
    )
    hotel = done["hotels"][0]
    assert len(hotel["days"]) == 30
    assert hotel["projection"]["finished"] is True
    assert hotel["projection"]["projected_usd"] == 1.9375

    text = run_cli(env, "costs", "report", "--tenant", slug, "--month", MONTH)
    assert text.returncode == 0, text.stderr
    assert "2037-04-02" in text.stdout
    assert "projected $1.9375" in text.stdout
    assert "small-1 5× 400/50" in text.stdout

    out = tmp_path / "april.csv"
    written = run_cli(env, "costs", "report", "--tenant", slug, "--month", MONTH, "--csv", str(out))
    assert written.returncode == 0, written.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    first = next(r for r in rows if r["tenant"] == slug and r["day"] == "2037-04-01")
    assert (first["spend_usd"], first["small-1:calls"], first["answers:exact"]) == (
        "0.8125",
        "5",
        "3",
    )
    second = next(r for r in rows if r["tenant"] == slug and r["day"] == "2037-04-02")
    assert (second["large-1:input_tokens"], second["answers:exact"]) == ("1000", "0")


def test_the_report_refuses_a_bad_month_or_hotel(env: dict[str, str]) -> None:
    for month in ("2037-13", "April", "2037-4"):
        bad = run_cli(env, "costs", "report", "--month", month)
        assert bad.returncode == 2, (month, bad.stdout, bad.stderr)
        assert "YYYY-MM" in bad.stderr
    unknown = run_cli(env, "costs", "report", "--tenant", "no-such-hotel-here")
    assert unknown.returncode == 1
    assert "no-such-hotel-here" in unknown.stderr
    both = run_cli(env, "costs", "report", "--json", "--csv", "x.csv")
    assert both.returncode == 2


@pytest.fixture
async def pages(runtime: Runtime, ledger: Ledger) -> AsyncIterator[dict[str, Any]]:
    """Logged-in clients: hotel A's manager and front desk, hotel B's owner."""
    async with (
        app_client(runtime) as a_manager,
        app_client(runtime) as a_desk,
        app_client(runtime) as b_owner,
    ):
        await staff_login(runtime, ledger.a, a_manager, "manager")
        await staff_login(runtime, ledger.a, a_desk, "reception")
        await staff_login(runtime, ledger.b, b_owner, "owner")
        yield {"a_manager": a_manager, "a_desk": a_desk, "b_owner": b_owner}


async def test_the_staff_page_reads_its_own_hotels_costs_only(
    ledger: Ledger, pages: dict[str, Any], fixed_clock: None
) -> None:
    mine = await pages["a_manager"].get("/api/staff/costs", params={"month": MONTH})
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["tenant"] == ledger.a.tenant.slug
    _check_hotel_a(body)
    assert body["budget"]["source"] == "none"
    assert body["budget"]["month"] == MONTH  # the clock's month
    current = await pages["a_manager"].get("/api/staff/costs")
    assert current.json()["month"] == MONTH

    # Hotel B's owner sees hotel B's, whatever is asked: the hotel is the session's.
    theirs = (await pages["b_owner"].get("/api/staff/costs", params={"month": MONTH})).json()
    assert theirs["tenant"] == ledger.b.tenant.slug
    assert theirs["totals"]["spend_usd"] == 7.0
    sneaky = await pages["b_owner"].get(
        "/api/staff/costs", params={"month": MONTH, "tenant": ledger.a.tenant.slug}
    )
    assert sneaky.json()["tenant"] == ledger.b.tenant.slug

    desk = await pages["a_desk"].get("/api/staff/costs", params={"month": MONTH})
    assert desk.status_code == 403
    for month in ("2037-13", "2037-00", "nope", "2037-04-01"):
        bad = await pages["a_manager"].get("/api/staff/costs", params={"month": month})
        assert bad.status_code == 422, (month, bad.text)
        assert "YYYY-MM" in bad.text
