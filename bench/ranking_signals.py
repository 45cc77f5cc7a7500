"""Which passage comes first? Re-scoring the fused candidates with every signal at hand.

The extractive answer, the evidence a reuse must share and most of what a small model is
sent rest on the first passage. This asks every answerable message of `bench/labels/real`
in a database that `bench/real_quality.py --data-dir DIR` loaded, takes the first
`--depth` fused candidates, and re-orders them by each signal alone and by weighted sums
of them, the weights chosen on the tuning half and reported on the test half:

- fused: the pipeline's own order (reciprocal-rank fusion of vector and full text);
- similarity: the question's vector against the passage's;
- heading: the question against the passage's heading embedded as a question (headings
  read like the topics guests ask about);
- hubness: how near the passage sits to every question-like text the hotel wrote (its
  headings and FAQ questions; the mean of the 10 nearest), subtracted, as in CSLS: a
  generic passage ("see our website") is near every question;
- evidence: the answering line's score (`answers.excerpt.evidence`: the question's words,
  values of the kind asked);
- coverage: the share of the question's words, by rarity, in the passage;
- lines (`--lines`): the best single line, embedded on its own with its heading.

Prints the share of messages whose fact is in the first 1, 3 and 5 passages per order,
the share whose first passage's excerpt (what the extractive answer would show) holds
it, and the ceiling (the fact anywhere in the candidates). A measurement, not a test.

    .venv/bin/python -m bench.ranking_signals --data-dir DIR [--depth 20] [--lines]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.real_quality import (
    ANSWERABLE,
    LABELS,
    Message,
    hit_text,
    holds,
    load_messages,
    loaded_corpus,
    search,
)
from posada.answers.excerpt import _units, evidence, excerpt
from posada.core.config import Settings
from posada.providers.embeddings import questions_of
from posada.runtime import Runtime

HUB_NEIGHBOURS = 10
KS = (1, 3, 5)
SIGNALS = ("fused", "similarity", "heading", "hubness", "evidence", "coverage", "lines")
# Weighted sums tried: similarity + a*heading - b*hubness + c*evidence + d*coverage + e*fused
GRID = {
    "heading": (0.0, 0.5, 1.0),
    "hubness": (0.0, 0.5, 1.0),
    "evidence": (0.0, 0.01, 0.02, 0.05),
    "coverage": (0.0, 0.05, 0.1),
    "fused": (0.0, 1.0, 3.0),
}


@dataclass(frozen=True)
class Candidate:
    """One fused candidate of one message, with every signal."""

    holds: bool
    answers: bool  # the excerpt the extractive answer would show of it holds the fact
    signals: dict[str, float]


@dataclass(frozen=True)
class Asked:
    message: Message
    candidates: list[Candidate]


def _vector(value: object) -> np.ndarray:
    if isinstance(value, str):
        return np.array([float(x) for x in value.strip("[]").split(",")], dtype=np.float32)
    return np.asarray(value, dtype=np.float32)


async def ask_all(
    runtime: Runtime, messages: list[Message], *, depth: int, lines: bool
) -> list[Asked]:
    """Every message's candidates, with their signals."""
    settings = runtime.settings
    loaded = await loaded_corpus(runtime)
    async with runtime.pool.connection() as conn:
        cur = await conn.execute("SELECT id, heading, content, embedding::text FROM chunks")
        chunks = {int(i): (str(h), str(c), _vector(e)) for i, h, c, e in await cur.fetchall()}
        cur = await conn.execute("SELECT embedding::text FROM faq")
        faq = [_vector(e) for (e,) in await cur.fetchall()]
    ids = list(chunks)
    where = {cid: n for n, cid in enumerate(ids)}
    questions = questions_of(runtime.embedder)
    headings = np.asarray(await questions.embed_batch([chunks[i][0] for i in ids]))
    passages = np.stack([chunks[i][2] for i in ids])
    pseudo = np.concatenate([headings, np.stack(faq)]) if faq else headings
    nearest = np.sort(passages @ pseudo.T, axis=1)[:, -HUB_NEIGHBOURS:]
    hubness = nearest.mean(axis=1)
    line_vectors: dict[int, np.ndarray] = {}
    if lines:
        owners, texts = [], []
        for cid in ids:
            heading, content, _ = chunks[cid]
            for _indent, line in _units(content):
                owners.append(cid)
                texts.append(f"{heading}\n{line}")
        vectors = np.concatenate(
            [np.asarray(await runtime.embedder.embed_batch(texts[s : s + 64]))
             for s in range(0, len(texts), 64)]
        )  # fmt: skip
        for cid in ids:
            rows = [n for n, owner in enumerate(owners) if owner == cid]
            if rows:
                line_vectors[cid] = vectors[rows]
    embedded = np.asarray(await runtime.query_embedder.embed_batch([m.text for m in messages]))
    asked: list[Asked] = []
    async with runtime.pool.connection() as conn:
        for message, vector in zip(messages, embedded, strict=True):
            got = await search(
                conn, settings, loaded.visibility(message), message.text, vector, k=depth
            )
            candidates = []
            for rank, hit in enumerate(got.chunks):
                n = where[hit.id]
                own = line_vectors.get(hit.id)
                candidates.append(
                    Candidate(
                        holds=holds(hit_text(hit), message.expect),
                        answers=holds(excerpt(message.text, hit.text), message.expect),
                        signals={
                            "fused": -float(rank),
                            "fused_score": hit.score,
                            "similarity": hit.similarity,
                            "heading": float(headings[n] @ vector),
                            "hubness": -float(hubness[n]),
                            "evidence": evidence(message.text, hit.text, hit.heading),
                            "coverage": hit.coverage,
                            "lines": float((own @ vector).max()) if own is not None else 0.0,
                        },
                    )
                )
            asked.append(Asked(message, candidates))
    return asked


