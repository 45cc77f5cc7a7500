"""The simulated upstream, reached over real HTTP through posada's real client code."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from posada.providers.e5 import e5_embedders
from posada.providers.embeddings import OpenAIEmbedder
from posada.providers.llm import ChatMessage, Delta, Finished, OpenAIChatModel, ProviderError
from posada_bench.fake_llm import compose_answer
from tests.support.helpers import serve_fake_llm


@pytest.fixture(scope="module")
def fake_llm() -> Iterator[str]:
    """A fake upstream with a 150 ms time to first token."""
    yield from serve_fake_llm("--ttft-ms", "150", "--tokens-per-s", "200", "--embed-ms", "20")


def test_answer_is_built_from_the_context() -> None:
    messages = [
        {
            "role": "system",
            "content": "Contexto:\nLa piscina abre de 8:00 a 20:00. El gimnasio abre a las 6:00.",
        },
        {"role": "user", "content": "¿A qué hora abre el gimnasio?"},
    ]
    assert compose_answer(messages) == "El gimnasio abre a las 6:00."


async def test_streams_through_the_openai_client_with_usage_and_pace(fake_llm: str) -> None:
    model = OpenAIChatModel(model="small", base_url=fake_llm)
    prompt = [
        ChatMessage("system", "Context: breakfast is served from 7:15 to 10:30."),
        ChatMessage("user", "When is breakfast served?"),
    ]
    started = time.perf_counter()
    first: float | None = None
    text = ""
    finished = None
    async for event in model.stream(prompt, max_tokens=100, request_timeout=10):
        if isinstance(event, Delta):
            first = first or time.perf_counter() - started
            text += event.text
        else:
            finished = event
    assert text == "Context: breakfast is served from 7:15 to 10:30."
    assert isinstance(finished, Finished)
    assert not finished.usage.estimated
    assert finished.usage.output_tokens == len(text.split())
    assert first is not None
    assert first >= 0.15, "the first token waits for the configured TTFT"


async def test_embeddings_are_the_local_models_vectors(fake_llm: str) -> None:
    remote = OpenAIEmbedder(api_key="unused", base_url=fake_llm, dimensions=384)
    texts = ["¿Hay piscina?", "What is the wifi password?"]
    got = await remote.embed_batch(texts)
    _, questions = e5_embedders()  # what `posada fake-llm` serves: the default model's
    local = await questions.embed_batch(texts)
    assert np.allclose(got, local, atol=1e-5)
    short = await OpenAIEmbedder(api_key="unused", base_url=fake_llm, dimensions=128).embed_batch(
        texts
    )
    assert short.shape == (2, 128)
    assert np.allclose(np.linalg.norm(short, axis=1), 1.0, atol=1e-5)


async def test_error_rate_gives_server_errors(failing_llm: str) -> None:
    model = OpenAIChatModel(model="small", base_url=failing_llm)
    with pytest.raises(ProviderError) as caught:
        async for _ in model.stream([ChatMessage("user", "hola")], max_tokens=5, request_timeout=5):
            pass
    assert caught.value.cause == "server"
