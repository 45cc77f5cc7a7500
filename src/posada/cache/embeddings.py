"""The embedding cache: a question embedded once is not embedded again, in any replica.

`CachingEmbedder` wraps any embedder: an in-process LRU (default 500 vectors) in front of
Redis (shared by the replicas, with a TTL), keyed by what makes the vector: the provider,
the model, its size and its role (multilingual-e5-small embeds a question and a document
differently), so that a switch of model never serves another model's vector; and the text
with spacing normalised, and case too for an uncased model (all-MiniLM-L6-v2: the vector is
the same; e5 keeps case, an embedder that says `cased`). Vectors served from a cache are
reported to the usage hook as `cached`, so the request's counters and the usage ledger say
which were computed and which were not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from cachetools import LRUCache

from posada.cache.shared import SharedCache
from posada.providers.types import Embedder, EmbeddingCall, UsageHook, Vectors


def embedder_name(embedder: Embedder) -> str:
    """What tells one embedder's vectors from another's: provider, model, size, role."""
    role = getattr(embedder, "role", None)
    name = f"{embedder.provider}/{embedder.model}/{embedder.dimensions}"
    return f"{name}/{role}" if role else name


def embedding_key(name: str, text: str, *, cased: bool = False) -> str:
    """The shared cache's key for a text's vector from the embedder called `name`."""
    normalised = " ".join((text if cased else text.lower()).split())
    digest = hashlib.sha256(normalised.encode()).hexdigest()[:40]
    return f"emb:{name}:{digest}"


class CachingEmbedder:
    """An embedder with an LRU and Redis in front; the wrapped one computes what they miss."""

    def __init__(
        self, inner: Embedder, shared: SharedCache, *, size: int = 500, ttl_s: int = 7 * 86400
    ) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.model = inner.model
        self.dimensions = inner.dimensions
        self._name = embedder_name(inner)
        self._cased = bool(getattr(inner, "cased", False))
        self._shared = shared
        self._ttl_s = ttl_s
        self._lru: LRUCache[str, Vectors] = LRUCache(maxsize=size)

    @property
    def on_usage(self) -> UsageHook | None:
        """The usage hook, shared with the wrapped embedder."""
        return self.inner.on_usage

    @on_usage.setter
    def on_usage(self, hook: UsageHook | None) -> None:
        self.inner.on_usage = hook

    def __len__(self) -> int:
        return len(self._lru)

    async def embed_batch(self, texts: Sequence[str]) -> Vectors:
        """Vectors from the LRU, then Redis (one round trip), then the model for the rest."""
        return (await self._embed(texts))[0]

    async def warm(self, texts: Sequence[str]) -> int:
        """Bring these texts' vectors into the caches; how many had to be computed."""
        return (await self._embed(texts))[1]

    async def _embed(self, texts: Sequence[str]) -> tuple[Vectors, int]:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32), 0
        keys = [embedding_key(self._name, t, cased=self._cased) for t in texts]
        found: dict[int, Vectors] = {}
        for i, key in enumerate(keys):
            vector = self._lru.get(key)
            if vector is not None:
                found[i] = vector
        asked = [i for i in range(len(texts)) if i not in found]
        if asked:
            shared = await self._shared.get_many([keys[i] for i in asked])
            for i, raw in zip(asked, shared, strict=True):
                if raw is not None and len(raw) == self.dimensions * 4:
                    vector = np.frombuffer(raw, dtype=np.float32).copy()
                    found[i] = self._lru.setdefault(keys[i], vector)
        hits = [texts[i] for i in sorted(found)]
        if hits and self.on_usage is not None:
            self.on_usage(EmbeddingCall(self.provider, self.model, hits, 0, api=False, cached=True))
        missing = [i for i in range(len(texts)) if i not in found]
        if missing:
            computed = await self.inner.embed_batch([texts[i] for i in missing])
            fresh = []
            for i, vector in zip(missing, computed, strict=True):
                found[i] = vector
                self._lru[keys[i]] = vector
                fresh.append((keys[i], vector.astype(np.float32).tobytes()))
            await self._shared.set_many(fresh, ttl_s=self._ttl_s)
        vectors = np.stack([found[i] for i in range(len(texts))]).astype(np.float32)
        return vectors, len(missing)
