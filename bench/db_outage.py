"""The embedded database killed under traffic: requests failed, the longest wait, recovery.

On a fresh data dir: `posada demo`, then `posada serve`; 20 concurrent guests (the demo's
five current stays, four clients each) ask one question after another; after `--kill-at`
seconds the embedded PostgreSQL's postmaster gets SIGKILL. posada must notice, start it
again and carry on. Everything runs on loopback and stops by itself.

    .venv/bin/python bench/db_outage.py [--guests 20] [--seconds 30] [--kill-at 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from posada_bench.servers import posada_server
from posada_bench.traffic import ask_for, demo_guests


@dataclass(frozen=True)
class Result:
    """One run's figures."""

    requests: int
    failed: int
    longest_s: float
    recovered_s: float | None  # kill -> the first answer after which none failed


async def _drive(url: str, pgdata: Path, *, guests: int, seconds: float, kill_at: float) -> Result:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        tokens = await demo_guests(http)

    async def kill() -> float:
        await asyncio.sleep(kill_at)
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        return time.monotonic()

    killing = asyncio.create_task(kill())
    clients = [tokens[n % len(tokens)] for n in range(guests)]
    outcomes = await ask_for(url, clients, seconds=seconds, tag="outage", timeout_s=60)
    killed = await killing
    failures = [o for o in outcomes if o.status != 200]
    last_failure = max((o.started for o in failures), default=killed)
    after = [o for o in outcomes if o.started > last_failure and o.status == 200]
    recovered = (after[0].started + after[0].seconds - killed) if after else None
    return Result(
        requests=len(outcomes),
        failed=len(failures),
        longest_s=round(max(o.seconds for o in outcomes), 3),
        recovered_s=round(recovered, 3) if recovered is not None else None,
    )


def run_once(*, guests: int, seconds: float, kill_at: float) -> Result:
    """One fresh data dir, one demo, one server, one kill."""
    with tempfile.TemporaryDirectory(prefix="posada-outage-") as folder:
        data = Path(folder) / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSADA_")}
        env |= {"POSADA_DATA_DIR": str(data), "POSADA_LOG_LEVEL": "warning"}
        subprocess.run(
            [sys.executable, "-m", "posada", "demo"],
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        with posada_server(env=env, log=Path(folder) / "serve.log") as server:
            return asyncio.run(
                _drive(
                    server.url,
                    (data / "pg").resolve(),
                    guests=guests,
                    seconds=seconds,
                    kill_at=kill_at,
                )
            )


def main() -> None:
    """Run the outage `--runs` times and print each run and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guests", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--kill-at", type=float, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    for _ in range(args.runs):
        result = run_once(guests=args.guests, seconds=args.seconds, kill_at=args.kill_at)
        print(json.dumps(result.__dict__))
        results.append(result)
    recovered = [r.recovered_s for r in results if r.recovered_s is not None]
    summary = {
        "runs": len(results),
        "requests_median": statistics.median(r.requests for r in results),
        "failed_median": statistics.median(r.failed for r in results),
        "longest_wait_s_median": statistics.median(r.longest_s for r in results),
        "recovered_s_median": statistics.median(recovered) if recovered else None,
        "never_recovered": len(results) - len(recovered),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
