"""`posada bench` end to end, and the budget failing a deliberately slowed build.

The normal short benchmark and its budget check run in `make test` itself (target
`bench-ci`), where their figures show in the CI log; this test runs a smaller one with a
delay added to the optimized profile's generate stage, and expects the budget to fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.helpers import run_cli

REPO = Path(__file__).resolve().parents[2]


def test_a_slowed_build_fails_the_budget(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    # Every answered question stores something, cache hit or not: the delay reaches all.
    env = {**os.environ, "POSADA_STAGE_DELAY_MS": '{"store": 3000}'}
    bench = subprocess.run(
        [
            *(sys.executable, "-m", "posada", "bench", "--profile", "both", "--guests", "2"),
            *("--duration", "6", "--hotels", "0", "--data-dir", str(tmp_path / "run")),
            *("--json", str(results)),
            # The tests never read ../shared/corpus: no real hotels, no fresh rewordings.
            *("--corpus", str(tmp_path / "no-corpus")),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert bench.returncode == 0, bench.stderr[-3000:]
    figures = json.loads(results.read_text())
    baseline, optimized = figures["profiles"]["baseline"], figures["profiles"]["optimized"]
    assert baseline["errors"] == optimized["errors"] == 0, figures
    # The baseline's switches, as the server counted them.
    assert baseline["embeddings_per_question"] == 3
    assert baseline["db_queries_per_request"] >= 11
    assert baseline["llm_calls_per_question"] >= 2
    assert optimized["embeddings_per_question"] <= 1
    # The delay shows where the budget looks: the optimized profile is now the slower one.
    assert optimized["p50_ms"] > 3000
    assert figures["ratios"]["p50_ms"] > 1

    check = run_cli(dict(os.environ), "budget", "check", str(results), cwd=REPO)
    assert check.returncode == 1, check.stdout
    assert "BREACH ratios p50_ms" in check.stdout
    assert "BREACH optimized p50_ms" in check.stdout
