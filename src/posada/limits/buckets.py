"""Leaky buckets with exponential back-off, kept in Redis, PostgreSQL or this process.

A bucket's `level` counts recent attempts and leaks `per_hour` an hour; an attempt is
granted when one more fits under `burst` and, once the level reaches `free`, when the
back-off since the last granted attempt has passed (`backoff_s`, doubling with every
further attempt, at most `backoff_max_s`). So over any period of T hours at most
`burst + per_hour * T` attempts are granted, however they are spread or sent. A granted
attempt may be given back (a login that succeeded): that lowers its own bucket by one
and touches no other.

The three stores run the same arithmetic in one atomic step each: a Lua script in Redis,
one `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` in PostgreSQL, plain code in this
process. `RedisBuckets` falls back to another store while Redis is down.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from psycopg_pool import AsyncConnectionPool

from posada.cache.shared import SharedCache
from posada.db.pool import AsyncConn


@dataclass(frozen=True)
class Limit:
    """How many attempts a key may make, and how fast it earns them back."""

    burst: int
    per_hour: float
    free: int | None = None  # attempts before the back-off starts; None: no back-off
    backoff_s: float = 0.0
    backoff_max_s: float = 0.0

    @property
    def rate_per_s(self) -> float:
        """The leak, per second."""
        return self.per_hour / 3600

    @property
    def first_backoff(self) -> int:
        """The level from which the back-off applies."""
        return self.burst if self.free is None else self.free

    @property
    def ttl_s(self) -> int:
        """How long a bucket must be kept: until it has leaked empty and any back-off ended."""
        return math.ceil(self.burst / self.rate_per_s + self.backoff_max_s) + 1


def backoff_delay(level: float, limit: Limit) -> float:
    """Seconds an attempt must wait after the last one, at this level."""
    # Rounded up: a level that has leaked a little since the last attempt still counts it.
    attempts = math.ceil(level - 1e-9)
    if attempts < limit.first_backoff or limit.backoff_s <= 0:
        return 0.0
    delay: float = limit.backoff_s * 2.0 ** (attempts - limit.first_backoff)
    return min(delay, limit.backoff_max_s)


@dataclass(frozen=True)
class Decision:
    """Granted, or refused with the seconds to wait; `store` is where it was counted."""

    granted: bool
    retry_after_s: int
    store: Buckets


class Buckets(Protocol):
    """Somewhere buckets are counted atomically."""

    async def take(self, key: str, limit: Limit) -> Decision:
        """Count one attempt on `key` if the limit allows it."""
        ...

    async def give_back(self, key: str, limit: Limit) -> None:
        """Return one granted attempt to `key`'s bucket."""
        ...


def _wait(level: float, last: float, now: float, limit: Limit) -> float:
    full = (level + 1 - limit.burst) / limit.rate_per_s
    delay = backoff_delay(level, limit)
    return max(full, last + delay - now if delay > 0 else 0.0)


class LocalBuckets:
    """Buckets in this process only (each process counts its own): chat limits without Redis."""

    def __init__(self, *, max_keys: int = 100_000) -> None:
        self._max_keys = max_keys
        self._state: OrderedDict[str, tuple[float, float, float]] = OrderedDict()

    def _level(self, key: str, limit: Limit, now: float) -> tuple[float, float]:
        level, at, last = self._state.get(key, (0.0, now, 0.0))
        return max(0.0, level - max(0.0, now - at) * limit.rate_per_s), last

    async def take(self, key: str, limit: Limit) -> Decision:
        """Count one attempt on `key` if the limit allows it."""
        now = time.monotonic()
        level, last = self._level(key, limit, now)
        wait = _wait(level, last, now, limit) if key in self._state else 0.0
        if wait > 0:
            return Decision(False, math.ceil(wait), self)
        self._state[key] = (level + 1, now, now)
        self._state.move_to_end(key)
        while len(self._state) > self._max_keys:
            self._state.popitem(last=False)  # the least recently used key
        return Decision(True, 0, self)

    async def give_back(self, key: str, limit: Limit) -> None:
        """Return one granted attempt to `key`'s bucket."""
        if key in self._state:
            now = time.monotonic()
            level, last = self._level(key, limit, now)
            self._state[key] = (max(0.0, level - 1), now, last)


