"""One token flooding chat: does it raise the other guests' P95?

Starts `posada fake-llm` (the simulated upstream) and `posada serve` on a fresh embedded
database (loopback only), once with the shipped limits and once with none. Every client
comes through 127.0.0.1 as a trusted proxy with an `X-Forwarded-For` address of its own
(guests are not behind the flooder's address). Each round has two phases: 5 normal guests
each ask 8 questions one after another (a fresh stay each, so their own pace stays
within a stay's burst), alone, and then again while one more guest's token sends chat
requests `--flood-concurrency` at a time until the guests are done (at most
`--flood-max` requests). It prints the normal guests' P95 per phase, the medians over
the rounds, their ratio, and what the flooder got.

    .venv/bin/python -m bench.abuse [--rounds 3] [--flood-concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.abuse_setup import UNLIMITED, Stay, demo_guests, fresh_database, posada
from posada_bench.servers import fake_llm

QUESTIONS = [
    "How much is a relaxing massage at the spa?",
    "Can I rent a bike for half a day?",
    "¿Cuánto cuesta la excursión a Cayo Pelícano?",
    "What can I see when snorkelling at Punta Tortuga?",
    "¿Qué hay para ver en el Museo del Mar?",
    "Where is the best viewpoint for the sunset?",
    "¿Cómo funciona el agua caliente de la ducha?",
    "Tell me about the mangrove kayak tour",
]
GUESTS = 5


def p95(values: list[float]) -> float:
    """The 95th percentile (inclusive method)."""
    return statistics.quantiles(values, n=20, method="inclusive")[18]


async def token(http: httpx.AsyncClient, stay: Stay, address: str) -> dict[str, str]:
    response = await http.post(
        "/api/guest/login", json=stay.login(), headers={"X-Forwarded-For": address}
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['token']}", "X-Forwarded-For": address}


async def guest(http: httpx.AsyncClient, auth: dict[str, str]) -> list[float]:
    """Seconds per answer of one normal guest's conversation."""
    times, conversation = [], None
    for question in QUESTIONS:
        body: dict[str, Any] = {"message": question, "conversation_id": conversation}
        started = time.perf_counter()
        response = await http.post("/api/guest/chat", json=body, headers=auth)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
        conversation = response.json()["conversation_id"]
    return times


async def flood(
    http: httpx.AsyncClient, auth: dict[str, str], stop: asyncio.Event, args: argparse.Namespace
) -> Counter[str]:
    """Chat requests as fast as `--flood-concurrency` connections allow, until `stop`."""
    got: Counter[str] = Counter()
    numbers = itertools.count()

    async def one_connection() -> None:
        while not stop.is_set() and got.total() < args.flood_max:
            question = f"{QUESTIONS[next(numbers) % len(QUESTIONS)]} ({next(numbers)})"
            response = await http.post("/api/guest/chat", json={"message": question}, headers=auth)
            got[str(response.status_code)] += 1
            if response.status_code == 200 and response.json()["layer"] == "llm":
                got["llm_answers"] += 1

    await asyncio.gather(*(one_connection() for _ in range(args.flood_concurrency)))
    return got


async def phase(
    http: httpx.AsyncClient, stays: list[Stay], flooder: Stay | None, args: argparse.Namespace
) -> tuple[float, Counter[str]]:
    auths = [await token(http, s, f"203.0.113.{n + 1}") for n, s in enumerate(stays)]
    stop = asyncio.Event()
    flooding = None
    if flooder is not None:
        flooding = asyncio.ensure_future(
            flood(http, await token(http, flooder, "198.51.100.66"), stop, args)
        )
        await asyncio.sleep(1)  # the flood is under way before the guests start
    times = [t for ts in await asyncio.gather(*(guest(http, a) for a in auths)) for t in ts]
    stop.set()
    got = await flooding if flooding is not None else Counter()
    return p95(times) * 1000, got


async def run(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="posada-abuse-") as folder:
        logs = Path(folder)
        async with fresh_database(logs / "data") as runtime:
            stays = iter(await demo_guests(runtime, 2 * (GUESTS + 1) * args.rounds * 2))
            with fake_llm(ttft_ms=50, tokens_per_s=400, embed_ms=1, log=logs / "llm.log") as llm:
                for name, limits in (("limits", {}), ("no limits", UNLIMITED)):
                    env = {
                        **limits,
                        "POSADA_LLM_BASE_URL": llm.url,
                        "POSADA_LLM_API_KEY": "bench",
                        "POSADA_TRUSTED_PROXIES": "127.0.0.1",
                        # Every guest's question is new to the caches: the LLM answers.
                        "POSADA_ANSWER_CACHE": "false",
                        "POSADA_SEMANTIC_CACHE": "false",
                    }
                    with posada(runtime, logs / f"serve-{name}.log", env) as base:
                        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
                            quiet, loud, floods = [], [], []
                            for _ in range(args.rounds):
                                alone = [next(stays) for _ in range(GUESTS)]
                                quiet.append((await phase(http, alone, None, args))[0])
                                others = [next(stays) for _ in range(GUESTS)]
                                ms, got = await phase(http, others, next(stays), args)
                                loud.append(ms)
                                floods.append(dict(got))
                    row = {
                        "p95_ms_alone": [round(v, 1) for v in quiet],
                        "p95_ms_flooded": [round(v, 1) for v in loud],
                        "median_p95_ms_alone": round(statistics.median(quiet), 1),
                        "median_p95_ms_flooded": round(statistics.median(loud), 1),
                        "ratio": round(statistics.median(loud) / statistics.median(quiet), 2),
                        "flooder": floods,
                    }
                    report[name] = row
                    print(name, json.dumps(row), flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description="other guests' P95 while one token floods")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flood-concurrency", type=int, default=16)
    parser.add_argument("--flood-max", type=int, default=5000)
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print("\nP95 of 5 normal guests (medians over the rounds):")
    for name, row in report.items():
        print(
            f"  {name:>9}: alone {row['median_p95_ms_alone']} ms, with one token flooding "
            f"{row['median_p95_ms_flooded']} ms (x{row['ratio']})"
        )


if __name__ == "__main__":
    main()
