"""The profile's steps: posada's own unless a naive switch is set, then the benchmark's."""

from __future__ import annotations

from typing import Any

import pytest

from posada.answers import steps as steps_module
from posada.answers.steps import Steps, naive, steps_for
from posada.core.config import BASELINE, Settings
from posada.core.errors import ConfigurationError
from posada_bench.baseline import BaselineSteps


class _Parts:
    """What `steps_for` reads of a runtime, without a database or a model."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = None
        self.query_embedder = None
        self.chat_models: dict[str, object] = {}


def _runtime(**switches: Any) -> Any:
    return _Parts(Settings(_env_file=None, **switches))


def test_no_switch_means_posadas_own_steps() -> None:
    assert naive(Settings(_env_file=None)) == []
    assert type(steps_for(_runtime())) is Steps


def test_a_naive_switch_brings_the_baselines_steps_once() -> None:
    runtime = _runtime(lookup="sequential")
    assert naive(runtime.settings) == ["lookup"]
    chosen = steps_for(runtime)
    assert isinstance(chosen, BaselineSteps)
    assert steps_for(runtime) is chosen  # picked once per runtime


def test_the_whole_baseline_profile_names_every_switch_it_sets() -> None:
    switched = naive(Settings(_env_file=None, profile="baseline"))
    assert set(switched) == {k for k in BASELINE if k in steps_module.NAIVE_SWITCHES}


def test_without_the_benchmark_a_naive_switch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps_module, "entry_points", lambda group: [])
    with pytest.raises(ConfigurationError, match="embedding_calls"):
        steps_for(_runtime(embedding_calls=3))