Scorer = Callable[[dict[str, float]], float]


def found(asked: list[Asked], score: Scorer) -> tuple[float, ...]:
    """The share of messages with the fact in the first k candidates, re-ordered, per k;
    then the share whose first candidate's excerpt holds it."""
    shares = []
    orders = [sorted(one.candidates, key=lambda c: -score(c.signals)) for one in asked]
    for k in KS:
        hits = sum(any(c.holds for c in order[:k]) for order in orders)
        shares.append(hits / len(asked) if asked else 0.0)
    answered = sum(bool(order) and order[0].answers for order in orders)
    shares.append(answered / len(asked) if asked else 0.0)
    return tuple(shares)


def alone(name: str) -> Scorer:
    def score(s: dict[str, float]) -> float:
        return s[name]

    return score


def weighted(weights: dict[str, float]) -> Scorer:
    def score(s: dict[str, float]) -> float:
        total = s["similarity"] + weights["fused"] * s["fused_score"]
        return total + sum(w * s[name] for name, w in weights.items() if name != "fused")

    return score


def row(name: str, tune: tuple[float, ...], test: tuple[float, ...]) -> str:
    cells = " ".join(f"{x:6.1%}" for x in tune) + "   " + " ".join(f"{x:6.1%}" for x in test)
    return f"{name:34s} {cells}"


async def run(args: argparse.Namespace) -> None:
    messages = [m for m in load_messages(args.labels) if m.kind in ANSWERABLE]
    runtime = await Runtime.open(Settings(data_dir=args.data_dir, database_url=None))
    try:
        asked = await ask_all(runtime, messages, depth=args.depth, lines=args.lines)
    finally:
        await runtime.close()
    tune = [a for a in asked if a.message.split == "tune"]
    test = [a for a in asked if a.message.split == "test"]
    print(f"{len(tune)} tune / {len(test)} test answerable messages, first {args.depth} fused")
    print(f"{'order':34s} {'tune top-1/3/5, excerpt':>27s}   {'test top-1/3/5, excerpt':>27s}")
    ceilings = [sum(any(c.holds for c in a.candidates) for a in part) / len(part)
                for part in (tune, test)]  # fmt: skip
    print(row(f"ceiling (anywhere in {args.depth})", (ceilings[0],) * 4, (ceilings[1],) * 4))
    for name in SIGNALS:
        if name == "lines" and not args.lines:
            continue
        print(row(name, found(tune, alone(name)), found(test, alone(name))))
    best: tuple[tuple[float, ...], dict[str, float]] | None = None
    for values in itertools.product(*GRID.values()):
        weights = dict(zip(GRID, values, strict=True))
        got = found(tune, weighted(weights))
        if best is None or got > best[0]:
            best = (got, weights)
    assert best is not None
    chosen = ", ".join(f"{k} {v:g}" for k, v in best[1].items() if v)
    print(row("best sum on tune", best[0], found(test, weighted(best[1]))))
    print(f"  (similarity + {chosen or 'nothing else'})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--lines", action="store_true", help="also line vectors (minutes)")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
