"""Calibrating reuse on real guests' rewordings: which thresholds serve a cached answer safely.

Every answerable message of one split of `bench/labels/real` is embedded and searched as
the pipeline does, in a database that `bench/real_quality.py --data-dir DIR` loaded. Then
for every ordered pair of messages a guest could share a cache entry across (same hotel,
same language, same unit when the first one's evidence is a unit's), "the first was
answered and kept, the second is asked" is judged as the pipeline judges it:

- the same evidence: the first one's best passage is the second one's best passage;
- the second sits at most `drop` less near that passage than the first;
- their similarity clears `threshold`;
- nothing conflicts (`posada.cache.guard`).

A pair of one fact should be reused; a pair of different facts must not be (unless both
facts have the same value). Prints, per threshold and drop, the share of rewordings that
would be reused and the wrong share of what would be served. Tune on `--split tune`.

    .venv/bin/python -m bench.reuse_calibration --data-dir DIR [--split tune]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.real_quality import (
    ANSWERABLE,
    LABELS,
    Loaded,
    Message,
    load_messages,
    loaded_corpus,
    normalise,
    search,
)
from posada.cache.guard import Signature, conflicts, signature
from posada.core.config import Settings
from posada.runtime import Runtime

WITHIN = (1, 2, 3)
WITHIN_MAX = 3
THRESHOLDS = (0.80, 0.84, 0.86, 0.88, 0.90, 0.91, 0.92, 0.93, 0.94, 0.95)
DROPS = (0.0, 0.01, 0.02, 0.03, 0.05, 1.0)


@dataclass(frozen=True)
class Asked:
    """One message, embedded and searched."""

    message: Message
    signature: Signature
    best: int | None
    best_scope: str
    best_similarity: float
    top: dict[int, float]  # the first passages' ids -> similarity, best first


async def ask_all(runtime: Runtime, loaded: Loaded, messages: list[Message]) -> list[Asked]:
    """Best passage of every message, as the pipeline's lookup finds it."""
    vectors = await runtime.query_embedder.embed_batch([m.text for m in messages])
    asked: list[Asked] = []
    async with runtime.pool.connection() as conn:
        for message, vector in zip(messages, vectors, strict=True):
            got = await search(
                conn,
                runtime.settings,
                loaded.visibility(message),
                message.text,
                vector,
                k=runtime.settings.retrieval_k,
            )
            top = got.chunks[0] if got.chunks else None
            asked.append(
                Asked(
                    message,
                    signature(message.text),
                    top.id if top else None,
                    top.scope if top else "",
                    top.similarity if top else 0.0,
                    {h.id: h.similarity for h in got.chunks[:WITHIN_MAX]},
                )
            )
    return asked


def shares_cache(a: Asked, b: Asked) -> bool:
    """Whether b's guest could be served a's cached answer at all (scope and language)."""
    ma, mb = a.message, b.message
    if ma.hotel != mb.hotel or a.signature.language != b.signature.language:
        return False
    return a.best_scope != "unit" or ma.unit == mb.unit


def same_answer(a: Message, b: Message) -> bool:
    """Different facts with the same value (a reuse between them is not wrong)."""
    return a.fact == b.fact or bool(
        {normalise(e) for e in a.expect} & {normalise(e) for e in b.expect}
    )


def judge(asked: list[Asked], vectors: np.ndarray) -> list[tuple[int, float, float, float, float]]:
    """(within, threshold, drop, share of rewordings reused, wrong share of reuses)."""
    similarity = vectors @ vectors.T
    shared = [
        (i, j)
        for i, a in enumerate(asked)
        for j, b in enumerate(asked)
        if i != j and shares_cache(a, b) and a.best is not None
        and not conflicts(b.signature, a.signature)
    ]  # fmt: skip
    positives = sum(
        a.message.fact == b.message.fact
        for i, a in enumerate(asked)
        for j, b in enumerate(asked)
        if i != j and shares_cache(a, b)
    )
    rows = []
    for within in WITHIN:
        for threshold in THRESHOLDS:
            for drop in DROPS:
                kept = []
                for i, j in shared:
                    ranked = list(asked[j].top.items())[:within]
                    near = dict(ranked).get(asked[i].best or -1)
                    if near is None or similarity[i, j] < threshold:
                        continue
                    if near >= asked[i].best_similarity - drop:
                        kept.append((i, j))
                right = sum(same_answer(asked[i].message, asked[j].message) for i, j in kept)
                hits = sum(asked[i].message.fact == asked[j].message.fact for i, j in kept)
                reused = hits / positives if positives else 0.0
                wrong = (len(kept) - right) / len(kept) if kept else 0.0
                rows.append((within, threshold, drop, reused, wrong))
    return rows


async def run(args: argparse.Namespace) -> None:
    messages = [
        m for m in load_messages(args.labels) if m.split == args.split and m.kind in ANSWERABLE
    ]
    runtime = await Runtime.open(Settings(data_dir=args.data_dir, database_url=None))
    try:
        loaded = await loaded_corpus(runtime)
        asked = await ask_all(runtime, loaded, messages)
        vectors = np.asarray(await runtime.query_embedder.embed_batch([m.text for m in messages]))
    finally:
        await runtime.close()
    print(f"{len(asked)} messages ({args.split}); within, threshold, drop, reused, wrong share")
    for within, threshold, drop, reused, wrong in judge(asked, vectors):
        if reused > 0:
            print(
                f"{within}  {threshold:.2f}  {drop:.2f}  reused {reused:6.1%}  wrong {wrong:6.2%}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--split", choices=("tune", "test"), default="tune")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
