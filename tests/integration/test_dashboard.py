"""`posada dashboard` against a real `posada serve`, and the P95 watcher."""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from posada.core.config import Settings
from posada.core.errors import ConfigurationError
from posada.observe.watch import Budgets, load_budgets, over_budget, watch
from posada.observe.window import RequestRecord, RequestWindow
from posada.runtime import Runtime
from tests.support.abuse import app_client, make_hotel
from tests.support.helpers import CliResult, StayFinder, log_in, run_cli, serve_posada
from tests.support.staff_login import ask, guest_login, staff_login

TOKEN = "dashboard-test-admin-token"


async def _dashboard(*args: str, token: str | None = TOKEN, cwd: Path | None = None) -> CliResult:
    env = {k: v for k, v in os.environ.items() if k != "POSADA_ADMIN_TOKEN"}
    if token is not None:
        env["POSADA_ADMIN_TOKEN"] = token
    # On a thread: the command runs its own event loop.
    return await asyncio.to_thread(run_cli, env, "dashboard", *args, cwd=cwd)


async def test_dashboard_once_json_csv_and_a_missing_token(
    runtime: Runtime, current_stay: StayFinder, tmp_path: Path
) -> None:
    for base in serve_posada(runtime, env={"POSADA_ADMIN_TOKEN": TOKEN}):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            auth = await log_in(http, await current_stay("caracola"))
            layers = []
            for question in ("What time is check-out?", "pool hours", "breakfast"):
                response = await http.post(
                    "/api/guest/chat", json={"message": question}, headers=auth
                )
                assert response.status_code == 200
                layers.append(response.json()["layer"])
            # The public pages' cache: a miss, then a hit (this server's own memory).
            for _ in range(2):
                assert (await http.get("/api/public/casa-azul/info")).status_code == 200

        shown = await _dashboard("--url", base, "--once", "--json")
        assert shown.returncode == 0, shown.stderr
        summary = json.loads(shown.stdout)
        routes = {r["route"]: r for r in summary["routes"]}
        assert routes["POST /api/guest/chat"]["count"] == 3
        assert routes["POST /api/guest/chat"]["per_request"]["db_queries"] == 3
        # Each chat looks in the FAQ (the answer caches are off on this server).
        faq_hits = layers.count("faq")
        assert faq_hits >= 1, layers
        assert routes["POST /api/guest/chat"]["cache"] == {
            "faq": {"hit": faq_hits, "miss": 3 - faq_hits, "hit_rate": round(faq_hits / 3, 4)}
        }
        assert routes["POST /api/guest/login"]["count"] == 1
        assert summary["top_volume"][0]["route"] == "POST /api/guest/chat"

        one = await _dashboard("--url", base, "--route", "POST /api/guest/chat", "--once", "--json")
        assert [r["route"] for r in json.loads(one.stdout)["routes"]] == ["POST /api/guest/chat"]

        frame = await _dashboard("--url", base, "--once", "--csv", str(tmp_path / "m.csv"))
        assert frame.returncode == 0, frame.stderr
        assert "POST /api/guest/chat" in frame.stdout
        assert "P95" in frame.stdout
        assert "hit rate by layer" in frame.stdout
        layer_rows = {
            _cells(line)[0]: _cells(line)[1:]
            for line in frame.stdout.splitlines()
            if _cells(line)[:1] in (["faq"], ["public"])
        }
        assert layer_rows["faq"] == [str(faq_hits), "3", f"{faq_hits / 3:.1%}"]
        assert layer_rows["public"] == ["1", "2", "50.0%"]
        rows = list(csv.DictReader((tmp_path / "m.csv").open()))
        chat = [r for r in rows if r["route"] == "POST /api/guest/chat"]
        assert len(chat) == 1
        assert chat[0]["count"] == "3"
        assert int(chat[0]["db_queries"]) == 9
        assert chat[0]["hit_rate_faq"] == str(round(faq_hits / 3, 4))
        assert chat[0]["hit_rate_exact"] == chat[0]["hit_rate_semantic"] == ""
        assert chat[0]["hit_rate_public"] == ""
        public = [r for r in rows if r["route"] == "GET /api/public/{slug}/info"]
        assert [r["hit_rate_public"] for r in public] == ["0.5"]
        assert rows[0].keys() >= {f"hit_rate_{layer}" for layer in ("exact", "semantic", "faq")}

        refused = await _dashboard("--url", base, "--once", token=None)
        assert refused.returncode == 1
        assert "POSADA_ADMIN_TOKEN" in refused.stderr

    gone = await _dashboard("--url", base, "--once")
    assert gone.returncode == 1
    assert "unreachable" in gone.stderr


