"""Tier routing, measured: choose_tier against guest questions labelled simple or complex.

Every question of bench/labels/routing.yaml is routed by posada's `choose_tier` and by the
rule it replaced (`length_rule`, copied here as it was). For each half it reports agreement
with the labels and the two ways of being wrong (a simple question sent large is money
wasted; a complex one sent small is a quality risk), the share of each tier, and the cost
per 1,000 questions against sending every question to the large tier.

Cost: the tier prices come from Settings (POSADA_LLM_SMALL_PRICE_IN... refine them), the
input tokens from posada's own `build_prompt` over a fixed context (three passages of
plain hotel text, about 120 tokens each, within POSADA_PROMPT_BUDGET_TOKENS, no history),
the output tokens from an assumed answer length by label (OUTPUT_TOKENS): what the question
needs, whichever tier answers it. A measurement, not a test: it exits 0 whatever the figures.
`tune` may be looked at while changing the router (`--show-failures` lists its misses);
`test` is only for reporting.

    .venv/bin/python -m bench.routing [--split test|tune|all] [--json FILE] [--show-failures]
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from posada.answers.prompt import build_prompt
from posada.answers.routing import choose_tier
from posada.core.config import Settings
from posada.core.groups import TierSettings
from posada.core.language import Language
from posada.knowledge.retrieval import Hit
from posada.providers.registry import Tier

HERE = Path(__file__).resolve().parent
LABELS = HERE / "labels" / "routing.yaml"
# Questions others wrote for posada's other benchmarks, unlabelled and mostly one fact
# each: the share a router sends large there checks the set's author's own bias.
OTHERS = {
    "answer-quality set": HERE / "labels" / "questions.yaml",
    "workload": HERE.parent / "src" / "posada_bench" / "questions.yaml",
}
SPLITS = ("tune", "test")
# Assumed answer length in tokens, by what the question needs (the prompt asks for at most
# three sentences): one fact said, or a few facts combined and explained.
OUTPUT_TOKENS = {"simple": 60, "complex": 150}
# The set is about half complex so that both kinds are measured; a hotel's guests mostly
# ask one fact (of the questions others wrote for posada's workload, under a tenth go
# large), so the cost is also shown reweighted to this share of simple questions.
SIMPLE_SHARE = 0.8
HOTEL = "Hotel Mirador"
# A representative context: three passages of the kind a hotel's guide holds, ~120 tokens
# (about 480 characters) each.
PASSAGES = (
    (
        "Guest guide › Breakfast and restaurant",
        "Breakfast is served in the garden restaurant on the ground floor from 7:00 to 10:30 "
        "on weekdays and until 11:00 on weekends and holidays. It is included in every rate "
        "except the room-only rate, where it costs 14 euros per adult and 7 euros per child "
        "under twelve. Gluten-free bread, plant milk and lactose-free yoghurt are available "
        "on request. Dinner is served from 19:30 to 22:30; booking a table at reception is "
        "advised on Fridays and Saturdays. Room service runs from 7:00 to 23:00.",
    ),
    (
        "Guest guide › Arrival and departure",
        "Check-in is from 15:00 and check-out until 11:00. A late check-out until 14:00 costs "
        "25 euros, subject to availability; ask at reception the day before. Luggage can be "
        "left in the locked room behind reception before check-in and after check-out at no "
        "charge. A deposit of 50 euros per night is taken on arrival by card and released at "
        "check-out. Reception is open 24 hours; from the room phone, dial 9. Parking in the "
        "covered garage costs 18 euros a night; the gate code is given at check-in.",
    ),
    (
        "Guest guide › Getting around",
        "The airport is 35 minutes away by car, up to an hour at rush hour. The hotel shuttle "
        "costs 30 euros per trip for up to four people and must be booked 24 hours ahead; a "
        "taxi costs about 40 euros. Bus 12 stops 200 metres from the entrance and runs to the "
        "old town every 15 minutes until midnight; tickets are sold on board. Bicycles can "
        "be hired at reception for 12 euros a day. The beach is a 10-minute walk down the "
        "hill; beach towels are lent at the pool bar.",
    ),
)

Router = Callable[[str], Tier]


@dataclass(frozen=True)
class Item:
    question: str
    language: Language
    label: str  # simple | complex
    split: str
    why: str | None


_OLD_QUESTION_WORDS = re.compile(
    r"\b(what|when|where|how|which|who|why|qu[eé]|cu[aá]ndo|d[oó]nde|c[oó]mo|cu[aá]l|"
    r"qui[eé]n|por qu[eé])\b",
    re.IGNORECASE,
)


def length_rule(question: str) -> Tier:
    """The rule choose_tier had before it was measured: long or multi-part goes large."""
    words = len(question.split())
    parts = question.count("?") + len(_OLD_QUESTION_WORDS.findall(question)) // 2
    return "large" if words > 30 or parts >= 2 else "small"


ROUTERS: dict[str, Router] = {
    "length_rule": length_rule,
    "choose_tier": choose_tier,
    "always_large": lambda _question: "large",
    "always_small": lambda _question: "small",
}


def load_items() -> list[Item]:
    """Every labelled question, checked: a known label and split, no question twice."""
    data: dict[str, list[dict[str, str]]] = yaml.safe_load(LABELS.read_text(encoding="utf-8"))
    items = [
        Item(e["q"], language, e["label"], e["split"], e.get("why"))  # type: ignore[arg-type]
        for language, entries in data.items()
        for e in entries
    ]
    for item in items:
        if item.label not in OUTPUT_TOKENS or item.split not in SPLITS:
            raise SystemExit(f"{LABELS}: bad label or split for {item.question!r}")
    if len({i.question.lower() for i in items}) != len(items):
        raise SystemExit(f"{LABELS}: a question appears twice")
    return items


def load_others() -> dict[str, list[str]]:
    """{set: [question, ...]} from the answer-quality set and the workload's groups."""
    quality, workload = (yaml.safe_load(p.read_text(encoding="utf-8")) for p in OTHERS.values())
    found = {"answer-quality set": [q["question"] for q in quality["questions"]], "workload": []}
    for group in workload["groups"]:
        for language in ("es", "en"):
            found["workload"] += group.get(language, [])
            found["workload"] += group.get("follow_ups", {}).get(language, [])
    return found


