"""`posada loadtest`: many concurrent guests through Locust, percentiles from raw timings.

Without a host the run owns its servers, set up as `posada bench` sets up its optimized
profile: a fresh embedded PostgreSQL with the demo and generated hotels, `posada fake-llm`
and one `posada serve`, all on loopback. With a host it drives that server (loopback
only) as the demo hotel's current guests. Locust runs headless as a child process with the
users of `posada_bench.locustfile`, writes its CSV stats, and hands back every request's
raw time; the reported percentiles are computed from those, not from Locust's buckets.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import re
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from posada.core.errors import ConfigurationError, InvalidInput, PosadaError
from posada_bench.dataset import bench_database
from posada_bench.driver import warm_up
from posada_bench.fake_llm import Pace
from posada_bench.hotels import Stay
from posada_bench.report import percentile
from posada_bench.runner import server_env
from posada_bench.servers import fake_llm, posada_server
from posada_bench.workload import build_sessions, demo_stays, session_dict

Say = Callable[[str], None]

# The environment `posada_bench.locustfile` reads (importing it would import Locust, which
# patches the standard library for gevent).
GUESTS_ENV = "POSADA_LOADTEST_GUESTS"
RAW_ENV = "POSADA_LOADTEST_RAW"
LOCUSTFILE = "locustfile.py"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
PACE = Pace()  # the simulated LLM's realistic defaults, as `posada bench` uses them
# Users finish the request they are in when time is up, for at most this long: cutting
# them off would drop the slowest requests from the figures.
STOP_TIMEOUT_S = 30
# Beyond the run and the stop: Locust's start-up and its CSV and report at the end.
SLACK_S = 120

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smh]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600}


class LoadTestFailed(PosadaError):
    """Locust did not run to the end, or recorded nothing."""


def parse_duration(text: str) -> int:
    """Whole seconds from "60", "60s", "2m" or "1h" (rounded up); InvalidInput otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    seconds = float(match[1]) * _UNIT_S[match[2]] if match else 0.0
    if seconds <= 0:
        raise InvalidInput(f"duration {text!r}: expected seconds like 60, 60s, 2m or 1h")
    return math.ceil(seconds)


def loopback_url(host: str) -> str:
    """The host URL without a trailing slash, if it is on loopback; InvalidInput otherwise."""
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK:
        allowed = ", ".join(sorted(LOOPBACK))
        raise InvalidInput(f"--host {host!r}: only http(s) on loopback ({allowed}) is load-tested")
    return host.rstrip("/")


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Count, failures and P50/P95/P99 (nearest rank on raw times), overall and per type."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_type.setdefault(record["name"], []).append(record)
    return {
        **_figures(records),
        "by_type": {name: _figures(rows) for name, rows in sorted(by_type.items())},
    }


def _figures(records: list[dict[str, Any]]) -> dict[str, Any]:
    times = [float(r["ms"]) for r in records]
    errors = [str(r["error"]) for r in records if not r["ok"]]
    return {
        "requests": len(records),
        "failures": len(errors),
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "p99_ms": percentile(times, 99),
        "error_samples": sorted(set(errors))[:5],
    }


async def run_loadtest(
    *,
    users: int,
    spawn_rate: float,
    duration_s: int,
    host: str | None,
    folder: Path | None,
    seed: int,
    hotels: int = 2,
    say: Say = print,
) -> dict[str, Any]:
    """Run the load test; return its results (the `--json` document)."""
    url = loopback_url(host) if host is not None else None
    if importlib.util.find_spec("locust") is None:
        raise ConfigurationError(
            "Locust is not installed: `.venv/bin/pip install -e '.[bench]'` installs it"
        )
    folder = folder or Path(tempfile.mkdtemp(prefix="posada-loadtest-"))
    folder.mkdir(parents=True, exist_ok=True)
    if url is not None:
        stays = demo_stays(today=date.today())
        figures = await _locust(url, stays, folder, users, spawn_rate, duration_s, seed, say)
    else:
        async with _own_server(folder, seed, hotels, say) as (url, stays):
            figures = await _locust(url, stays, folder, users, spawn_rate, duration_s, seed, say)
    return {
        "version": 1,
        "loadtest": {
            "users": users,
            "spawn_rate": spawn_rate,
            "duration_s": duration_s,
            "host": url if host is not None else None,
            **figures,
        },
    }


@asynccontextmanager
async def _own_server(
    folder: Path, seed: int, hotels: int, say: Say
) -> AsyncIterator[tuple[str, list[Stay]]]:
    """A database with the hotels, fake-llm and an optimized `posada serve`: (URL, stays)."""
    async with bench_database(folder, hotels=hotels, seed=seed, say=say) as (
        runtime,
        stays,
        _,
        _real,
    ):
        with fake_llm(
            ttft_ms=PACE.ttft_ms,
            tokens_per_s=PACE.tokens_per_s,
            embed_ms=PACE.embed_ms,
            log=folder / "fake-llm.log",
        ) as upstream:
            secret = secrets.token_urlsafe(48)
            env = server_env("optimized", runtime=runtime, llm=upstream.url, secret=secret)
            with posada_server(env=env, log=folder / "posada-optimized.log") as server:
                await warm_up(server.url, stays[0])
                yield server.url, stays


async def _locust(
    url: str,
    stays: list[Stay],
    folder: Path,
    users: int,
    spawn_rate: float,
    duration_s: int,
    seed: int,
    say: Say,
) -> dict[str, Any]:
    """Run Locust against `url` as these stays' guests; the figures from its raw timings."""
    if not stays:
        raise LoadTestFailed("no current stays to log in with")
    guests, raw, csv = folder / "guests.json", folder / "raw.json", folder / "locust"
    sessions = build_sessions(seed=seed, count=users, stays=stays)
    guests.write_text(json.dumps([session_dict(s) for s in sessions], ensure_ascii=False), "utf-8")
    raw.unlink(missing_ok=True)
    log = folder / "locust.log"
    args = ["-f", str(Path(__file__).with_name(LOCUSTFILE)), "--headless", "--only-summary"]
    args += ["-u", str(users), "-r", str(spawn_rate), "-t", f"{duration_s}s", "--host", url]
    args += ["--csv", str(csv), "--stop-timeout", str(STOP_TIMEOUT_S)]
    env = {GUESTS_ENV: str(guests), RAW_ENV: str(raw)}
    say(f"{users} guests for {duration_s} s against {url} (Locust's output: {log}) ...")
    timeout_s = duration_s + STOP_TIMEOUT_S + SLACK_S
    code = await _run_locust(args, env, log=log, timeout_s=timeout_s)
    # Locust exits 1 when a request failed; the figures say which.
    if code not in (0, 1) or not raw.exists():
        raise LoadTestFailed(f"Locust exited with {code} and no raw timings; see {log}")
    records: list[dict[str, Any]] = json.loads(raw.read_text("utf-8"))["requests"]
    if not records:
        raise LoadTestFailed(f"Locust recorded no requests; see {log}")
    return {**summarize(records), "csv": str(csv), "raw": str(raw)}


async def _run_locust(
    args: list[str], extra_env: dict[str, str], *, log: Path, timeout_s: float
) -> int:
    """`python -m locust ARGS`, its output in `log`, killed after `timeout_s`; its exit code."""
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "locust",
            *args,
            env={**os.environ, **extra_env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            return await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError as exc:
            process.kill()
            await process.wait()
            raise LoadTestFailed(f"Locust still running after {timeout_s:.0f} s; killed") from exc
