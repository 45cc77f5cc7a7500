"""What the scale test reads while traffic runs: the replicas' /metrics, PgBouncer's pools
and stats, PostgreSQL's sessions, and the CPU time of every process of the stack."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from posada_bench.scale.figures import Parsed, metric_by, parse_metrics, summarize
from posada_bench.servers import _children

_TICKS = os.sysconf("SC_CLK_TCK")


async def scrape(urls: dict[str, str]) -> dict[str, Parsed]:
    """Each replica's /metrics, parsed (an empty reading for one that does not answer)."""
    async with httpx.AsyncClient(timeout=10) as http:

        async def one(url: str) -> Parsed:
            try:
                response = await http.get(f"{url}/metrics")
                response.raise_for_status()
            except httpx.HTTPError:
                return {}
            return parse_metrics(response.text)

        readings = await asyncio.gather(*(one(url) for url in urls.values()))
    return dict(zip(urls, readings, strict=True))


def _admin_rows(admin_url: str, command: str) -> list[dict[str, Any]]:
    # The console speaks the simple query protocol only: no parameters.
    with psycopg.connect(admin_url, autocommit=True) as conn:
        cursor = conn.execute(command)
        names = [column.name for column in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def pgbouncer_stats(admin_url: str, *, database: str = "posada") -> dict[str, float]:
    """PgBouncer's SHOW STATS totals for `database` (transactions, queries, wait time)."""
    for row in _admin_rows(admin_url, "SHOW STATS"):
        if row["database"] == database:
            return {k: float(v) for k, v in row.items() if k.startswith("total_")}
    return {}


@dataclass
class ConnectionSampler:
    """Samples, every `interval_s`: PgBouncer's pools (clients and server connections),
    PostgreSQL's sessions on posada's database, each replica's pool gauges."""

    admin_url: str
    direct_url: str
    replicas: dict[str, str]  # name: url
    interval_s: float = 1.0
    samples: list[dict[str, Any]] = field(default_factory=list)

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            with contextlib.suppress(psycopg.Error, OSError):
                self.samples.append(await self._sample())
            await asyncio.sleep(self.interval_s)

    async def _sample(self) -> dict[str, Any]:
        pools = await asyncio.to_thread(_admin_rows, self.admin_url, "SHOW POOLS")
        mine = [row for row in pools if row["database"] == "posada"]
        keys = ("cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "maxwait")
        sample: dict[str, Any] = {k: sum(float(row[k]) for row in mine) for k in keys}
        async with await psycopg.AsyncConnection.connect(self.direct_url) as conn:
            rows = await conn.execute(
                "SELECT state, count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY state"
            )
            sessions = {str(state): int(n) for state, n in await rows.fetchall()}
        sample["server_sessions"] = sum(sessions.values())
        sample["server_active"] = sessions.get("active", 0)
        for name, parsed in (await scrape(self.replicas)).items():
            states = metric_by(parsed, "posada_db_pool_connections", "state")
            sample[f"{name}_in_use"] = states.get("in_use")
            sample[f"{name}_waiting"] = sum(
                metric_by(parsed, "posada_db_pool_waiting", "").values()
            )
        return sample

    def summary(self) -> dict[str, Any]:
        """Mean and max of every sampled figure."""
        keys = sorted({k for s in self.samples for k, v in s.items() if v is not None})
        out: dict[str, Any] = {"samples": len(self.samples)}
        for key in keys:
            out[key] = summarize([s[key] for s in self.samples if s.get(key) is not None])
        return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants (seconds); 0 once gone."""
    total = 0.0
    for one in [pid, *_descendants(pid)]:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # Fields 14 and 15 of stat(5) (utime, stime), counted after the ")" of the name.
        total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    queue = _children(pid)
    while queue:
        child = queue.pop()
        found.append(child)
        queue += _children(child)
    return found


def own_cpu_seconds() -> float:
    """This process's CPU (the load generator's: the driver runs here)."""
    times = os.times()
    return times.user + times.system