def _passages() -> list[Hit]:
    return [
        Hit(
            kind="chunk",
            id=n,
            chunk_id=n,
            title="Guest guide",
            source="guide.md",
            tenant_id=1,
            scope="hotel",
            unit_id=None,
            heading=heading,
            text=text,
            question=None,
            score=1.0 / n,
            similarity=0.8,
            vector_rank=n,
            text_rank=n,
            coverage=0.5,
            question_coverage=0.0,
        )
        for n, (heading, text) in enumerate(PASSAGES, start=1)
    ]


def input_tokens(settings: Settings, item: Item, passages: list[Hit]) -> int:
    """The prompt's estimated tokens for this question, as serve_llm builds it."""
    prompt = build_prompt(
        hotel=HOTEL,
        question=item.question,
        passages=passages,
        history=[],
        budget=settings.prompt_budget_tokens,
        language=item.language,
    )
    return sum(prompt.tokens.values())


def _cost(tier: TierSettings, tokens_in: int, tokens_out: int) -> float:
    return (tokens_in * tier.price_in + tokens_out * tier.price_out) / 1e6


def evaluate(
    router: Router, items: list[Item], tokens: dict[str, int], settings: Settings, mix: float
) -> dict[str, Any]:
    """One router's figures over `items`; `mix`: the share of simple questions to reweight
    the cost to (a hotel's own traffic rather than the set's)."""
    prices: dict[Tier, TierSettings] = {"small": settings.llm_small, "large": settings.llm_large}
    tiers = [router(i.question) for i in items]
    # by label: [routed cost, always-large cost, questions]
    sums = {label: [0.0, 0.0, 0] for label in OUTPUT_TOKENS}
    wasted = 0.0
    for item, tier in zip(items, tiers, strict=True):
        tokens_in, out = tokens[item.question], OUTPUT_TOKENS[item.label]
        routed, large = _cost(prices[tier], tokens_in, out), _cost(prices["large"], tokens_in, out)
        figures = sums[item.label]
        figures[0], figures[1], figures[2] = figures[0] + routed, figures[1] + large, figures[2] + 1
        if item.label == "simple" and tier == "large":
            wasted += routed - _cost(prices["small"], tokens_in, out)
    cost, always_large = (sum(f[i] for f in sums.values()) for i in (0, 1))
    mean = {label: (f[0] / f[2], f[1] / f[2]) if f[2] else (0.0, 0.0) for label, f in sums.items()}
    at_mix = [mix * mean["simple"][i] + (1 - mix) * mean["complex"][i] for i in (0, 1)]
    pairs = list(zip(items, tiers, strict=True))
    right = sum((i.label == "complex") == (t == "large") for i, t in pairs)
    n = len(items)
    return {
        "n": n,
        "accuracy": right / n,
        "simple_sent_large": sum(i.label == "simple" and t == "large" for i, t in pairs),
        "complex_sent_small": sum(i.label == "complex" and t == "small" for i, t in pairs),
        "simple": sums["simple"][2],
        "complex": sums["complex"][2],
        "share_large": tiers.count("large") / n,
        "cost_per_1k_usd": 1000 * cost / n,
        "vs_always_large": cost / always_large,
        # what the simple questions sent large cost beyond the small tier's price
        "wasted_per_1k_usd": 1000 * wasted / n,
        "cost_per_1k_at_mix_usd": 1000 * at_mix[0],
        "vs_always_large_at_mix": at_mix[0] / at_mix[1],
        "misses": [
            [i.label, t, i.question] for i, t in pairs if (i.label == "simple") != (t == "small")
        ],
    }


