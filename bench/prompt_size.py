"""Prompt size, measured: how small the context can be while it still holds the fact.

Ingests `../shared/corpus` as `bench.real_quality` does (its functions), retrieves once per
labelled message with the lookup posada uses (the relevant passages of the top
`retrieval_k`), then builds the prompt (`answers.prompt.build_prompt`, the default token
budget) with variants of the context:

- passages: at most 1, 2, 3, 4 or 5 (5 is today: as many as the budget takes);
- each passage whole (today), or only its best-matching sentence with 1 or 2 either side
  (`answers.context_window`);
- history: 0, 2 or 4 earlier messages (the labelled set has no multi-turn items, so a
  fixed prior exchange stands in: it shows the tokens history costs, and the passages it
  squeezes out of the budget).

For each variant: the mean and median estimated tokens of the whole prompt (every
message, as posada estimates usage: `estimate_tokens(content) + 4` each) over the
answerable messages, and the share of them whose context holds the fact (an `expect`
string in the passages as sent, matched as `real_quality` matches). The choice is made on
the tune split, without history: the fewest mean tokens whose fact rate is at least
today's; the table is then reported on the test split with the choice and today side by
side. A measurement, not a test: it exits 0 whatever the figures.

    .venv/bin/python -m bench.prompt_size [--split tune|test|both] [--json FILE]
        [--data-dir DIR] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.real_quality import (
    ANSWERABLE,
    HERE,
    HOTELS,
    LABELS,
    Loaded,
    Message,
    hit_text,
    holds,
    load_corpus,
    load_messages,
    loaded_corpus,
    prepare,
    search,
)
from posada.answers.extractive import Thresholds, is_relevant
from posada.answers.prompt import build_prompt
from posada.core.config import Settings
from posada.core.language import detect_language
from posada.knowledge.retrieval import Hit
from posada.providers.llm import ChatMessage, estimate_tokens
from posada.runtime import Runtime

PASSAGES = (1, 2, 3, 4, 5)
SHAPES = {"whole": 0, "±1": 1, "±2": 2}  # sentences kept either side (0: whole)
HISTORY = (0, 2, 4)
TODAY = (5, "whole", 0)
# A prior exchange of four messages, the newest last (what the pipeline reads back).
PRIOR = [
    ChatMessage("user", "hola! acabamos de llegar, a que hora se puede hacer el check-in?"),
    ChatMessage(
        "assistant",
        "¡Bienvenidos! El check-in es desde las 3 de la tarde; si llegan antes pueden dejar "
        "el equipaje en recepción mientras preparamos la habitación.",
    ),
    ChatMessage("user", "perfecto gracias. y hay algun supermercado cerca para comprar agua?"),
    ChatMessage(
        "assistant",
        "Sí, hay una tienda a dos cuadras, saliendo a la derecha, abierta hasta las 9 de la "
        "noche. En recepción les indican el camino.",
    ),
]

Variant = tuple[int, str, int]  # passages, shape, history messages


@dataclass(frozen=True)
class Found:
    """One answerable message and the relevant passages its lookup gave, best first."""

    message: Message
    passages: list[Hit]


async def retrieve_all(runtime: Runtime, loaded: Loaded, messages: list[Message]) -> list[Found]:
    """The relevant passages of every answerable message, looked up once."""
    settings = runtime.settings
    bars = Thresholds.of(settings)
    found: list[Found] = []
    for message in messages:
        if message.kind not in ANSWERABLE:
            continue
        embedding = (await runtime.query_embedder.embed_batch([message.text]))[0]
        language = detect_language(message.text)
        async with runtime.pool.connection() as conn:
            got = await search(
                conn,
                settings,
                loaded.visibility(message),
                message.text,
                embedding,
                k=settings.retrieval_k,
            )
        relevant = [h for h in got.chunks if is_relevant(h, bars, language=language)]
        found.append(Found(message, relevant))
    return found


def context_of(messages: list[ChatMessage]) -> str:
    """The passages as the system message carries them."""
    return messages[0].content.split("\n\nContext:\n", 1)[-1]


def measure(found: list[Found], variant: Variant, budget: int) -> dict[str, Any]:
    """Tokens per prompt and the share of prompts holding the fact, for one variant."""
    count, shape, turns = variant
    tokens: list[int] = []
    held = legacy = 0
    for item in found:
        prompt = build_prompt(
            hotel=HOTELS[item.message.hotel],
            question=item.message.text,
            passages=item.passages,
            history=PRIOR[len(PRIOR) - turns :] if turns else [],
            budget=budget,
            max_passages=count,
            around=SHAPES[shape],
        )
        tokens.append(sum(estimate_tokens(m.content) + 4 for m in prompt.messages))
        held += holds(context_of(prompt.messages), item.message.expect)
        # real_quality's figure: the fact anywhere in a sent passage's heading or text.
        legacy += any(holds(hit_text(h), item.message.expect) for h in prompt.passages)
    n = len(found)
    return {
        "passages": count,
        "shape": shape,
        "history": turns,
        "prompts": n,
        "mean_tokens": round(statistics.fmean(tokens), 1) if tokens else 0.0,
        "median_tokens": statistics.median(tokens) if tokens else 0,
        "fact": held,
        "fact_rate": held / n if n else 0.0,
        "fact_in_sent_passages": legacy,
    }


def variants() -> list[Variant]:
    return [(p, s, h) for h in HISTORY for s in SHAPES for p in PASSAGES]


def choose(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fewest mean tokens without history whose fact rate is at least today's; and the
    smaller context that comes closest (the most facts, then the fewest tokens)."""
    today = next(r for r in rows if key(r) == TODAY)
    bare = [r for r in rows if r["history"] == 0]
    fit = [r for r in bare if r["fact"] >= today["fact"]]
    chosen = min(fit, key=lambda r: (r["mean_tokens"], key(r) != TODAY))
    smaller = [r for r in bare if r["mean_tokens"] < chosen["mean_tokens"]] or [chosen]
    closest = min(smaller, key=lambda r: (-r["fact"], r["mean_tokens"]))
    return chosen, closest


