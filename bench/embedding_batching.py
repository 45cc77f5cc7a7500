"""Embedding under load: micro-batching's throughput against one question at a time.

The local model (all-MiniLM-L6-v2, CPU) embeds the same short guest questions

- one at a time, each awaited before the next (what a single guest sees);
- from 100 concurrent callers, as 100 guests asking at once, through posada's
  `LocalEmbedder` with its dynamic micro-batching (`POSADA_EMBED_BATCH_WAIT_MS`, default
  2 ms, batches of up to 64);
- from 100 concurrent callers with batching off (a wait of 0 and batches of one), for
  comparison;

in alternating rounds, and reports questions per second (median of the rounds) and the
ratio. It also reports one question's median embedding time, the yardstick of the
semantic and FAQ hit targets.

    .venv/bin/python bench/embedding_batching.py [--rounds 5] [--questions 400] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from posada.providers.embeddings import LocalEmbedder
from posada_bench.workload import load_groups


def questions(count: int) -> list[str]:
    """`count` guest questions from the benchmark's groups (repeating, numbered)."""
    texts = [q for g in load_groups() for lang in ("es", "en") for q in g.questions[lang]]
    return [f"{texts[i % len(texts)]} ({i})" for i in range(count)]


async def one_at_a_time(embedder: LocalEmbedder, texts: list[str]) -> tuple[float, list[float]]:
    """Questions per second, and each question's time in ms."""
    times = []
    started = time.perf_counter()
    for text in texts:
        began = time.perf_counter()
        await embedder.embed_batch([text])
        times.append((time.perf_counter() - began) * 1000)
    return len(texts) / (time.perf_counter() - started), times


async def concurrently(embedder: LocalEmbedder, texts: list[str], callers: int) -> float:
    """Questions per second with `callers` guests asking at once."""
    queue = iter(texts)

    async def guest() -> None:
        for text in queue:
            await embedder.embed_batch([text])

    started = time.perf_counter()
    await asyncio.gather(*(guest() for _ in range(callers)))
    return len(texts) / (time.perf_counter() - started)


async def run(rounds: int, count: int, callers: int) -> dict[str, Any]:
    """Alternate the three ways for `rounds` rounds."""
    batching = LocalEmbedder()
    unbatched = LocalEmbedder(batch_wait_ms=0, batch_max=1)
    batching.load()
    texts = questions(count)
    await batching.embed_batch(texts[:8])  # the first call's one-off costs
    single, together, apart, each_ms = [], [], [], []
    for _ in range(rounds):
        qps, times = await one_at_a_time(batching, texts[: count // 4])
        single.append(qps)
        each_ms += times
        together.append(await concurrently(batching, texts, callers))
        apart.append(await concurrently(unbatched, texts, callers))
    return {
        "rounds": rounds,
        "questions": count,
        "callers": callers,
        "one_at_a_time_qps": round(statistics.median(single), 1),
        "concurrent_batched_qps": round(statistics.median(together), 1),
        "concurrent_unbatched_qps": round(statistics.median(apart), 1),
        "ratio_batched_to_one_at_a_time": round(
            statistics.median(together) / statistics.median(single), 2
        ),
        "one_question_median_ms": round(statistics.median(each_ms), 2),
        "batches": batching.batcher.batches,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--questions", type=int, default=400)
    parser.add_argument("--callers", type=int, default=100)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    report = asyncio.run(run(args.rounds, args.questions, args.callers))
    for key, value in report.items():
        print(f"{key:36} {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
