"""One measured phase of the scale test: guests driven through nginx, read from every side.

The client (posada_bench.driver) times every request and reads what each answer reports;
nginx's log says which replica gave each response and how long it took there; each
replica's /metrics, read before and after, gives its answers by layer and cache lookups;
PgBouncer's pools, PostgreSQL's sessions and the replicas' pool gauges are sampled every
second; the CPU time of each process of the stack is read before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from posada_bench.driver import drive
from posada_bench.report import figures
from posada_bench.scale.figures import (
    answer_layers,
    cache_outcomes,
    counts_delta,
    replica_figures,
    reuse_rates,
)
from posada_bench.scale.nginx import read_access_log
from posada_bench.scale.sampling import (
    ConnectionSampler,
    cpu_seconds,
    own_cpu_seconds,
    pgbouncer_stats,
    scrape,
)
from posada_bench.scale.stack import Replica, ScaleRun, Stack
from posada_bench.workload import Session


def _cpu(stack: Stack, replicas: list[Replica]) -> dict[str, float]:
    readings = {r.name: cpu_seconds(r.process.pid) for r in replicas if r.process is not None}
    readings |= {name: cpu_seconds(pid) for name, pid in stack.pids.items()}
    readings["driver"] = own_cpu_seconds()
    return readings


def _cores(after: dict[str, float], before: dict[str, float], wall_s: float) -> dict[str, float]:
    """CPU used over the phase, in cores (CPU seconds over wall seconds)."""
    return {k: round((v - before.get(k, 0.0)) / wall_s, 3) for k, v in after.items() if wall_s}


async def measure(
    run: ScaleRun,
    sessions: list[Session],
    *,
    guests: int,
    duration_s: float,
    replicas: list[Replica],
    think_scale: float = 1.0,
    ramp_s: float = 5.0,
) -> dict[str, Any]:
    """Drive `guests` through nginx for `duration_s` with `replicas` up; every figure."""
    stack = run.stack
    urls = {r.name: r.url for r in replicas}
    log = stack.nginx_log
    offset = log.stat().st_size if log is not None and log.exists() else 0
    before, pooled_before = await scrape(urls), pgbouncer_stats(stack.pgbouncer_admin_url)
    cpu_before = _cpu(stack, replicas)
    sampler = ConnectionSampler(stack.pgbouncer_admin_url, stack.direct_url, urls)
    sampling = asyncio.create_task(sampler.run())
    try:
        drove = await drive(
            base_url=stack.site,
            sessions=sessions,
            guests=guests,
            duration_s=duration_s,
            think_scale=think_scale,
            ramp_s=ramp_s,
        )
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
    cpu = _cores(_cpu(stack, replicas), cpu_before, drove.wall_s)
    after, pooled_after = await scrape(urls), pgbouncer_stats(stack.pgbouncer_admin_url)
    entries = read_access_log(log, offset=offset) if log is not None else []
    names = {f"127.0.0.1:{r.port}": r.name for r in stack.replicas}
    per = replica_figures(entries, names=names, wall_s=drove.wall_s)
    for name in urls:
        layers = counts_delta(answer_layers(after[name]), answer_layers(before[name]))
        lookups = counts_delta(cache_outcomes(after[name]), cache_outcomes(before[name]))
        per.setdefault(name, {}).update(reuse_rates(layers, lookups))
    return {
        "guests": guests,
        "replicas": [r.name for r in replicas],
        "wall_s": round(drove.wall_s, 2),
        "overall": figures(drove, peak_memory_mb=None),
        "per_replica": per,
        "connections": sampler.summary(),
        "pgbouncer": _pooler_rates(pooled_after, pooled_before, drove.wall_s),
        "cpu_cores": cpu,
    }


def _pooler_rates(
    after: dict[str, float], before: dict[str, float], wall_s: float
) -> dict[str, float | None]:
    """What went through PgBouncer over the phase (its SHOW STATS totals)."""
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    xacts = delta.get("total_xact_count", 0.0)
    return {
        "transactions": xacts,
        "queries": delta.get("total_query_count", 0.0),
        "transactions_per_s": round(xacts / wall_s, 1) if wall_s else None,
        # Time clients waited for a server connection, per transaction (microseconds).
        "wait_us_per_transaction": round(delta.get("total_wait_time", 0.0) / xacts, 1)
        if xacts
        else None,
    }