def key(row: dict[str, Any]) -> Variant:
    return (row["passages"], row["shape"], row["history"])


def table(rows: list[dict[str, Any]], marks: dict[Variant, str]) -> str:
    lines = [
        "| passages | shape | history | mean tokens | median | fact in context | |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['passages']} | {r['shape']} | {r['history']} | {r['mean_tokens']:.0f} "
            f"| {r['median_tokens']:.0f} | {r['fact']}/{r['prompts']} "
            f"{100 * r['fact_rate']:.1f}% | {marks.get(key(r), '')} |"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    messages = [m for m in load_messages(args.labels) if args.split in ("both", m.split)]
    settings = Settings(data_dir=args.data_dir, database_url=None)
    started = time.perf_counter()
    runtime = await Runtime.open(settings)
    try:
        loaded = await loaded_corpus(runtime)
        if not loaded.tenants:  # a fresh database (an earlier run's is reused as it is)
            loaded = await load_corpus(runtime, args.corpus)
        loaded_s = time.perf_counter() - started
        found = await retrieve_all(runtime, loaded, messages)
    finally:
        await runtime.close()
    budget = settings.prompt_budget_tokens
    result: dict[str, Any] = {
        "embedding_model": settings.embedding_model,
        "budget_tokens": budget,
        "load_s": round(loaded_s, 1),
    }
    splits = [s for s in ("tune", "test") if any(f.message.split == s for f in found)]
    for split in splits:
        mine = [f for f in found if f.message.split == split]
        result[split] = [measure(mine, v, budget) for v in variants()]
    marks = {TODAY: "today"}
    if "tune" in result:
        chosen, closest = choose(result["tune"])
        result["choice"] = {"passages": chosen["passages"], "shape": chosen["shape"]}
        result["closest_smaller"] = {"passages": closest["passages"], "shape": closest["shape"]}
        marks[key(closest)] = "closest smaller"
        marks[key(chosen)] = "choice = today" if key(chosen) == TODAY else "choice"
    for split in splits:
        bare = [r for r in result[split] if r["history"] == 0]
        print(f"== {split}: {bare[0]['prompts']} answerable messages, budget {budget}, no history")
        print(table(bare, marks))
    if "choice" in result:
        c, near = result["choice"], result["closest_smaller"]
        if (c["passages"], c["shape"], 0) == TODAY:
            print("choice (on tune): today's context; no smaller one holds the fact as often")
        else:
            print(f"choice (on tune): at most {c['passages']} passages, {c['shape']}")
        shown = {TODAY[:2], (c["passages"], c["shape"]), (near["passages"], near["shape"])}
        rows = [r for r in result.get("test", []) if key(r)[:2] in shown]
        rows.sort(key=lambda r: (key(r)[:2] != TODAY[:2], key(r)[:2], r["history"]))
        history_marks = {key(r): marks.get((r["passages"], r["shape"], 0), "") for r in rows}
        print("== test: today, the choice and the closest smaller, with history")
        print(table(rows, history_marks))
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(
        f"model {settings.embedding_model}; corpus in {loaded_s:.0f} s; all {result['seconds']} s"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--split", choices=("tune", "test", "both"), default="both")
    parser.add_argument("--corpus", type=Path, default=HERE.parent.parent / "shared" / "corpus")
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not prepare(args, prefix="posada-prompt-"):
        return 2
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
