"""The performance budget: loading it, checking results against it, and `posada budget check`."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from posada.core.config import Settings
from posada.core.errors import InvalidInput
from posada.observe.watch import load_budgets
from posada_bench.budget import Budget, Check, check_budget, load_budget, load_results, parse_budget
from tests.support.helpers import CliResult, run_cli

REPO_BUDGET = Path(__file__).resolve().parents[2] / "performance-budget.json"

BUDGET: dict[str, object] = {
    "_comment": "test budget",
    "ratios": {"p50_ms": {"max": 0.8}, "db_queries_per_request": {"max": 0.5}},
    "optimized": {
        "p95_ms": {"max": 8000},
        "errors": {"max": 0},
        "answer_cache_hit_rate": {"min": 0.2, "max": 1},
    },
    "loadtest": {"failures": {"max": 0}, "p95_ms": {"max": 10000}},
    "routes": {"POST /api/guest/chat": {"p95_ms": 6000}},
    "default_p95_ms": 2000,
}

GOOD: dict[str, object] = {
    "version": 1,
    "workload": {"questions": 50},
    "profiles": {
        "baseline": {"p95_ms": 3000, "errors": 0, "answer_cache_hit_rate": 0.0},
        "optimized": {"p95_ms": 1500.5, "errors": 0, "answer_cache_hit_rate": 0.4},
    },
    "ratios": {"p50_ms": 0.41, "db_queries_per_request": 0.3, "ttfb_p50_ms": None},
}

LOADTEST: dict[str, object] = {
    "version": 1,
    "loadtest": {"users": 100, "requests": 1234, "failures": 0, "p95_ms": 80.0, "by_type": {}},
}


def budget() -> Budget:
    return parse_budget(data=copy.deepcopy(BUDGET))


def breaches(checks: list[Check]) -> dict[tuple[str, str, str], Check]:
    return {(c.section, c.figure, c.kind): c for c in checks if not c.ok}


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), "utf-8")
    return path


def test_good_results_pass_every_limit() -> None:
    checks = check_budget(results=GOOD, budget=budget())

    assert all(c.ok for c in checks)
    assert [(c.section, c.figure, c.kind) for c in checks] == [
        ("ratios", "p50_ms", "max"),
        ("ratios", "db_queries_per_request", "max"),
        ("optimized", "p95_ms", "max"),
        ("optimized", "errors", "max"),
        ("optimized", "answer_cache_hit_rate", "max"),
        ("optimized", "answer_cache_hit_rate", "min"),
    ]
    assert checks[0].measured == 0.41
    assert checks[0].limit == 0.8


def test_bad_results_name_every_breach() -> None:
    bad = copy.deepcopy(GOOD)
    bad["ratios"] = {"p50_ms": 0.95, "db_queries_per_request": 0.5}  # at the limit is within
    bad["profiles"]["optimized"].update(  # type: ignore[index]
        {"p95_ms": 9000, "errors": 3, "answer_cache_hit_rate": 0.1}
    )

    found = breaches(check_budget(results=bad, budget=budget()))

    assert set(found) == {
        ("ratios", "p50_ms", "max"),
        ("optimized", "p95_ms", "max"),
        ("optimized", "errors", "max"),
        ("optimized", "answer_cache_hit_rate", "min"),
    }
    assert found["ratios", "p50_ms", "max"].message == "ratios p50_ms: 0.95 is over the max 0.8"
    assert found["optimized", "p95_ms", "max"].measured == 9000
    assert found["optimized", "answer_cache_hit_rate", "min"].message == (
        "optimized answer_cache_hit_rate: 0.1 is under the min 0.2"
    )


def test_a_missing_ratio_is_a_breach_not_measured() -> None:
    only_optimized = copy.deepcopy(GOOD)
    del only_optimized["ratios"]
    only_optimized["profiles"] = {"optimized": GOOD["profiles"]["optimized"]}  # type: ignore[index]

    found = breaches(check_budget(results=only_optimized, budget=budget()))

    assert set(found) == {("ratios", "p50_ms", "max"), ("ratios", "db_queries_per_request", "max")}
    assert all(c.measured is None and "not measured" in c.message for c in found.values())


@pytest.mark.parametrize("figure", ["missing", "null"])
def test_a_missing_or_null_figure_is_a_breach_not_measured(figure: str) -> None:
    results = copy.deepcopy(GOOD)
    optimized = results["profiles"]["optimized"]  # type: ignore[index]
    if figure == "null":
        optimized["errors"] = None
    else:
        del optimized["errors"]

    found = breaches(check_budget(results=results, budget=budget()))

    assert list(found) == [("optimized", "errors", "max")]
    assert "optimized errors: not measured" in found["optimized", "errors", "max"].message


def test_a_profile_that_did_not_run_is_not_measured() -> None:
    data = copy.deepcopy(BUDGET)
    data["baseline"] = {"errors": {"max": 0}}
    results = copy.deepcopy(GOOD)
    del results["profiles"]["baseline"]  # type: ignore[attr-defined]

    found = breaches(check_budget(results=results, budget=parse_budget(data=data)))

    assert found["baseline", "errors", "max"].message == (
        "baseline errors: not measured (profile baseline did not run); max 0"
    )


def test_the_loadtest_section_is_checked_only_when_the_results_have_one() -> None:
    bench_only = check_budget(results=GOOD, budget=budget())
    assert "loadtest" not in {c.section for c in bench_only}

    loadtest_only = check_budget(results=LOADTEST, budget=budget())
    assert {c.section for c in loadtest_only} == {"loadtest"}
    assert all(c.ok for c in loadtest_only)

    failing = copy.deepcopy(LOADTEST)
    failing["loadtest"]["failures"] = 2  # type: ignore[index]
    both = {**GOOD, **failing}
    found = breaches(check_budget(results=both, budget=budget()))
    assert list(found) == [("loadtest", "failures", "max")]
    assert {c.section for c in check_budget(results=both, budget=budget())} == {
        "ratios",
        "optimized",
        "loadtest",
    }


@pytest.mark.parametrize(
    ("results", "error"),
    [
        ({"version": 1, "workload": {}}, "neither"),
        ({"version": 2, "profiles": {}}, "version 2"),
        ({"profiles": []}, "results profiles"),
        ({"profiles": {"optimized": {"errors": "none"}}}, "optimized.errors"),
        ({"profiles": {"optimized": {"errors": True}}}, "optimized.errors"),
        ({"loadtest": {"users": 1}}, None),  # the budget's loadtest figures are simply missing
        ({"version": 1, "loadtest": {}}, None),
    ],
)
def test_unusable_results_are_an_error(results: dict[str, object], error: str | None) -> None:
    if error is None:
        checks = check_budget(results=results, budget=budget())
        assert checks
        assert not any(c.ok for c in checks)
        return
    with pytest.raises(InvalidInput, match=error):
        check_budget(results=results, budget=budget())


def test_no_limit_for_the_results_is_an_error() -> None:
    data = {k: v for k, v in BUDGET.items() if k != "loadtest"}
    with pytest.raises(InvalidInput, match="no limits"):
        check_budget(results=LOADTEST, budget=parse_budget(data=data))


@pytest.mark.parametrize(
    ("section", "error"),
    [
        ({"optimised": {"p50_ms": {"max": 1}}}, "unknown section 'optimised'"),
        ({"ratios": [{"p50_ms": 1}]}, "budget ratios: expected an object"),
        ({"ratios": {"p50": {"max": 1}}}, "unknown figure 'p50'"),
        ({"ratios": {"p50_ms": 0.8}}, "budget ratios.p50_ms: expected"),
        ({"ratios": {"p50_ms": {}}}, "budget ratios.p50_ms: expected"),
        ({"ratios": {"p50_ms": {"maximum": 1}}}, "budget ratios.p50_ms: expected"),
        ({"ratios": {"p50_ms": {"max": "0.8"}}}, r"ratios.p50_ms.max: expected a number"),
        ({"ratios": {"p50_ms": {"max": True}}}, r"ratios.p50_ms.max: expected a number"),
        ({"ratios": {"p50_ms": {"max": float("nan")}}}, r"ratios.p50_ms.max: expected a number"),
        ({"ratios": {"p50_ms": {"min": 2, "max": 1}}}, "min 2 is above max 1"),
    ],
)
def test_a_malformed_budget_is_an_error(
    tmp_path: Path, section: dict[str, object], error: str
) -> None:
    path = write(tmp_path / "budget.json", {**BUDGET, **section})
    with pytest.raises(InvalidInput, match=error) as raised:
        load_budget(path=path)
    assert str(path) in raised.value.message


@pytest.mark.parametrize(("text", "error"), [("{not json", "not valid JSON"), ("[]", "object")])
def test_unreadable_files_are_an_error(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "file.json"
    path.write_text(text, "utf-8")
    with pytest.raises(InvalidInput, match=error):
        load_budget(path=path)
    with pytest.raises(InvalidInput, match=error):
        load_results(path=path)
    with pytest.raises(InvalidInput, match="cannot read"):
        load_results(path=tmp_path / "missing.json")


def posada_budget_check(*args: str, cwd: Path) -> CliResult:
    return run_cli(dict(os.environ), "budget", "check", *args, cwd=cwd)


def test_the_cli_exits_0_on_a_pass_1_on_a_breach_2_on_a_bad_file(tmp_path: Path) -> None:
    write(tmp_path / "performance-budget.json", BUDGET)  # the default --budget, in the cwd
    good = write(tmp_path / "good.json", GOOD)
    bad_results = copy.deepcopy(GOOD)
    bad_results["ratios"] = {"p50_ms": 0.95}
    bad_results["profiles"]["optimized"]["errors"] = 3  # type: ignore[index]
    bad = write(tmp_path / "bad.json", bad_results)
    malformed = write(tmp_path / "malformed.json", {"ratios": {"p50_ms": {"max": "x"}}})

    passed = posada_budget_check(str(good), cwd=tmp_path)
    assert passed.returncode == 0, passed.stderr
    assert "all 6 checks within the budget" in passed.stdout
    assert "db_queries_per_request" in passed.stdout
    assert "BREACH" not in passed.stdout

    failed = posada_budget_check(str(bad), cwd=tmp_path)
    assert failed.returncode == 1, failed.stderr
    lines = [line for line in failed.stdout.splitlines() if line.startswith("BREACH ")]
    assert lines == [
        "BREACH ratios p50_ms: 0.95 is over the max 0.8",
        "BREACH ratios db_queries_per_request: not measured (missing or null in the results); "
        "max 0.5",
        "BREACH optimized errors: 3 is over the max 0",
    ]

    bad_budget = posada_budget_check(str(good), "--budget", str(malformed), cwd=tmp_path)
    assert bad_budget.returncode == 2
    assert "ratios.p50_ms.max: expected a number" in bad_budget.stderr

    (tmp_path / "broken.json").write_text("{", "utf-8")
    bad_file = posada_budget_check(str(tmp_path / "broken.json"), cwd=tmp_path)
    assert bad_file.returncode == 2
    assert "not valid JSON" in bad_file.stderr


def test_the_repository_budget_loads_and_the_watcher_still_reads_its_routes() -> None:
    repo = load_budget(path=REPO_BUDGET)
    assert {"ratios", "optimized", "loadtest"} <= set(repo.sections)

    budgets = load_budgets(Settings(_env_file=None, performance_budget_file=REPO_BUDGET))
    raw = json.loads(REPO_BUDGET.read_text("utf-8"))
    assert budgets.routes == {route: float(spec["p95_ms"]) for route, spec in raw["routes"].items()}
    assert "POST /api/guest/chat" in budgets.routes
    assert budgets.default_ms == float(raw["default_p95_ms"])
