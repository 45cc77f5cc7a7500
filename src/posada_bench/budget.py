"""The performance budget: limits on a benchmark's or load test's figures, and the check.

The budget file (`performance-budget.json`) holds sections of limits, each
`{"figure": {"max": x, "min": y}}`: "ratios" limits the results' optimized/baseline ratios,
a profile's name ("baseline", "optimized") limits that profile's figures, "loadtest" limits
the load test's. Its "routes" and "default_p95_ms" belong to the P95 watcher
(`posada.observe.watch`) and are not read here.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeGuard

from posada.core.errors import InvalidInput
from posada_bench.report import RATIO_FIGURES

LimitKind = Literal["max", "min"]

PROFILES = ("baseline", "optimized")
PROFILE_FIGURES = frozenset(
    {
        "questions",
        "requests",
        "errors",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "ttfb_p50_ms",
        "ttfb_p95_ms",
        "db_queries_per_request",
        "embeddings_per_question",
        "answer_cache_hit_rate",
        "faq_hit_rate",
        "reuse_rate_repeated",
        "reuse_rate_fresh",
        "fresh_questions",
        "cost_per_1000_questions_usd",
        "throughput_qps",
        "peak_memory_mb",
    }
)
LOADTEST_FIGURES = frozenset({"users", "requests", "failures", "p50_ms", "p95_ms", "p99_ms"})
# Figures each section may limit: a typo would otherwise read as "not measured" on every run.
SECTION_FIGURES = {
    "ratios": frozenset(RATIO_FIGURES),  # the figures `posada bench` gives ratios of
    **dict.fromkeys(PROFILES, PROFILE_FIGURES),
    "loadtest": LOADTEST_FIGURES,
}
# Keys of the budget file that are not sections checked here.
NOT_SECTIONS = frozenset({"routes", "default_p95_ms"})


@dataclass(frozen=True)
class Limit:
    """One bound on one figure."""

    figure: str
    kind: LimitKind
    value: float


@dataclass(frozen=True)
class Budget:
    """The limits of each section, in the budget file's order."""

    sections: dict[str, tuple[Limit, ...]]


@dataclass(frozen=True)
class Check:
    """One limit checked against the results; `measured` is None when the figure is missing."""

    section: str
    figure: str
    kind: LimitKind
    limit: float
    measured: float | None
    ok: bool
    message: str


def format_number(value: float) -> str:
    """A figure as people read it: 4000, 0.41, 1.2e-07."""
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    return f"{value:.6g}"


