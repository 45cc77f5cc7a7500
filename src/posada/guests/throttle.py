"""Failed-login throttling: four phone digits are guessable, so guessing must be slow.

Counts live in this process; with several replicas each counts its own share (shared
counts through Redis come with the cache work).
"""

from __future__ import annotations

import time
from collections import deque

from posada.errors import TooManyAttempts


class LoginThrottle:
    """At most `max_failures` failed logins per key within `window_s` seconds."""

    def __init__(self, *, max_failures: int, window_s: float, max_keys: int = 100_000) -> None:
        self._max = max_failures
        self._window = window_s
        self._max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and now - times[0] > self._window:
            times.popleft()
        return times

    def check(self, key: str) -> None:
        """Raise TooManyAttempts while `key` is over its limit."""
        if len(self._recent(key, time.monotonic())) >= self._max:
            raise TooManyAttempts("too many failed attempts; try again in a few minutes")

    def failed(self, key: str) -> None:
        """Count one failure for `key`."""
        now = time.monotonic()
        if key not in self._failures and len(self._failures) >= self._max_keys:
            self._failures.pop(next(iter(self._failures)))  # forget the oldest key
        times = self._recent(key, now)
        times.append(now)
        self._failures[key] = times

    def succeeded(self, key: str) -> None:
        """Forget `key`'s failures."""
        self._failures.pop(key, None)
