"""Unit tests run without the database and the model: reaching for either fails the test."""

from __future__ import annotations

from typing import Any

import pytest

from posada.db import pool
from posada.providers import e5, embeddings
from posada.runtime import Runtime


def _refuse(what: str) -> Any:
    def refuse(*_args: object, **_kwargs: object) -> Any:
        raise AssertionError(f"a unit test reached for {what}: it belongs in tests/integration")

    return refuse


@pytest.fixture(autouse=True)
def _no_database_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Runtime, "open", _refuse("the runtime"))
    # Where it is looked up (db.pool imports it by name), not where it is defined.
    monkeypatch.setattr(pool, "start_embedded", _refuse("the embedded PostgreSQL"))
    monkeypatch.setattr(e5.E5Engine, "load", _refuse("the e5 model"))
    monkeypatch.setattr(embeddings, "_load_sentence_transformer", _refuse("the MiniLM model"))
