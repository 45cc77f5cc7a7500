"""Monthly budgets, on a fast-forwarded clock: just under 80% projected nothing happens; at
80% the log warns once and the gauge says so; once spent, the hotel's action applies
(small_only: the simulated LLM is asked for the small model although routing asks for the
large; no_llm: it is asked nothing; continue: the large again). The staff page sets and
reads the budget, refuses bad amounts, and keeps each hotel's to itself."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from posada.api.app import create_app
from posada.core.groups import BudgetSettings
from posada.knowledge.ingest import ingest_folder
from posada.providers.registry import Tier, build_chat_models
from posada.runtime import Runtime
from posada.tenants.budgets import Budget, guard_for, models_within_budget, set_budget
from tests.support.abuse import DEFAULT_LIMITS, Hotel, make_hotel
from tests.support.helpers import write_docs
from tests.support.staff_login import ask, guest_login, staff_login

QUESTION = "When is the swimming pool open?"
GUIDE = "# Guide\n\n## Swimming pool\nThe swimming pool is open from 8:00 to 20:00; towels free.\n"
BUDGET = 10.0


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Upstream:
    """The models the simulated LLM was asked for, in order (recorded on the real client)."""

    asked: list[str] = field(default_factory=list)

    async def record(self, request: httpx2.Request) -> None:
        if request.url.path.endswith("/chat/completions"):
            self.asked.append(json.loads(request.content)["model"])


@dataclass
class Setup:
    runtime: Runtime
    hotel: Hotel
    upstream: Upstream
    clock: list[datetime]


@pytest.fixture
async def setup(runtime: Runtime, quick_llm: str, tmp_path: Path) -> AsyncIterator[Setup]:
    """A hotel with a guide (its questions go to an LLM), two tiers on the simulated LLM,
    routing that asks for the large one, and the budget check on a clock of the test's."""
    hotel = await make_hotel(runtime, [("B1", "a", "3001", 1)])
    root = write_docs(tmp_path / hotel.tenant.slug, {"guide.md": GUIDE})
    report = await ingest_folder(
        pool=runtime.pool, embedder=runtime.embedder, root=root, tenant=hotel.tenant
    )
    assert not report.failed
    settings = runtime.settings.model_copy(
        update={
            **DEFAULT_LIMITS,
            "llm_base_url": quick_llm,
            "llm_api_key": SecretStr("test"),
            "llm_small": runtime.settings.llm_small.model_copy(update={"model": "fake-small"}),
            "llm_large": runtime.settings.llm_large.model_copy(update={"model": "fake-large"}),
            "tier_routing": "large",
        }
    )
    upstream = Upstream()
    client = httpx2.AsyncClient(event_hooks={"request": [upstream.record]})
    variant = dataclasses.replace(
        runtime, settings=settings, chat_models=build_chat_models(settings, http_client=client)
    )
    guard = guard_for(runtime.pool)
    clock = [at("2036-06-11 00:00")]
    before, guard.clock = guard.clock, lambda: clock[0]
    try:
        yield Setup(variant, hotel, upstream, clock)
    finally:
        guard.clock = before
        guard.forget()
        await client.aclose()


async def _spend(runtime: Runtime, hotel: Hotel, usd: float, bucket: str) -> None:
    """A row of LLM spend in the hotel's figures, as the rollups write them."""
    async with runtime.pool.connection() as conn:
        await conn.execute(
            """INSERT INTO metric_llm (grain, bucket, replica, tenant_id, model, calls, cost_usd)
               VALUES ('h', %s, 'test', %s, 'fake-large', 1, %s)""",
            (at(bucket), hotel.tenant.id, usd),
        )


