"""The shapes every provider shares: vectors, an embedder, and what an embedding call cost.

Kept apart from the implementations so that the embedders, the micro-batcher and the
e5 engine each depend on these and none on another's module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True)
class EmbeddingCall:
    """Texts an embedder turned into vectors: what the usage ledger and counters record."""

    provider: str
    model: str
    texts: Sequence[str]
    tokens: int | None  # the API's reported usage; None: counted later, off the request path
    api: bool  # one call to a paid API
    cached: bool = False


UsageHook = Callable[[EmbeddingCall], None]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors of `dimensions` floats."""

    provider: str
    model: str
    dimensions: int
    on_usage: UsageHook | None  # told of every batch embedded (counters, usage ledger)

    async def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """One row per text, L2-normalised."""
        ...
