"""The request window: the most recent requests of this process, and their percentiles.

Percentiles are exact over the window, by the nearest-rank method: P95 of n durations is
the ceil(0.95 n)-th smallest. Each worker process keeps its own window.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RequestRecord:
    """One finished request."""

    request_id: str
    at: float  # unix time it finished
    method: str
    route: str  # the route template, never the raw path
    status: int
    duration_ms: float  # until the last byte
    response_ms: float  # until the headers (X-Response-Time)
    stages: dict[str, float] = field(default_factory=dict)
    counters: dict[str, float | int] = field(default_factory=dict)
    tenant: str | None = None
    slow: bool = False
    n_plus_one: bool = False
    cache: dict[str, str] = field(default_factory=dict)  # layer -> hit | miss

    @property
    def key(self) -> str:
        """The route as the window groups it: `METHOD /template`."""
        return f"{self.method} {self.route}"

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(records: Iterable[RequestRecord]) -> dict[str, Any]:
    """Count, percentiles, rates and counter averages and totals of these requests."""
    records = list(records)
    durations = sorted(r.duration_ms for r in records)
    n = len(records)
    out: dict[str, Any] = {
        "count": n,
        "p50_ms": round(percentile(durations, 50), 3),
        "p95_ms": round(percentile(durations, 95), 3),
        "p99_ms": round(percentile(durations, 99), 3),
        "max_ms": round(durations[-1], 3) if durations else 0.0,
        "error_rate": round(sum(r.status >= 500 for r in records) / n, 4) if n else 0.0,
        "slow_rate": round(sum(r.slow for r in records) / n, 4) if n else 0.0,
        "n_plus_one": sum(r.n_plus_one for r in records),
    }
    totals: dict[str, float] = {}
    for record in records:
        for name, value in record.counters.items():
            totals[name] = totals.get(name, 0) + value
    out["totals"] = {k: round(v, 8) if k == "cost_usd" else v for k, v in totals.items()}
    layers: dict[str, dict[str, int]] = {}
    for record in records:
        for layer, outcome in record.cache.items():
            counts = layers.setdefault(layer, {"hit": 0, "miss": 0})
            counts[outcome] = counts.get(outcome, 0) + 1
    out["cache"] = {
        layer: {**counts, "hit_rate": round(counts["hit"] / (counts["hit"] + counts["miss"]), 4)}
        for layer, counts in sorted(layers.items())
    }
    out["per_request"] = {k: round(v / n, 3) for k, v in totals.items()} if n else {}
    return out


class RequestWindow:
    """The last `size` requests; a deque append is all a request costs."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._records: deque[RequestRecord] = deque(maxlen=size)
        self.started = time.time()

    def add(self, record: RequestRecord) -> None:
        """Keep a finished request (the oldest falls out when full)."""
        self._records.append(record)

    def records(self, route: str | None = None, tenant: str | None = None) -> list[RequestRecord]:
        """The requests in the window, oldest first; of one route (`METHOD /path`) and one
        hotel (its slug) if given."""
        records = list(self._records)
        if route is not None:
            records = [r for r in records if r.key == route or r.route == route]
        if tenant is not None:
            records = [r for r in records if r.tenant == tenant]
        return records

    def summary(
        self,
        *,
        route: str | None = None,
        tenant: str | None = None,
        full: bool = False,
        top: int = 5,
    ) -> dict[str, Any]:
        """Overall and per-route figures, the slowest and busiest routes; requests if `full`."""
        records = self.records(route, tenant)
        by_route: dict[str, list[RequestRecord]] = {}
        for record in records:
            by_route.setdefault(record.key, []).append(record)
        routes = [{"route": key, **summarize(rs)} for key, rs in sorted(by_route.items())]
        out: dict[str, Any] = {
            "window": {"size": self.size, "requests": len(records), "since": self.started},
            "overall": summarize(records),
            "routes": routes,
            "top_slow": [
                {"route": r["route"], "p95_ms": r["p95_ms"], "count": r["count"]}
                for r in sorted(routes, key=lambda r: r["p95_ms"], reverse=True)[:top]
            ],
            "top_volume": [
                {"route": r["route"], "count": r["count"], "p95_ms": r["p95_ms"]}
                for r in sorted(routes, key=lambda r: r["count"], reverse=True)[:top]
            ],
        }
        if full:
            out["recent"] = [r.as_dict() for r in records]
        return out