def _is_number(value: object) -> TypeGuard[int | float]:
    # JSON's true/false arrive as bool, a subclass of int; they are not figures.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _read_json(path: Path, what: str) -> dict[str, object]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the {what} {path}: {exc}") from exc
    except ValueError as exc:
        raise InvalidInput(f"the {what} {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"the {what} {path} must be a JSON object")
    return data


def parse_limits(*, section: str, figure: str, spec: object) -> tuple[Limit, ...]:
    """The limits of `{"max": x, "min": y}` (either or both), or InvalidInput naming the figure."""
    where = f"{section}.{figure}"
    if not isinstance(spec, dict) or not spec or not set(spec) <= {"max", "min"}:
        shape = '{"max": x} and/or {"min": y}'
        raise InvalidInput(f"budget {where}: expected {shape}, got {spec!r}")
    limits: list[Limit] = []
    kinds: tuple[LimitKind, ...] = ("max", "min")
    for kind in kinds:
        if kind not in spec:
            continue
        value = spec[kind]
        if not _is_number(value) or not math.isfinite(value):
            raise InvalidInput(f"budget {where}.{kind}: expected a number, got {value!r}")
        limits.append(Limit(figure, kind, float(value)))
    if len(limits) == 2 and limits[1].value > limits[0].value:
        raise InvalidInput(f"budget {where}: min {spec['min']} is above max {spec['max']}")
    return tuple(limits)


def parse_budget(*, data: dict[str, object]) -> Budget:
    """The budget in a budget file's JSON, or InvalidInput naming what is wrong."""
    sections: dict[str, tuple[Limit, ...]] = {}
    for name, figures in data.items():
        if name.startswith("_") or name in NOT_SECTIONS:
            continue
        if name not in SECTION_FIGURES:
            known = ", ".join(sorted(SECTION_FIGURES))
            raise InvalidInput(f"budget: unknown section {name!r} (known: {known})")
        if not isinstance(figures, dict):
            raise InvalidInput(f"budget {name}: expected an object of figures, got {figures!r}")
        limits: list[Limit] = []
        for figure, spec in figures.items():
            if figure not in SECTION_FIGURES[name]:
                known = ", ".join(sorted(SECTION_FIGURES[name]))
                raise InvalidInput(f"budget {name}: unknown figure {figure!r} (known: {known})")
            limits.extend(parse_limits(section=name, figure=figure, spec=spec))
        sections[name] = tuple(limits)
    return Budget(sections)


def load_budget(*, path: Path) -> Budget:
    """The budget in the file at `path`, or InvalidInput naming the file."""
    data = _read_json(path, "budget file")
    try:
        return parse_budget(data=data)
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: {exc.message}") from exc


def load_results(*, path: Path) -> dict[str, object]:
    """The results file of `posada bench --json` or `posada loadtest --json`, or InvalidInput."""
    return _read_json(path, "results file")


def _section_of(results: dict[str, object], section: str) -> tuple[dict[str, object], str]:
    """The results' figures a budget section checks, and why they would be missing."""
    if section == "ratios":
        found, why = results.get("ratios"), "no ratios: they need both profiles"
    elif section == "loadtest":
        found, why = results.get("loadtest"), "no load test"
    else:
        profiles = results.get("profiles")
        if not isinstance(profiles, dict):
            raise InvalidInput(f"results profiles: expected an object, got {profiles!r}")
        found, why = profiles.get(section), f"profile {section} did not run"
    if found is None:
        return {}, why
    if not isinstance(found, dict):
        raise InvalidInput(f"results {section}: expected an object, got {found!r}")
    return found, ""


def _check(limit: Limit, section: str, figures: dict[str, object], why: str) -> Check:
    value = figures.get(limit.figure)
    bound = f"{limit.kind} {format_number(limit.value)}"
    where = f"{section} {limit.figure}"
    if value is None:
        reason = why or "missing or null in the results"
        return Check(
            section, limit.figure, limit.kind, limit.value, None, False,
            f"{where}: not measured ({reason}); {bound}",
        )  # fmt: skip
    if not _is_number(value):
        raise InvalidInput(f"results {section}.{limit.figure}: expected a number, got {value!r}")
    measured = float(value)
    # Written so that NaN fails both kinds.
    ok = measured <= limit.value if limit.kind == "max" else measured >= limit.value
    verdict = "within" if ok else "over the" if limit.kind == "max" else "under the"
    return Check(
        section, limit.figure, limit.kind, limit.value, measured, ok,
        f"{where}: {format_number(measured)} is {verdict} {bound}",
    )  # fmt: skip


def check_budget(*, results: dict[str, object], budget: Budget) -> list[Check]:
    """Every limit that applies to `results`, checked; InvalidInput when none can apply."""
    version = results.get("version", 1)
    if version != 1:
        raise InvalidInput(f"results version {version!r} is not supported (expected 1)")
    is_bench, is_loadtest = "profiles" in results, "loadtest" in results
    if not is_bench and not is_loadtest:
        raise InvalidInput('results have neither "profiles" (posada bench) nor "loadtest"')
    checks: list[Check] = []
    for section, limits in budget.sections.items():
        applies = is_loadtest if section == "loadtest" else is_bench
        if not applies:
            continue
        figures, why = _section_of(results, section)
        checks.extend(_check(limit, section, figures, why) for limit in limits)
    if not checks:
        raise InvalidInput("the budget has no limits for these results")
    return checks
