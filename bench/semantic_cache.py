"""Calibrating the semantic cache: hits and false hits of the guard on labelled paraphrases.

Every question of the benchmark's paraphrase groups (`src/posada_bench/questions.yaml`:
Spanish and English, with hard negatives such as check-in / check-out) is embedded and
searched as a guest of the demo hotel. Then, for every ordered pair of questions in the
same language, "the first was answered and cached, the second is asked" is judged by:

- similarity alone, at each threshold (what GPTCache-style caches do);
- similarity + the guard (`posada.cache.guard`: same concepts, numbers, names, language);
- similarity + the guard + evidence (the cached answer's best passage is the new
  question's best passage), which is what posada serves with.

A pair from the same group should hit; a pair from different groups must not (a false
hit: a wrong answer served). Questions of the guest's own stay ("my booking") are never
cached, so they are not in the set.

    .venv/bin/python bench/semantic_cache.py [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from posada.answers.turn import fusion_weights
from posada.cache.guard import Signature, conflicts, signature
from posada.core.config import Settings
from posada.demo import DEMO_SLUG, load_demo
from posada.knowledge.retrieval import Visibility, retrieve
from posada.runtime import Runtime
from posada.tenants.service import get_tenant, get_unit_id
from posada_bench.workload import load_groups

THRESHOLDS = (0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90)


@dataclass(frozen=True)
class Asked:
    """One labelled question, embedded and searched."""

    text: str
    group: str
    language: str
    negatives: frozenset[str]
    signature: Signature
    evidence: int | None  # the best passage's id


async def ask_all(runtime: Runtime, *, unit: str = "caracola") -> tuple[list[Asked], np.ndarray]:
    """Embed and search every labelled question as a guest of the demo's `unit`."""
    async with runtime.pool.connection() as conn:
        tenant = await get_tenant(conn, slug=DEMO_SLUG)
        unit_id = await get_unit_id(conn, tenant=tenant, slug=unit)
    visibility = Visibility(tenant_id=tenant.id, unit_id=unit_id)
    questions = [
        (text, group.id, language)
        for group in load_groups()
        for language in ("es", "en")
        for text in group.questions[language]
    ]
    vectors = await runtime.embedder.embed_batch([q[0] for q in questions])
    groups = {g.id: g for g in load_groups()}
    asked = []
    async with runtime.pool.connection() as conn:
        for (text, group, language), vector in zip(questions, vectors, strict=True):
            found = await retrieve(
                conn,
                visibility=visibility,
                text=text,
                embedding=vector,
                k=runtime.settings.retrieval_k,
                candidates=runtime.settings.retrieval_candidates,
                weights=fusion_weights(text, runtime.settings),
            )
            best = found.best_passage
            negatives = frozenset(groups[group].negatives)
            asked.append(Asked(text, group, language, negatives, signature(text), best))
    return asked, np.asarray(vectors)


def judge(asked: list[Asked], vectors: np.ndarray) -> dict[str, Any]:
    """Hit and false-hit rates per threshold, for similarity alone, guard, guard + evidence."""
    similarity = vectors @ vectors.T
    pairs = [
        (i, j)
        for i, a in enumerate(asked)
        for j, b in enumerate(asked)
        if i != j and a.language == b.language
    ]
    same = {(i, j): asked[i].group == asked[j].group for i, j in pairs}
    hard = {(i, j) for i, j in pairs if asked[j].group in asked[i].negatives}
    guard = {(i, j): not conflicts(asked[j].signature, asked[i].signature) for i, j in pairs}
    evidence = {
        (i, j): asked[i].evidence is not None and asked[i].evidence == asked[j].evidence
        for i, j in pairs
    }
    positives = [p for p in pairs if same[p]]
    negatives = [p for p in pairs if not same[p]]
    rows = []
    for threshold in THRESHOLDS:
        near = {p for p in pairs if similarity[p] >= threshold}
        for mode in ("similarity", "guard", "guard+evidence"):

            def hits(
                p: tuple[int, int], mode: str = mode, near: set[tuple[int, int]] = near
            ) -> bool:
                if p not in near:
                    return False
                if mode == "similarity":
                    return True
                return guard[p] and (mode == "guard" or evidence[p])

            true_hits = sum(hits(p) for p in positives)
            false_hits = sum(hits(p) for p in negatives)
            served = true_hits + false_hits
            rows.append(
                {
                    "threshold": threshold,
                    "mode": mode,
                    "hit_rate": round(true_hits / len(positives), 4),
                    "false_hit_rate": round(false_hits / len(negatives), 5),
                    "hard_false_hit_rate": round(sum(hits(p) for p in hard) / len(hard), 4),
                    "wrong_share_of_served": round(false_hits / served, 4) if served else 0.0,
                    "false_hits": false_hits,
                    "examples": [
                        f"{asked[i].text!r} -> {asked[j].text!r}"
                        for i, j in negatives
                        if hits((i, j))
                    ][:5],
                }
            )
    return {
        "questions": len(asked),
        "pairs": len(pairs),
        "positive_pairs": len(positives),
        "negative_pairs": len(negatives),
        "hard_negative_pairs": len(hard),
        "rows": rows,
    }


def print_report(console: Console, report: dict[str, Any]) -> None:
    """The rows as a table."""
    table = Table(
        title=f"semantic cache guard: {report['questions']} questions, "
        f"{report['positive_pairs']:,} same-question pairs, "
        f"{report['negative_pairs']:,} different-question pairs "
        f"({report['hard_negative_pairs']:,} hard)"
    )
    for column in ("threshold", "mode", "hit rate", "false-hit rate", "hard false hits",
                   "wrong share of served"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in report["rows"]:
        table.add_row(
            f"{row['threshold']:.2f}",
            row["mode"],
            f"{row['hit_rate']:.1%}",
            f"{row['false_hit_rate']:.2%}",
            f"{row['hard_false_hit_rate']:.1%}",
            f"{row['wrong_share_of_served']:.1%}",
        )
    console.print(table)


async def run() -> dict[str, Any]:
    """Load the demo in a fresh database and judge the guard."""
    folder = Path(tempfile.mkdtemp(prefix="posada-semantic-"))
    runtime = await Runtime.open(Settings(_env_file=None, data_dir=folder, database_url=None))
    try:
        await load_demo(runtime, today=date.today())
        report = judge(*await ask_all(runtime))
    finally:
        await runtime.close()
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    report = asyncio.run(run())
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print_report(Console(), report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