def _cells(line: str) -> list[str]:
    """The cells of a row of a table as the terminal shows it."""
    return line.replace("│", " ").replace("┃", " ").split()


async def test_an_owner_reads_the_hit_rates_of_their_own_hotel_only(
    runtime: Runtime, current_stay: StayFinder
) -> None:
    ours = await make_hotel(runtime, [("own-1", "a", "4321", 1)])
    admin = {"Authorization": "Bearer " + "t" * 32}
    async with app_client(runtime, admin_token=SecretStr("t" * 32)) as http:
        theirs = await log_in(http, await current_stay("caracola"))
        assert (await ask(http, theirs, "What time is check-out?"))["layer"] == "faq"
        guest = await guest_login(http, ours, 1, "4321")
        assert (await ask(http, guest, "What time is check-out?"))["layer"] != "faq"
        await staff_login(runtime, ours, http, "owner")
        own = (await http.get("/api/performance/metrics")).json()
        assert own["overall"]["cache"] == {"faq": {"hit": 0, "miss": 1, "hit_rate": 0.0}}
        # The operators see both hotels' lookups; the exposition, every hotel's, is theirs.
        every = (await http.get("/api/performance/metrics", headers=admin)).json()
        assert every["overall"]["cache"]["faq"] == {"hit": 1, "miss": 1, "hit_rate": 0.5}
        assert (await http.get("/metrics")).status_code == 401
        assert "posada_answers_total" in (await http.get("/metrics", headers=admin)).text


def _window(durations: dict[str, list[float]]) -> RequestWindow:
    window = RequestWindow(100)
    for route, values in durations.items():
        method, path = route.split(" ")
        for i, ms in enumerate(values):
            window.add(RequestRecord(f"{route}{i}", 0, method, path, 200, ms, ms))
    return window


def test_the_watcher_finds_routes_over_their_budget(tmp_path: Path) -> None:
    window = _window(
        {
            "POST /api/guest/chat": [10.0] * 18 + [900.0, 950.0],  # P95 = 900
            "GET /healthz": [1.0] * 20,
            "GET /rare": [5000.0] * 3,  # too few requests to judge
        }
    )
    budgets = Budgets({"POST /api/guest/chat": 500}, default_ms=100)
    breaches = over_budget(window, budgets, min_requests=10)
    assert [(b.route, b.p95_ms, b.budget_ms, b.count) for b in breaches] == [
        ("POST /api/guest/chat", 900.0, 500, 20)
    ]
    assert over_budget(window, Budgets({"POST /api/guest/chat": 900}, 100), min_requests=10) == []


def test_budgets_come_from_the_file_when_it_exists(tmp_path: Path) -> None:
    path = tmp_path / "performance-budget.json"
    settings = Settings(_env_file=None, performance_budget_file=path, p95_budgets_ms={"GET /x": 7})
    assert load_budgets(settings) == Budgets({"GET /x": 7}, 2000)
    path.write_text(json.dumps({"routes": {"POST /api/guest/chat": {"p95_ms": 800}}}))
    assert load_budgets(settings) == Budgets({"POST /api/guest/chat": 800.0}, 2000)
    path.write_text("{not json")
    with pytest.raises(ConfigurationError, match="performance budget"):
        load_budgets(settings)


async def test_the_watcher_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    window = _window({"POST /api/guest/chat": [3000.0] * 20})
    with caplog.at_level(logging.WARNING, logger="posada.watch"):
        task = asyncio.create_task(
            watch(window, Budgets({}, 2000), interval_s=0.01, min_requests=5)
        )
        for _ in range(200):
            if caplog.records:
                break
            await asyncio.sleep(0.01)
        task.cancel()
    assert "P95 over budget: POST /api/guest/chat P95 3000.0 ms > 2000.0 ms" in (
        caplog.records[0].getMessage()
    )
