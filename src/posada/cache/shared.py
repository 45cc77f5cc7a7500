"""Redis, shared by every replica, and never a reason for a request to fail.

`SharedCache` wraps redis-py's asyncio client. Every operation has a short timeout; a
failure (Redis down, slow, refusing) is logged once, counted in the running request's
figures (and so in `/metrics`), and answered as a miss. For `retry_after_s` after a
failure posada does not even try; then it tries again, and says so once when Redis is
back. Without `POSADA_REDIS_URL` it is a cache that always misses, and the in-process
caches in front of it do all the work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from posada.core import context as observe

log = logging.getLogger(__name__)


class SharedCache:
    """Bytes by key in Redis, with a timeout on everything and a pause after a failure."""

    def __init__(
        self,
        url: str | None,
        *,
        prefix: str = "posada",
        timeout_s: float = 0.1,
        retry_after_s: float = 5.0,
    ) -> None:
        # Every key gets the prefix: deployments (or test runs) sharing a Redis never meet.
        self._prefix = f"{prefix}:"
        self._client = None
        if url is not None:
            from redis.asyncio import Redis

            self._client = Redis.from_url(
                url,
                socket_timeout=timeout_s,
                socket_connect_timeout=timeout_s,
                retry_on_timeout=False,
                health_check_interval=0,
            )
        self._retry_after_s = retry_after_s
        self._scripts: dict[str, Any] = {}
        self._down_until = 0.0
        self._down = False
        self.failures = 0

    @property
    def configured(self) -> bool:
        """Whether a Redis URL was given."""
        return self._client is not None

    @property
    def available(self) -> bool:
        """Whether posada is using Redis now (configured, and not pausing after a failure)."""
        return self._client is not None and time.monotonic() >= self._down_until

    def _failed(self, operation: str, exc: Exception) -> None:
        self.failures += 1
        observe.record_redis_error()
        self._down_until = time.monotonic() + self._retry_after_s
        if not self._down:
            self._down = True
            log.warning(
                "Redis unavailable (%s: %s); going on with in-process caches, retry in %.0f s",
                operation,
                exc,
                self._retry_after_s,
            )

    def _worked(self) -> None:
        if self._down:
            self._down = False
            log.warning("Redis is back; shared caches in use again")

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of `keys` in one round trip; all None when Redis is not usable."""
        if not keys or self._client is None or not self.available:
            return [None] * len(keys)
        try:
            values: list[Any] = await self._client.mget([self._prefix + k for k in keys])
        except Exception as exc:  # any failure of Redis is a miss, never an error
            self._failed("MGET", exc)
            return [None] * len(keys)
        self._worked()
        return [v if isinstance(v, bytes) else None for v in values]

    async def get(self, key: str) -> bytes | None:
        """One value, or None."""
        return (await self.get_many([key]))[0]

    async def set(self, key: str, value: bytes, *, ttl_s: int) -> bool:
        """Store a value for `ttl_s` seconds; False when Redis is not usable."""
        if self._client is None or not self.available:
            return False
        try:
            await self._client.set(self._prefix + key, value, ex=ttl_s)
        except Exception as exc:
            self._failed("SET", exc)
            return False
        self._worked()
        return True

    async def set_many(self, items: Sequence[tuple[str, bytes]], *, ttl_s: int) -> bool:
        """Store several values in one round trip (a pipeline)."""
        if not items or self._client is None or not self.available:
            return False
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, value in items:
                    pipe.set(self._prefix + key, value, ex=ttl_s)
                await pipe.execute()
        except Exception as exc:
            self._failed("SET", exc)
            return False
        self._worked()
        return True

    async def run_script(
        self, script: str, *, keys: Sequence[str], args: Sequence[str | int | float]
    ) -> Any | None:
        """Run a Lua script on prefixed `keys`; None when Redis is unusable (callers fall back)."""
        if self._client is None or not self.available:
            return None
        registered = self._scripts.get(script)
        if registered is None:
            registered = self._scripts[script] = self._client.register_script(script)
        try:
            result = await registered(keys=[self._prefix + k for k in keys], args=list(args))
        except Exception as exc:
            self._failed("EVALSHA", exc)
            return None
        self._worked()
        return result

    async def clear(self) -> int:
        """Delete every key under this prefix (the benchmark's fresh start); how many."""
        if self._client is None or not self.available:
            return 0
        deleted = 0
        try:
            async for key in self._client.scan_iter(match=f"{self._prefix}*", count=500):
                deleted += int(await self._client.delete(key))
        except Exception as exc:
            self._failed("SCAN", exc)
        return deleted

    async def close(self) -> None:
        """Close the connections."""
        if self._client is not None:
            try:
                await self._client.aclose()
            except Exception as exc:  # closing a dead connection must not fail a shutdown
                log.debug("closing Redis: %s", exc)
