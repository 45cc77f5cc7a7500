"""`posada loadtest`: a short real Locust run, and its percentiles checked against raw times."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from posada.cli import app
from posada_bench.loadtest import parse_duration, summarize
from posada_bench.report import percentile

LOGIN = "POST /api/guest/login"
CHAT = "POST /api/guest/chat"
STREAM = "POST /api/guest/chat/stream"
HISTORY = ("GET /api/guest/conversations", "GET /api/guest/conversations/{id}")


def test_percentiles_come_from_raw_times_not_buckets() -> None:
    records = [{"name": CHAT, "ms": float(ms), "ok": True, "error": None} for ms in range(1, 101)]
    # Locust's buckets would turn 147 into 150 and 3432 into 3400.
    records += [
        {"name": LOGIN, "ms": 147.0, "ok": True, "error": None},
        {"name": LOGIN, "ms": 3432.0, "ok": False, "error": "503: busy"},
        {"name": LOGIN, "ms": 1234.5, "ok": True, "error": None},
    ]

    figures = summarize(records)

    chat, login = figures["by_type"][CHAT], figures["by_type"][LOGIN]
    assert (chat["requests"], chat["failures"]) == (100, 0)
    assert (chat["p50_ms"], chat["p95_ms"], chat["p99_ms"]) == (50.0, 95.0, 99.0)
    assert (login["requests"], login["failures"], login["error_samples"]) == (3, 1, ["503: busy"])
    assert (login["p50_ms"], login["p95_ms"], login["p99_ms"]) == (1234.5, 3432.0, 3432.0)
    assert (figures["requests"], figures["failures"]) == (103, 1)
    assert figures["p99_ms"] == 1234.5  # rank 102 of 103: the 99th is not the 98th


def test_durations_read_as_seconds() -> None:
    assert [parse_duration(t) for t in ("60", "60s", "2m", "1.5s", "1h")] == [60, 60, 120, 2, 3600]


@pytest.mark.parametrize(
    "host",
    ["http://example.com", "http://10.1.2.3:8000", "http://localhost.example.com", "ftp://[::1]"],
)
def test_a_host_off_loopback_is_refused(host: str) -> None:
    result = CliRunner().invoke(app, ["loadtest", "--host", host])

    assert result.exit_code == 2
    assert "loopback" in result.output


def test_a_short_run_answers_every_kind_of_request(tmp_path: Path) -> None:
    # 10 users for 10 s pick about 40 tasks: history (1 in 6) is then all but sure to come up.
    results_file = tmp_path / "loadtest.json"
    args = ["--users", "10", "--spawn-rate", "10", "--duration", "10s"]
    args += ["--json", str(results_file), "--data-dir", str(tmp_path / "run")]
    run = subprocess.run(
        [sys.executable, "-m", "posada", "loadtest", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    figures = json.loads(results_file.read_text("utf-8"))["loadtest"]
    by_type = figures["by_type"]
    assert {LOGIN, CHAT, STREAM, *HISTORY} <= set(by_type)
    assert figures["failures"] == 0
    assert by_type[LOGIN]["requests"] == 10
    assert figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
    assert Path(f"{figures['csv']}_stats.csv").exists()
    raw = json.loads(Path(figures["raw"]).read_text("utf-8"))["requests"]
    assert figures["requests"] == len(raw)
    for name, row in by_type.items():
        times = [r["ms"] for r in raw if r["name"] == name]
        for pct in (50, 95, 99):
            assert row[f"p{pct}_ms"] == percentile(times, pct)
    assert "POST chat/stream" in run.stdout
