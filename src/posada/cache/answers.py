"""The exact answer cache: the same question, asked again, answered without any work.

Keyed by tenant, knowledge version, scope and the normalised question (case, accents,
punctuation and spacing folded). The scope is `h` (any guest of the tenant) or `u<unit>`
(an answer that drew on that unit's private documents: only guests of that unit reach
it). An in-process LRU sits in front of Redis (shared by the replicas, with a TTL); a
lookup tries the guest's unit scope and the hotel scope in one Redis round trip. The
knowledge version in the key makes every entry of an older version unreachable the moment
an ingest is known (`cache.versions`), and the LRU drops them then.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from cachetools import LRUCache

from posada.cache.shared import SharedCache
from posada.core.text import fold


def normalize_question(text: str) -> str:
    """The exact cache's view: "¿A qué hora es el Check-Out?" is "a que hora es el check out"."""
    return " ".join(fold(text).replace("-", " ").split())


@dataclass(frozen=True)
class CachedAnswer:
    """An answer kept for reuse."""

    text: str
    origin: str  # the layer that first made it: llm, extractive, faq
    model: str | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)

    def encode(self) -> bytes:
        """JSON bytes for Redis."""
        return json.dumps(asdict(self), ensure_ascii=False).encode()

    @classmethod
    def decode(cls, raw: bytes) -> CachedAnswer | None:
        """From Redis; None for anything unreadable (an entry of another version of posada)."""
        try:
            data = json.loads(raw)
            return cls(str(data["text"]), str(data["origin"]), data.get("model"),
                       list(data.get("sources") or []))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None


def answer_key(*, tenant_id: int, version: int, unit_id: int | None, normalized: str) -> str:
    """The key of one entry; `unit_id` None for an answer any guest of the tenant may get."""
    scope = f"u{unit_id}" if unit_id is not None else "h"
    digest = hashlib.sha256(normalized.encode()).hexdigest()[:40]
    return f"answer:{tenant_id}:{version}:{scope}:{digest}"


class ExactCache:
    """LRU in front of Redis, for answers keyed by tenant, version, scope and question."""

    def __init__(self, shared: SharedCache, *, size: int = 2000, ttl_s: int = 86400) -> None:
        self._shared = shared
        self._ttl_s = ttl_s
        self._lru: LRUCache[str, CachedAnswer] = LRUCache(maxsize=size)

    def __len__(self) -> int:
        return len(self._lru)

    async def get(
        self, *, tenant_id: int, version: int, unit_id: int | None, normalized: str
    ) -> CachedAnswer | None:
        """The guest's unit's entry, else the hotel's; from the LRU, else Redis."""
        scopes = [unit_id, None] if unit_id is not None else [None]
        keys = [
            answer_key(tenant_id=tenant_id, version=version, unit_id=scope, normalized=normalized)
            for scope in scopes
        ]
        for key in keys:
            found = self._lru.get(key)
            if found is not None:
                return found
        for key, raw in zip(keys, await self._shared.get_many(keys), strict=True):
            entry = CachedAnswer.decode(raw) if raw is not None else None
            if entry is not None:
                self._lru[key] = entry
                return entry
        return None

    async def put(
        self,
        *,
        tenant_id: int,
        version: int,
        unit_id: int | None,
        normalized: str,
        answer: CachedAnswer,
    ) -> None:
        """Keep an answer in the LRU and Redis."""
        key = answer_key(
            tenant_id=tenant_id, version=version, unit_id=unit_id, normalized=normalized
        )
        self._lru[key] = answer
        await self._shared.set(key, answer.encode(), ttl_s=self._ttl_s)

    def forget(self, tenant_id: int | None) -> None:
        """Drop a tenant's entries from the LRU (None: all); in Redis they expire on their own."""
        if tenant_id is None:
            self._lru.clear()
            return
        prefix = f"answer:{tenant_id}:"
        for key in [k for k in self._lru if k.startswith(prefix)]:
            self._lru.pop(key, None)
