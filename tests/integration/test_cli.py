"""The `posada` command, run as a guest-facing operator would, against the session's database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from posada.runtime import Runtime
from tests.support.helpers import run_cli, write_docs

POSADA = [sys.executable, "-m", "posada"]


@pytest.fixture
def env(runtime: Runtime) -> dict[str, str]:
    """The environment of a CLI process pointed at the test database."""
    return {
        **os.environ,
        "POSADA_DATABASE_URL": runtime.database_url,
        "POSADA_JWT_SECRET": "cli-test-secret-0123456789-0123456789",
        "POSADA_DATA_DIR": str(runtime.settings.data_dir),
    }


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`posada ARGS` as its own process, as an operator runs it."""
    return subprocess.run(
        [*POSADA, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_ingest_then_ask_as_json(env: dict[str, str], tmp_path: Path) -> None:
    write_docs(
        tmp_path,
        {
            "faq.md": "# FAQ\n\n## ¿Tienen bicicletas?\nSí, prestamos bicicletas azules gratis.\n",
            "broken.md": "---\ntitle: [x\n---\n# x\n",
        },
    )
    ingested = run(env, "ingest", str(tmp_path), "--tenant", "cli-hotel", "--name", "CLI Hotel")
    assert ingested.returncode == 1, "a broken file makes the exit code say so"
    assert "broken.md:3: invalid YAML" in ingested.stderr
    assert "knowledge version is now 1" in ingested.stderr

    asked = run(env, "ask", "--tenant", "cli-hotel", "--json", "¿Tienen bicicletas?")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["layer"] == "faq"
    assert "bicicletas azules" in answer["answer"]
    assert answer["sources"][0]["source"] == "faq.md"
    assert answer["timings"]["total"] > 0

    again = run_cli(env, "ingest", str(tmp_path / "faq.md"), "--tenant", "cli-hotel")
    assert again.returncode == 0, again.stderr


def test_ask_as_a_unit_guest_and_unknown_names(env: dict[str, str]) -> None:
    asked = run_cli(
        env, "ask", "--tenant", "casa-azul", "--unit", "coral", "--json", "wifi password"
    )
    assert asked.returncode == 0, asked.stderr
    assert "ArrecifeVivo*39" in json.loads(asked.stdout)["answer"]
    unknown = run_cli(env, "ask", "--tenant", "casa-azul", "--unit", "nope", "hola")
    assert unknown.returncode == 1
    assert "unknown unit 'nope'" in unknown.stderr
    no_hotel = run_cli(env, "ask", "--tenant", "nowhere", "hola")
    assert no_hotel.returncode == 1
    assert "unknown hotel 'nowhere'" in no_hotel.stderr


def test_ingest_needs_exactly_one_target(env: dict[str, str], tmp_path: Path) -> None:
    both = run_cli(env, "ingest", str(tmp_path), "--tenant", "x", "--tourism")
    neither = run_cli(env, "ingest", str(tmp_path))
    assert both.returncode == neither.returncode == 2
    assert "exactly one of --tenant SLUG or --tourism" in both.stderr


def test_reservations_import_and_a_bad_file(env: dict[str, str], tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(
        "external_ref,unit,guest_name,phone_last4,check_in,check_out,status\n"
        "CLI-1,Coral,Zoe,2468,2027-01-05,2027-01-09,confirmed\n",
        encoding="utf-8",
    )
    imported = run_cli(env, "reservations", "import", str(good), "--tenant", "casa-azul")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() in ("1 new, 0 updated", "0 new, 1 updated")
    bad = tmp_path / "bad.csv"
    bad.write_text(good.read_text().replace("2468", "24x8"), encoding="utf-8")
    refused = run_cli(env, "reservations", "import", str(bad), "--tenant", "casa-azul")
    assert refused.returncode == 1
    # Rich wraps the message at the terminal's width, wherever the path puts the break.
    assert "line 2: phone_last4 must be exactly four digits" in " ".join(refused.stderr.split())


def test_db_migrate_and_demo_are_idempotent(env: dict[str, str]) -> None:
    migrated = run_cli(env, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.strip() == "database is up to date"
    demo = run_cli(env, "demo")
    assert demo.returncode == 0, demo.stderr
    assert "demo hotel ready" in demo.stdout
