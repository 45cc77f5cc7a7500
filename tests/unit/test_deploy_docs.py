"""The deployment docs name only settings that exist, and their example environment loads.

Every `POSADA_*` name in docs/deploy.md and under docs/deploy/ must be a variable posada
reads: a field of `Settings` (POSADA_<FIELD>) or of one of its groups
(POSADA_<GROUP>_<FIELD>, as `core/groups.py` says). A name ending in `_` or `_*` is a
prefix and must begin one.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from posada.core.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLE = DOCS / "deploy" / "posada.env.example"
UNIT = DOCS / "deploy" / "systemd" / "posada@.service"
_NAME = re.compile(r"POSADA_[A-Z0-9_]*[A-Z0-9](_\*|_)?")
_ASSIGNMENT = re.compile(r"^#?\s*(POSADA_[A-Z0-9_]+)=(.*)$")


def setting_names() -> set[str]:
    """Every POSADA_* variable Settings reads."""
    names = set()
    for name, field in Settings.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names |= {f"POSADA_{name}_{sub}".upper() for sub in model.model_fields}
        else:
            names.add(f"POSADA_{name}".upper())
    return names


def unknown_names(text: str) -> list[str]:
    """The POSADA_* names (and prefixes) in `text` that no setting answers to."""
    known = setting_names()
    unknown = []
    for match in _NAME.finditer(text):
        name = match[0]
        if name.endswith(("_", "_*")):
            prefix = name.rstrip("*")
            if not any(k.startswith(prefix) for k in known):
                unknown.append(name)
        elif name not in known:
            unknown.append(name)
    return sorted(set(unknown))


def deploy_files() -> list[Path]:
    """docs/deploy.md and every text file under docs/deploy/."""
    return [DOCS / "deploy.md", *sorted(p for p in (DOCS / "deploy").rglob("*") if p.is_file())]


def test_every_posada_name_in_the_deploy_docs_is_a_setting() -> None:
    found = {
        path.relative_to(DOCS).as_posix(): unknown_names(path.read_text())
        for path in deploy_files()
    }
    assert {path: names for path, names in found.items() if names} == {}
    assert "deploy/posada.env.example" in found


def test_the_check_catches_a_made_up_name() -> None:
    text = "POSADA_DATABASE_URL, POSADA_LLM_SMALL_*, POSADA_DATABSE_URL and POSADA_NOPE_*"
    assert unknown_names(text) == ["POSADA_DATABSE_URL", "POSADA_NOPE_*"]


def _assignments(*, commented: bool) -> dict[str, str]:
    found = {}
    for line in EXAMPLE.read_text().splitlines():
        match = _ASSIGNMENT.match(line)
        if match and (commented or not line.startswith("#")):
            found[match[1]] = match[2].strip('"')  # as systemd and sh read it
    return found


def _load(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> Settings:
    """Settings as a replica reads them from this environment, and nothing else."""
    for name in [n for n in os.environ if n.startswith("POSADA_")]:
        monkeypatch.delenv(name)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def _filled(values: dict[str, str]) -> dict[str, str]:
    """The example with its two secrets set, as an operator must."""
    return values | {
        "POSADA_JWT_SECRET": secrets.token_urlsafe(48),
        "POSADA_ADMIN_TOKEN": secrets.token_hex(32),
    }


def test_the_example_refuses_to_run_until_its_secrets_are_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValidationError, match="POSADA_JWT_SECRET is still the example's"):
        _load(monkeypatch, _assignments(commented=False))
    example = _assignments(commented=False)
    only_jwt = example | {"POSADA_JWT_SECRET": secrets.token_urlsafe(48)}
    with pytest.raises(ValidationError, match="POSADA_ADMIN_TOKEN is still the example's"):
        _load(monkeypatch, only_jwt)


def test_the_example_environment_loads_as_a_production_replica(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _load(monkeypatch, _filled(_assignments(commented=False)))
    assert settings.env == "prod"
    assert settings.database_pooler == "transaction"
    pooled, direct = settings.database_url, settings.database_direct_url
    assert pooled is not None
    assert ":6432/" in pooled.get_secret_value()
    assert direct is not None
    assert ":5432/" in direct.get_secret_value()
    assert settings.redis_url is not None
    assert settings.trusted_proxies == ["127.0.0.1"]
    assert (settings.llm_small.model, settings.llm_large.model) == ("gpt-4o-mini", "gpt-4o")
    # The commented alternatives are valid too (the Anthropic tier, a budget).
    every = _load(monkeypatch, _filled(_assignments(commented=True)))
    assert every.llm_large.provider == "anthropic"
    assert every.budget.action == "small_only"


def test_the_unit_stops_later_than_the_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    unit = UNIT.read_text()
    grace = _load(monkeypatch, _filled(_assignments(commented=False))).shutdown_grace_s
    stop = re.search(r"^TimeoutStopSec=(\d+)$", unit, re.MULTILINE)
    assert stop is not None
    # The grace, then the runtime's close (each of its steps at most 5 s), then a margin.
    assert int(stop[1]) >= grace + 20
    assert re.search(r"^ExecStart=\S+/posada serve --port %i$", unit, re.MULTILINE)
    assert "EnvironmentFile=/etc/posada/posada.env" in unit
    assert "Environment=POSADA_METRICS_REPLICA=%H-%i" in unit
