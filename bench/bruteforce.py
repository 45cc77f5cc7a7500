"""Brute force against one stay: how many guesses reach the database in an hour?

Starts `posada serve` twice on a fresh embedded database (loopback only): without trusted
proxies, and with `POSADA_TRUSTED_PROXIES=127.0.0.1` (so that forged `X-Forwarded-For`
addresses count as 100 different clients). The login limits are the shipped defaults
with time compressed by `3600 / --window-s`: refills and back-offs run that much faster,
so `--window-s` seconds stand for one hour. Each scenario guesses at a fresh hotel's one
guest (digits 9999, never reached) for one window, sequentially or `--concurrency` at a
time, from one client or from 100 forged addresses, and counts the answers: 401 (the
guess reached the database) and 429 (refused before it). At most `--max-requests` per
scenario.

    .venv/bin/python -m bench.bruteforce [--window-s 20] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.abuse_setup import Stay, fresh_database, posada, target_hotel
from posada.core.config import Settings

DEFAULTS = Settings.model_fields


def compressed_env(window_s: float) -> dict[str, str]:
    """The shipped login limits with one hour played in `window_s` seconds."""
    f = 3600 / window_s

    def default(name: str) -> float:
        value = DEFAULTS[name].default
        assert isinstance(value, int | float)
        return float(value)

    return {
        "POSADA_LOGIN_STAY_PER_HOUR": str(default("login_stay_per_hour") * f),
        "POSADA_LOGIN_BACKOFF_S": str(default("login_backoff_s") / f),
        "POSADA_LOGIN_BACKOFF_MAX_S": str(default("login_backoff_max_s") / f),
        "POSADA_LOGIN_ADDRESS_PER_HOUR": str(default("login_address_per_hour") * f),
    }


async def attack(
    base: str, stay: Stay, *, window_s: float, concurrency: int, forged: bool, max_requests: int
) -> Counter[int]:
    """Guess for one window; the answers by status."""
    counts: Counter[int] = Counter()
    deadline = time.monotonic() + window_s
    sent = 0

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal sent
        while time.monotonic() < deadline and sent < max_requests:
            n = sent
            sent += 1
            headers = {"X-Forwarded-For": f"198.51.100.{n % 100}"} if forged else {}
            response = await http.post(
                f"{base}/api/guest/login", json=stay.login(f"{n % 9999:04d}"), headers=headers
            )
            counts[response.status_code] += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return counts


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="posada-bruteforce-") as folder:
        async with fresh_database(Path(folder)) as runtime:
            env = compressed_env(args.window_s)
            for trusted in (False, True):
                extra = {"POSADA_TRUSTED_PROXIES": "127.0.0.1"} if trusted else {}
                log = Path(folder) / f"serve-{trusted}.log"
                with posada(runtime, log, {**env, **extra}) as base:
                    for forged in (False, True):
                        if trusted and not forged:
                            continue  # one client is one client either way
                        for concurrency in (1, args.concurrency):
                            stay = await target_hotel(runtime, "9999")
                            counts = await attack(
                                base,
                                stay,
                                window_s=args.window_s,
                                concurrency=concurrency,
                                forged=forged,
                                max_requests=args.max_requests,
                            )
                            row = {
                                "clients": "100 forged addresses" if forged else "one client",
                                "trusted_proxy": trusted,
                                "sending": "sequential"
                                if concurrency == 1
                                else f"{concurrency} at once",
                                "requests": sum(counts.values()),
                                "reached_database": counts[401] + counts[200],
                                "refused_429": counts[429],
                                "other": {
                                    k: v for k, v in counts.items() if k not in (200, 401, 429)
                                },
                            }
                            results.append(row)
                            print(json.dumps(row), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description="guesses that reach the database per stay")
    parser.add_argument("--window-s", type=float, default=20.0, help="seconds standing for an hour")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--max-requests", type=int, default=20_000)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    print(
        f"\nguesses reaching the database for one stay per hour-equivalent ({args.window_s:g} s):"
    )
    for r in results:
        proxy = "trusted proxy" if r["trusted_proxy"] else "no trusted proxy"
        print(
            f"  {r['clients']:>22}, {proxy:>16}, {r['sending']:>12}: "
            f"{r['reached_database']:>3} of {r['requests']} requests"
        )


if __name__ == "__main__":
    main()
