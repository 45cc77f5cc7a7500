"""Dynamic micro-batching: questions embedded at the same time share one model call.

On 2 cores, all-MiniLM-L6-v2 embedded one short question in 10.4 ms and a batch of 40 in
105.7 ms (bench/foundation.py, 2026-11-25): a batch is far cheaper per text than the same
texts one by one. `MicroBatcher`
queues concurrent requests; its worker waits at most `max_wait_s` after the first one for
others to join (and never while a batch is already running, since those that arrive
meanwhile join the next), then runs one call for up to `max_texts` texts on the model's
thread and hands each caller its rows. A caller that gives up (a guest who left) is
skipped; an error of the model reaches every caller of that batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from posada.providers.types import Vectors


@dataclass
class _Request:
    texts: list[str]
    future: asyncio.Future[Vectors]


class MicroBatcher:
    """Coalesces concurrent `embed` calls into batched calls of `encode` on `executor`."""

    def __init__(
        self,
        encode: Callable[[list[str]], Vectors],
        executor: Executor,
        *,
        max_wait_s: float = 0.002,
        max_texts: int = 64,
    ) -> None:
        self._encode = encode
        self._executor = executor
        self._max_wait_s = max_wait_s
        self.max_texts = max_texts
        self._queue: list[_Request] = []
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0  # model calls made, for the benchmark

    async def embed(self, texts: list[str]) -> Vectors:
        """The rows for `texts`, computed in a batch with whatever else is asked meanwhile."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (a CLI run, a test): start afresh
            self._loop, self._queue, self._worker = loop, [], None
        request = _Request(texts, loop.create_future())
        self._queue.append(request)
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._run(), name="posada-embed-batcher")
        return await request.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            if self._max_wait_s > 0 and sum(len(r.texts) for r in self._queue) < self.max_texts:
                await asyncio.sleep(self._max_wait_s)
            batch: list[_Request] = []
            count = 0
            while self._queue and (
                not batch or count + len(self._queue[0].texts) <= self.max_texts
            ):
                request = self._queue.pop(0)
                if request.future.done():  # its caller gave up
                    continue
                batch.append(request)
                count += len(request.texts)
            if not batch:
                continue
            texts = [t for r in batch for t in r.texts]
            try:
                vectors = await loop.run_in_executor(self._executor, self._encode, texts)
            except Exception as exc:
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)
                continue
            self.batches += 1
            start = 0
            for request in batch:
                rows = np.asarray(vectors[start : start + len(request.texts)], dtype=np.float32)
                start += len(request.texts)
                if not request.future.done():
                    request.future.set_result(rows)