# The bucket's level now, after leaking since it was last written. clock_timestamp(), not
# now(): a statement that waited for the row's lock must see a time after the one that
# held it (now() is when its transaction began, possibly earlier).
_LEVEL = (
    "greatest(0, b.level - %(rate)s::float8"
    " * greatest(0, extract(epoch FROM clock_timestamp() - b.updated_at)::float8))"
)
_DELAY = (
    f"CASE WHEN ceil({_LEVEL} - 1e-9) < %(free)s OR %(base)s::float8 <= 0 THEN 0::float8 ELSE"
    f" least(%(base)s::float8 * power(2, ceil({_LEVEL} - 1e-9) - %(free)s), %(max)s::float8) END"
)
_WAIT = (
    f"greatest(({_LEVEL} + 1 - %(burst)s) / %(rate)s::float8, CASE WHEN {_DELAY} > 0 THEN"
    f" extract(epoch FROM b.last_at - clock_timestamp())::float8 + {_DELAY} ELSE 0 END)"
)
_TAKE = f"""INSERT INTO throttle_buckets AS b (key, level, updated_at, last_at, expires_at)
    VALUES (%(key)s, 1, clock_timestamp(), clock_timestamp(),
            clock_timestamp() + make_interval(secs => %(ttl)s))
    ON CONFLICT (key) DO UPDATE SET
        granted = {_WAIT} <= 0,
        retry_after_s = greatest({_WAIT}, 0),
        level = CASE WHEN {_WAIT} <= 0 THEN {_LEVEL} + 1 ELSE b.level END,
        updated_at = CASE WHEN {_WAIT} <= 0 THEN clock_timestamp() ELSE b.updated_at END,
        last_at = CASE WHEN {_WAIT} <= 0 THEN clock_timestamp() ELSE b.last_at END,
        expires_at = clock_timestamp() + make_interval(secs => %(ttl)s)
    RETURNING granted, retry_after_s"""  # noqa: S608 (constants only)
_GIVE_BACK = f"""UPDATE throttle_buckets AS b
    SET level = greatest(0, {_LEVEL} - 1), updated_at = clock_timestamp()
    WHERE key = %(key)s"""  # noqa: S608 (constants only)


class PostgresBuckets:
    """Buckets in PostgreSQL, one atomic upsert per attempt: shared by every process."""

    def __init__(self, pool: AsyncConnectionPool[AsyncConn], *, sweep_every: int = 1000) -> None:
        self._pool = pool
        self._sweep_every = sweep_every
        self._takes = 0

    @staticmethod
    def _params(key: str, limit: Limit) -> dict[str, object]:
        return {
            "key": key,
            "rate": limit.rate_per_s,
            "free": limit.first_backoff,
            "base": limit.backoff_s,
            "max": limit.backoff_max_s,
            "burst": limit.burst,
            "ttl": limit.ttl_s,
        }

    async def take(self, key: str, limit: Limit) -> Decision:
        """Count one attempt on `key` if the limit allows it."""
        self._takes += 1
        async with self._pool.connection() as conn:
            cur = await conn.execute(_TAKE, self._params(key, limit))
            row = await cur.fetchone()
            if self._takes % self._sweep_every == 0:
                # Buckets nobody used for their whole lifetime are empty: forget them.
                await conn.execute("DELETE FROM throttle_buckets WHERE expires_at < now()")
        assert row is not None
        return Decision(bool(row[0]), 0 if row[0] else max(1, math.ceil(row[1])), self)

    async def give_back(self, key: str, limit: Limit) -> None:
        """Return one granted attempt to `key`'s bucket."""
        async with self._pool.connection() as conn:
            await conn.execute(_GIVE_BACK, self._params(key, limit))


_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local burst, rate, free = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local base, maxd, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local s = redis.call('HMGET', KEYS[1], 'level', 'at', 'last')
local level = tonumber(s[1]) or 0
local at = tonumber(s[2]) or now
local last = tonumber(s[3]) or 0
level = math.max(0, level - math.max(0, now - at) * rate)
if ARGV[7] == 'give' then
  if s[1] then
    redis.call('HSET', KEYS[1], 'level', tostring(math.max(0, level - 1)), 'at', tostring(now))
  end
  return {1, 0}
end
if s[1] then
  local delay = 0
  local attempts = math.ceil(level - 1e-9)
  if attempts >= free and base > 0 then
    delay = math.min(base * 2 ^ (attempts - free), maxd)
  end
  local wait = (level + 1 - burst) / rate
  if delay > 0 then wait = math.max(wait, last + delay - now) end
  if wait > 0 then return {0, math.ceil(wait)} end
end
redis.call('HSET', KEYS[1], 'level', tostring(level + 1), 'at', tostring(now),
           'last', tostring(now))
redis.call('EXPIRE', KEYS[1], ttl)
return {1, 0}
"""


class RedisBuckets:
    """Buckets in Redis (one Lua script per attempt); `fallback` counts while Redis is down."""

    def __init__(self, shared: SharedCache, *, fallback: Buckets) -> None:
        self._shared = shared
        self._fallback = fallback

    @staticmethod
    def _args(limit: Limit, op: str) -> list[str | int | float]:
        return [
            limit.burst,
            repr(limit.rate_per_s),
            limit.first_backoff,
            repr(limit.backoff_s),
            repr(limit.backoff_max_s),
            limit.ttl_s,
            op,
        ]

    async def take(self, key: str, limit: Limit) -> Decision:
        """Count one attempt on `key` if the limit allows it."""
        result = await self._shared.run_script(
            _LUA, keys=[f"bucket:{key}"], args=self._args(limit, "take")
        )
        if result is None:
            # Redis unusable: count in the fallback, never let the attempt through uncounted.
            return await self._fallback.take(key, limit)
        granted, wait = int(result[0]), int(result[1])
        return Decision(granted == 1, 0 if granted == 1 else max(1, wait), self)

    async def give_back(self, key: str, limit: Limit) -> None:
        """Return one granted attempt to `key`'s bucket."""
        await self._shared.run_script(_LUA, keys=[f"bucket:{key}"], args=self._args(limit, "give"))