@asynccontextmanager
async def _client(runtime: Runtime) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(runtime=runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://posada.test") as http:
        yield http, app


def _ratio(metrics: str, slug: str) -> float | None:
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "posada_budget_projected_ratio" and sample.labels == {"tenant": slug}:
                return float(sample.value)
    return None


def _warnings(caplog: pytest.LogCaptureFixture, words: str) -> int:
    return sum(words in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


async def test_budget_actions_at_the_threshold_on_a_fast_forwarded_clock(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    rt, hotel, upstream = setup.runtime, setup.hotel, setup.upstream
    slug = hotel.tenant.slug
    async with rt.pool.connection() as conn:
        await set_budget(
            conn, tenant_id=hotel.tenant.id, budget=Budget(monthly_usd=BUDGET, action="small_only")
        )
    caplog.set_level(logging.WARNING, logger="posada.tenants.budgets")
    async with _client(rt) as (http, _):
        auth = await guest_login(http, hotel, 1, "3001")

        # A third of June gone, $2.66 spent: $7.97 projected, just under 80%.
        await _spend(rt, hotel, 2.65625, "2036-06-02 10:00")
        answer = await ask(http, auth, QUESTION)
        assert (answer["layer"], upstream.asked) == ("llm", ["fake-large"])
        under = _ratio((await http.get("/metrics")).text, slug)
        assert under is not None
        assert 0.79 < under < 0.8
        assert _warnings(caplog, "is projected to spend") == 0

        # More spend, the same minute: the check holds its reading (no query per question).
        await _spend(rt, hotel, 1.34375, "2036-06-10 10:00")
        await ask(http, auth, QUESTION)
        assert _ratio((await http.get("/metrics")).text, slug) == under

        # Fast forward to mid-June: $4 spent, $8 projected, 80%: one warning, still large.
        # The first question goes on with the reading held (stale now: $2.66, 53%) and
        # reads again in the background; the next one sees $4.
        setup.clock[0] = at("2036-06-16 00:00")
        await ask(http, auth, QUESTION)
        assert _warnings(caplog, "is projected to spend") == 0
        await guard_for(rt.pool).settled()
        await ask(http, auth, QUESTION)
        assert upstream.asked == ["fake-large"] * 4
        assert _ratio((await http.get("/metrics")).text, slug) == 0.8
        assert _warnings(caplog, "is projected to spend") == 1

        # To June 25th, $10 spent: the budget; from now on the small model alone.
        await _spend(rt, hotel, 6.0, "2036-06-20 10:00")
        setup.clock[0] = at("2036-06-25 00:00")
        await ask(http, auth, QUESTION)
        await guard_for(rt.pool).settled()
        answer = await ask(http, auth, QUESTION)
        assert (answer["layer"], answer["model"]) == ("llm", "fake-small")
        assert upstream.asked[-1] == "fake-small"
        assert upstream.asked[-2] == "fake-large", "the stale reading's question"
        assert _ratio((await http.get("/metrics")).text, slug) == pytest.approx(1.25)
        assert _warnings(caplog, "is projected to spend") == 1, "once per hotel and month"
        assert _warnings(caplog, "from now on: small_only") == 1

        # The owner turns the LLM off over budget: applied at once, no LLM call at all.
        owner = await staff_login(rt, hotel, http, "owner")
        changed = await http.put(
            "/api/staff/budget", json={"monthly_usd": BUDGET, "action": "no_llm"}, headers=owner
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["applied"] == "no_llm"
        calls = len(upstream.asked)
        answer = await ask(http, auth, QUESTION)
        assert answer["layer"] == "extractive"
        assert "8:00" in answer["answer"]
        assert len(upstream.asked) == calls, "no LLM call"

        # Keep going: the large model again.
        await http.put(
            "/api/staff/budget", json={"monthly_usd": BUDGET, "action": "continue"}, headers=owner
        )
        await ask(http, auth, QUESTION)
        assert upstream.asked[-1] == "fake-large"

        # A new month starts afresh: nothing spent in July, the large model.
        setup.clock[0] = at("2036-07-01 06:00")
        await http.put(
            "/api/staff/budget", json={"monthly_usd": BUDGET, "action": "no_llm"}, headers=owner
        )
        calls = len(upstream.asked)
        await ask(http, auth, QUESTION)
        assert upstream.asked[calls:] == ["fake-large"]


async def test_the_budget_rules_name_a_metric_that_metrics_exposes(setup: Setup) -> None:
    rt, hotel = setup.runtime, setup.hotel
    async with rt.pool.connection() as conn:
        await set_budget(conn, tenant_id=hotel.tenant.id, budget=Budget(monthly_usd=BUDGET))
    async with _client(rt) as (http, _):
        await staff_login(rt, hotel, http, "manager")
        assert (await http.get("/api/staff/budget")).status_code == 200  # a check
        exposed = {
            sample.name
            for family in text_string_to_metric_families((await http.get("/metrics")).text)
            for sample in family.samples
        }
    text = (Path(__file__).parents[2] / "docs" / "alerts.yml").read_text()
    rules = {r["alert"]: r for r in yaml.safe_load(text)["groups"][0]["rules"]}
    for name, threshold in (("PosadaBudgetProjected", "0.8"), ("PosadaBudgetProjectedOver", "1")):
        expr = rules[name]["expr"]
        used = set(re.findall(r"\bposada_[a-z0-9_]+", expr))
        assert used == {"posada_budget_projected_ratio"}, name
        assert used <= exposed
        assert expr.strip().endswith(f">= {threshold}"), expr


async def test_the_staff_page_sets_and_reads_its_own_budget_only(
    setup: Setup, runtime: Runtime
) -> None:
    a = setup.hotel
    b = await make_hotel(runtime, [])
    defaults = BudgetSettings(monthly_usd=5.0, action="no_llm")
    rt = dataclasses.replace(
        setup.runtime, settings=setup.runtime.settings.model_copy(update={"budget": defaults})
    )
    async with (
        _client(rt) as (a_owner, _),
        _client(rt) as (a_manager, _),
        _client(rt) as (a_desk, _),
        _client(rt) as (b_owner, _),
    ):
        csrf = await staff_login(rt, a, a_owner, "owner")
        manager_csrf = await staff_login(rt, a, a_manager, "manager")
        await staff_login(rt, a, a_desk, "reception")
        b_csrf = await staff_login(rt, b, b_owner, "owner")

        first = (await a_manager.get("/api/staff/budget")).json()
        assert (first["source"], first["monthly_usd"], first["action"]) == (
            "default", 5.0, "no_llm",
        )  # fmt: skip
        assert (first["spent_usd"], first["over"], first["applied"]) == (0, False, "continue")

        for bad in (
            {"monthly_usd": -1, "action": "continue"},
            {"monthly_usd": 0, "action": "continue"},
            {"monthly_usd": "lots", "action": "continue"},
            {"monthly_usd": 10, "action": "panic"},
            {"monthly_usd": 10, "action": "continue", "tenant": b.tenant.slug},
            {"action": "continue"},
        ):
            refused = await a_owner.put("/api/staff/budget", json=bad, headers=csrf)
            assert refused.status_code == 422, (bad, refused.text)
        for raw in (b'{"monthly_usd": NaN}', b'{"monthly_usd": Infinity}'):
            refused = await a_owner.put(
                "/api/staff/budget",
                content=raw,
                headers={**csrf, "content-type": "application/json"},
            )
            assert refused.status_code == 422, (raw, refused.text)

        body = {"monthly_usd": 25.5, "action": "small_only"}
        by_manager = await a_manager.put("/api/staff/budget", json=body, headers=manager_csrf)
        assert by_manager.status_code == 403
        assert (await a_owner.put("/api/staff/budget", json=body)).status_code == 403  # no CSRF
        assert (await a_desk.get("/api/staff/budget")).status_code == 403
        assert (await a_desk.put("/api/staff/budget", json=body)).status_code == 403

        done = await a_owner.put("/api/staff/budget", json=body, headers=csrf)
        assert done.status_code == 200, done.text
        assert (done.json()["source"], done.json()["monthly_usd"]) == ("hotel", 25.5)
        seen = (await a_manager.get("/api/staff/budget")).json()
        assert (seen["monthly_usd"], seen["action"]) == (25.5, "small_only")

        # Hotel B's owner sets B's budget only, and never sees A's.
        theirs = (await b_owner.get("/api/staff/budget")).json()
        assert theirs["source"] == "default"
        await b_owner.put(
            "/api/staff/budget", json={"monthly_usd": 99, "action": "continue"}, headers=b_csrf
        )
        assert (await a_manager.get("/api/staff/budget")).json()["monthly_usd"] == 25.5
        assert (await b_owner.get("/api/staff/budget")).json()["monthly_usd"] == 99

        # A null amount removes the hotel's own: the default again.
        back = await a_owner.put("/api/staff/budget", json={"monthly_usd": None}, headers=csrf)
        assert (back.json()["source"], back.json()["monthly_usd"]) == ("default", 5.0)


async def test_a_budget_that_cannot_be_read_never_costs_the_guest_an_answer(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    models: dict[Tier, str] = {"small": "a model", "large": "another"}
    caplog.set_level(logging.WARNING, logger="posada.tenants.budgets")
    allowed = await models_within_budget(
        pool=runtime.pool, tenant_id=2**62, settings=BudgetSettings(monthly_usd=1.0), models=models
    )
    assert allowed == models, "no hotel to read: keep going"
    assert _warnings(caplog, "could not check the budget") == 1
