"""The P95 watcher: warn when a route's rolling P95 exceeds its budget.

Budgets come from `performance-budget.json` when it exists (the benchmark's budget
file: `{"routes": {"POST /api/guest/chat": {"p95_ms": 800}}}`), else from settings.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from posada.core.config import Settings
from posada.core.errors import ConfigurationError
from posada.observe.window import RequestWindow, percentile

log = logging.getLogger("posada.watch")


@dataclass(frozen=True)
class Budgets:
    """P95 budgets in ms by route (`METHOD /template`), and the one for other routes."""

    routes: dict[str, float]
    default_ms: float

    def of(self, route: str) -> float:
        """The budget of `route`."""
        return self.routes.get(route, self.default_ms)


@dataclass(frozen=True)
class Breach:
    """A route over budget."""

    route: str
    p95_ms: float
    budget_ms: float
    count: int


def load_budgets(settings: Settings) -> Budgets:
    """The budgets in force; a budget file that cannot be read is a ConfigurationError."""
    path = Path(settings.performance_budget_file)
    if not path.exists():
        return Budgets(dict(settings.p95_budgets_ms), settings.p95_budget_ms)
    try:
        data = json.loads(path.read_text("utf-8"))
        routes = {
            str(route): float(spec["p95_ms"])
            for route, spec in data.get("routes", {}).items()
            if "p95_ms" in spec
        }
        default = float(data.get("default_p95_ms", settings.p95_budget_ms))
    except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ConfigurationError(f"cannot read the performance budget {path}: {exc}") from exc
    return Budgets(routes, default)


def over_budget(window: RequestWindow, budgets: Budgets, *, min_requests: int) -> list[Breach]:
    """Routes whose P95 over the window exceeds their budget (with enough requests to tell)."""
    durations: dict[str, list[float]] = {}
    for record in window.records():
        durations.setdefault(record.key, []).append(record.duration_ms)
    breaches = []
    for route, values in sorted(durations.items()):
        if len(values) < min_requests:
            continue
        p95 = percentile(sorted(values), 95)
        if p95 > budgets.of(route):
            breaches.append(Breach(route, round(p95, 3), budgets.of(route), len(values)))
    return breaches


async def watch(
    window: RequestWindow, budgets: Budgets, *, interval_s: float, min_requests: int
) -> None:
    """Every `interval_s`, log a warning for each route over budget."""
    while True:
        await asyncio.sleep(interval_s)
        for breach in over_budget(window, budgets, min_requests=min_requests):
            log.warning(
                "P95 over budget: %s P95 %.1f ms > %.1f ms (last %d requests)",
                breach.route,
                breach.p95_ms,
                breach.budget_ms,
                breach.count,
            )
