"""Stale-while-revalidate for public, slowly changing reads (a hotel's info, its units).

An entry is fresh for `max_age_s`: served as is. Then, for `stale_s` more, it is still
served at once while one background refresh runs (never two for one key). Older than
that, or absent, the caller waits for the load, and concurrent callers share that one
load. Every entry carries an ETag (a hash of its body), so clients can ask again with
`If-None-Match` and get a 304. An ingest drops the tenant's entries (`invalidate`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

Loader = Callable[[], Awaitable[tuple[int, bytes]]]  # -> (tenant id, body)


@dataclass(frozen=True)
class Entry:
    """A cached response body."""

    tenant_id: int
    body: bytes
    etag: str
    fetched: float


class StaleWhileRevalidate:
    """Response bodies by key, refreshed in the background once stale."""

    def __init__(self, *, max_age_s: float, stale_s: float) -> None:
        self.max_age_s = max_age_s
        self.stale_s = stale_s
        self._entries: dict[str, Entry] = {}
        self._loading: dict[str, asyncio.Future[Entry]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}
        self.loads = 0  # how many times a loader ran (tests, metrics)

    async def get(self, key: str, load: Loader) -> tuple[Entry, str]:
        """The entry and how it was served: `fresh`, `stale` or `miss`."""
        entry = self._entries.get(key)
        age = time.monotonic() - entry.fetched if entry else None
        if entry is not None and age is not None and age < self.max_age_s:
            return entry, "fresh"
        if entry is not None and age is not None and age < self.max_age_s + self.stale_s:
            if key not in self._refreshing:
                task = asyncio.create_task(self._refresh(key, load))
                self._refreshing[key] = task
            return entry, "stale"
        return await self._load(key, load), "miss"

    async def _load(self, key: str, load: Loader) -> Entry:
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            self.loads += 1
            tenant_id, body = await load()
            entry = Entry(tenant_id, body, _etag(body), time.monotonic())
            self._entries[key] = entry
            future.set_result(entry)
            return entry
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: waiters get it, nobody else must
            raise
        finally:
            self._loading.pop(key, None)

    async def _refresh(self, key: str, load: Loader) -> None:
        try:
            await self._load(key, load)
        except Exception as exc:  # the stale entry stays; the next request tries again
            log.warning("refreshing %s failed: %s", key, exc)
        finally:
            self._refreshing.pop(key, None)

    def invalidate(self, tenant_id: int | None) -> None:
        """Drop a tenant's entries (None: all)."""
        for key in [k for k, e in self._entries.items() if tenant_id in (None, e.tenant_id)]:
            self._entries.pop(key, None)


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
