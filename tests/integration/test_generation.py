"""Fallbacks across models, against the simulated upstream over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from posada.answers.generation import Answering, Exhausted, Generated, GenerationEvent, generate
from posada.core.config import Settings
from posada.providers.llm import ChatMessage, ChatModel, Delta, OpenAIChatModel, prompt_tokens
from posada.providers.registry import build_chat_models, fallback_order
from posada_bench.servers import free_port
from tests.support.helpers import serve_fake_llm

PROMPT = [
    ChatMessage("system", "Context: the pool is open from 8:00 to 20:00."),
    ChatMessage("user", "When is the pool open?"),
]


@pytest.fixture(scope="module")
def slow() -> Iterator[str]:
    """A fake upstream that takes 5 s to its first token."""
    yield from serve_fake_llm("--ttft-ms", "5000")


async def _run(models: list[ChatModel], total: float = 10.0) -> list[GenerationEvent]:
    return [
        event
        async for event in generate(
            models, PROMPT, max_tokens=50, request_timeout=10, total_timeout=total
        )
    ]


def _model(base_url: str, name: str) -> ChatModel:
    return OpenAIChatModel(model=name, base_url=base_url)


async def test_the_first_healthy_model_answers(failing_llm: str, quick_llm: str) -> None:
    events = await _run([_model(failing_llm, "broken"), _model(quick_llm, "good")])
    assert isinstance(events[0], Answering)
    assert events[0].model.model == "good"
    text = "".join(e.text for e in events if isinstance(e, Delta))
    assert "8:00 to 20:00" in text
    assert isinstance(events[-1], Generated)
    assert events[-1].model.model == "good"
    assert not events[-1].incomplete


@pytest.fixture(scope="module")
def dropping() -> Iterator[str]:
    """A fake upstream whose streamed answers break off after three tokens."""
    yield from serve_fake_llm(
        "--ttft-ms", "0", "--tokens-per-s", "1000", "--fail-after-tokens", "3"
    )


async def test_a_model_failing_mid_answer_ends_it_incomplete_without_a_second_answer(
    dropping: str, quick_llm: str, caplog: pytest.LogCaptureFixture
) -> None:
    events = await _run([_model(dropping, "flaky"), _model(quick_llm, "good")])
    assert [type(e) for e in events] == [Answering, Delta, Delta, Delta, Generated]
    assert isinstance(events[0], Answering)
    assert events[0].model.model == "flaky"
    final = events[-1]
    assert isinstance(final, Generated)
    assert final.model.model == "flaky"
    # Part of an answer was shown: starting another would contradict it; it stops there.
    assert final.incomplete
    assert final.usage.estimated
    # The model read the whole prompt before it broke off: its input is counted too.
    assert final.usage.input_tokens == prompt_tokens(PROMPT) > 0
    assert any("flaky" in r.getMessage() and "connection" in r.getMessage() for r in caplog.records)


async def test_all_failing_models_end_in_exhausted(failing_llm: str) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}/v1"
    events = await _run([_model(failing_llm, "broken"), _model(unreachable, "gone")])
    assert len(events) == 1
    assert isinstance(events[0], Exhausted)
    assert events[0].failures == ["openai/broken: server", "openai/gone: connection"]


async def test_the_time_cap_bounds_a_slow_model(slow: str, quick_llm: str) -> None:
    started = time.perf_counter()
    events = await _run([_model(slow, "slow"), _model(quick_llm, "good")], total=0.5)
    assert isinstance(events[-1], Exhausted)
    assert events[-1].failures[0] == "openai/slow: time cap"
    assert time.perf_counter() - started < 4, "the guest is not kept waiting for the slow one"


def test_tiers_come_from_one_shared_endpoint_or_their_own() -> None:
    none = Settings(_env_file=None)
    assert build_chat_models(none) == {}
    shared = Settings(
        _env_file=None,
        llm_base_url="http://llm.test/v1",
        llm_api_key=SecretStr("k"),
        llm_large_model="big",
    )
    models = build_chat_models(shared)
    assert (models["small"].model, models["large"].model) == ("gpt-4o-mini", "big")
    assert [m.model for m in fallback_order(models, "small")] == ["gpt-4o-mini", "big"]
    assert [m.model for m in fallback_order(models, "large")] == ["big", "gpt-4o-mini"]
    only_large = Settings(
        _env_file=None,
        llm_large_provider="anthropic",
        llm_large_api_key=SecretStr("sk-ant"),
        llm_large_model="claude-x",
    )
    models = build_chat_models(only_large)
    assert list(models) == ["large"]
    assert models["large"].provider == "anthropic"
    assert [m.model for m in fallback_order(models, "small")] == ["claude-x"]


async def test_a_slow_reader_is_not_cut_off_by_the_time_cap(quick_llm: str) -> None:
    """The cap bounds waiting on models, not the time the caller spends on each event."""
    import asyncio

    events = []
    async for event in generate(
        [_model(quick_llm, "good")], PROMPT, max_tokens=50, request_timeout=10, total_timeout=0.5
    ):
        events.append(event)
        await asyncio.sleep(0.1)  # a guest on a slow connection
    assert isinstance(events[-1], Generated)
    assert not events[-1].incomplete
    assert len(events) > 6
