"""Milliseconds per stage of one answer, as they are stored with it and sent to metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from posada.core import context as observe


class StageTimer:
    """Milliseconds per pipeline stage, in the order they first ran; also the request's."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._started = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as (part of) stage `name`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            ms = (time.perf_counter() - start) * 1000
            self.timings[name] = round(self.timings.get(name, 0.0) + ms, 3)
            observe.add_stage(name, ms)

    def finish(self) -> dict[str, float]:
        """The stages and their total."""
        self.timings["total"] = round((time.perf_counter() - self._started) * 1000, 3)
        return self.timings
