"""Embedding providers: the real local model; the OpenAI client through an injected transport."""

from __future__ import annotations

import asyncio
import json

import httpx2
import numpy as np
import pytest

from posada.providers.embeddings import Embedder, LocalEmbedder, OpenAIEmbedder
from posada.runtime import Runtime


async def test_local_model_gives_normalised_384_vectors(runtime: Runtime) -> None:
    embedder = runtime.embedder
    assert isinstance(embedder, LocalEmbedder)
    assert isinstance(embedder, Embedder)
    vectors = await embedder.embed_batch(["What is the wifi password?", "¿Hay piscina?"])
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    paraphrase, unrelated = await embedder.embed_batch(["wifi password please", "sunset cruise"])
    assert float(vectors[0] @ paraphrase) > float(vectors[0] @ unrelated)
    assert (await embedder.embed_batch([])).shape == (0, 384)


async def test_embedding_does_not_block_the_event_loop(runtime: Runtime) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await runtime.embedder.embed_batch(["a long text about the hotel pool " * 20] * 64)
    during = ticks - before
    task.cancel()
    # Were the model run on the loop, the ticker could not have run while it worked.
    assert during > 5


def _fake_openai(seen: list[dict[str, object]], dims: int) -> httpx2.AsyncClient:
    def handle(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        seen.append({"path": request.url.path, "auth": request.headers["authorization"], **body})
        rows = [
            {
                "object": "embedding",
                "index": i,
                "embedding": [3.0 if j == i else 0.0 for j in range(dims)],
            }
            for i in range(len(body["input"]))
        ][::-1]  # out of order, as the API allows
        return httpx2.Response(
            200,
            json={
                "object": "list",
                "data": rows,
                "model": body["model"],
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            },
        )

    return httpx2.AsyncClient(transport=httpx2.MockTransport(handle))


async def test_openai_embedder_sends_model_and_dimensions() -> None:
    seen: list[dict[str, object]] = []
    embedder = OpenAIEmbedder(
        api_key="sk-test",
        model="text-embedding-3-small",
        dimensions=256,
        base_url="http://embeddings.test/v1",
        http_client=_fake_openai(seen, 256),
    )
    vectors = await embedder.embed_batch(["hola", "hello"])
    assert len(seen) == 1, "one API call for the batch"
    assert seen[0]["path"] == "/v1/embeddings"
    assert seen[0]["auth"] == "Bearer sk-test"
    assert seen[0]["model"] == "text-embedding-3-small"
    assert seen[0]["dimensions"] == 256
    assert seen[0]["input"] == ["hola", "hello"]
    assert vectors.shape == (2, 256)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert (vectors[0][0], vectors[1][1]) == (1.0, 1.0), "rows are put back in input order"


async def test_openai_embedder_rejects_a_wrong_shape() -> None:
    seen: list[dict[str, object]] = []
    embedder = OpenAIEmbedder(
        api_key="sk-test",
        dimensions=16,
        base_url="http://embeddings.test/v1",
        http_client=_fake_openai(seen, 8),
    )
    # The endpoint ignores `dimensions` and answers with 8: that must not slip through.
    with pytest.raises(ValueError, match="shape"):
        await embedder.embed_batch(["hola"])