def _table(name: str, figures: dict[str, dict[str, Any]], mix: float) -> str:
    first = next(iter(figures.values()))
    lines = [
        f"\n{name}: {first['n']} questions ({first['simple']} simple, {first['complex']} complex)",
        f"{'':<45}{'cost (the set)':^26}{f'cost at {100 * mix:.0f}% simple':^18}",
        f"{'router':<14}{'agree':>7}{'s>large':>8}{'c>small':>8}{'large':>8}"
        f"{'$/1k':>8}{'vs large':>10}{'wasted':>8}{'$/1k':>8}{'vs large':>10}",
    ]
    for router, f in figures.items():
        lines.append(
            f"{router:<14}{100 * f['accuracy']:6.1f}%{f['simple_sent_large']:>8}"
            f"{f['complex_sent_small']:>8}{100 * f['share_large']:7.1f}%"
            f"{f['cost_per_1k_usd']:8.3f}{100 * f['vs_always_large']:9.1f}%"
            f"{f['wasted_per_1k_usd']:8.3f}{f['cost_per_1k_at_mix_usd']:8.3f}"
            f"{100 * f['vs_always_large_at_mix']:9.1f}%"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["test", "tune", "all"], default="all")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--show-failures", action="store_true", help="the tune half's misses")
    parser.add_argument(
        "--simple-share",
        type=float,
        default=SIMPLE_SHARE,
        help=f"the share of simple questions to reweight the cost to (default {SIMPLE_SHARE})",
    )
    args = parser.parse_args()
    if not 0 <= args.simple_share <= 1:
        parser.error("--simple-share is a share: between 0 and 1")
    settings = Settings(_env_file=None, database_url=None)
    items = load_items()
    passages = _passages()
    tokens = {i.question: input_tokens(settings, i, passages) for i in items}
    halves = {"tune": ["tune"], "test": ["test"], "all": ["tune", "test", "all"]}[args.split]
    report: dict[str, Any] = {
        "assumptions": {
            "output_tokens": OUTPUT_TOKENS,
            "mean_input_tokens": round(sum(tokens.values()) / len(tokens), 1),
            "prompt_budget_tokens": settings.prompt_budget_tokens,
            "passages": len(passages),
            "simple_share": args.simple_share,
            "small": settings.llm_small.model_dump(include={"model", "price_in", "price_out"}),
            "large": settings.llm_large.model_dump(include={"model", "price_in", "price_out"}),
        },
        "splits": {},
    }
    a = report["assumptions"]
    print(
        f"prices per M tokens in/out: small {a['small']['model']} ${a['small']['price_in']}/"
        f"${a['small']['price_out']}, large {a['large']['model']} ${a['large']['price_in']}/"
        f"${a['large']['price_out']}; prompt {a['mean_input_tokens']} tokens on average "
        f"({len(passages)} passages, budget {settings.prompt_budget_tokens}); answer "
        f"{OUTPUT_TOKENS['simple']} tokens simple, {OUTPUT_TOKENS['complex']} complex"
    )
    for half in halves:
        chosen = [i for i in items if half in ("all", i.split)]
        figures = {
            name: evaluate(r, chosen, tokens, settings, args.simple_share)
            for name, r in ROUTERS.items()
        }
        print(_table(half, figures, args.simple_share))
        if args.show_failures and half == "tune":
            for label, tier, question in figures["choose_tier"]["misses"]:
                print(f"  {label:<8} -> {tier:<6} {question}")
        if half != "tune":
            for f in figures.values():
                f.pop("misses")  # the test half's misses are not to be tuned on
        report["splits"][half] = figures
    others = load_others()
    report["others_share_large"] = {}
    print("\nunlabelled questions others wrote (mostly one fact each): share sent large")
    for name, questions in others.items():
        shares = {
            router: sum(ROUTERS[router](q) == "large" for q in questions) / len(questions)
            for router in ("length_rule", "choose_tier")
        }
        report["others_share_large"][name] = shares
        print(
            f"  {name:<20} {len(questions):>4} questions  length_rule "
            f"{100 * shares['length_rule']:5.1f}%  choose_tier {100 * shares['choose_tier']:5.1f}%"
        )
    print(
        "\ns>large: simple questions sent large, money wasted (wasted: their price beyond the "
        "small tier's, per 1k questions); c>small: complex ones sent small, quality at risk; "
        "vs large: cost against always-large"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
