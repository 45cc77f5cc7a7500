"""Ending the live streams when the process starts to stop.

uvicorn's graceful shutdown waits for every open response, and a live stream never ends
by itself: one guest page left open held a stopping replica for the whole
`POSADA_SHUTDOWN_GRACE_S`, then was cut with a traceback in the log. On SIGTERM or
SIGINT each live stream now sends a short `retry:` and ends; the page's EventSource
reconnects, through the balancer to a replica still running, and resumes from its
`Last-Event-ID`. Answers being streamed are left to finish within the grace.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Callable
from types import FrameType

# What a live stream sends last: reconnect after one second (the default is browser-chosen).
RECONNECT = b"retry: 1000\n\n"
_SIGNALS = (signal.SIGTERM, signal.SIGINT)
Handler = Callable[[int, FrameType | None], object]


class Draining:
    """Set once this process has been asked to stop."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    @property
    def started(self) -> bool:
        return self._event.is_set()

    def begin(self) -> None:
        """Tell the streams to end (from the event loop's thread)."""
        self._event.set()

    def watch_signals(self) -> Callable[[], None]:
        """Begin on SIGTERM/SIGINT, then run the handler that was there (uvicorn's);
        return the function that puts that handler back."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # signals reach the main thread only: an embedded server
        loop = asyncio.get_running_loop()
        installed: list[tuple[int, Handler, Handler]] = []
        for sig in _SIGNALS:
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue  # nobody handles it (not under uvicorn): leave the default

            def handler(signum: int, frame: FrameType | None, previous: Handler = previous) -> None:
                try:
                    if not loop.is_closed():
                        loop.call_soon_threadsafe(self._event.set)
                finally:
                    previous(signum, frame)  # uvicorn's own handling, whatever happened here

            signal.signal(sig, handler)
            installed.append((sig, handler, previous))

        def put_back() -> None:
            for sig, handler, previous in installed:
                if signal.getsignal(sig) is handler:  # not one installed after ours
                    signal.signal(sig, previous)

        return put_back

    async def until(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """`chunks` until they end or the process starts to stop (then `RECONNECT`).

        Each step of `chunks` runs as a task raced against the stop; a step still running
        when this ends (the client left, or the stop) is cancelled, which ends `chunks`
        inside that step, since a generator cannot be closed while it runs.
        """
        stop = asyncio.ensure_future(self._event.wait())
        step: asyncio.Future[bytes] | None = None
        try:
            while True:
                step = asyncio.ensure_future(anext(chunks))
                await asyncio.wait({step, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    yield RECONNECT
                    return
                done, step = step, None
                try:
                    chunk = done.result()
                except StopAsyncIteration:
                    return
                yield chunk
        finally:
            stop.cancel()
            if step is not None and not step.done():
                step.cancel()
                await asyncio.wait({step})
            else:
                await aclose(chunks)


async def aclose(chunks: AsyncIterator[bytes]) -> None:
    """Close `chunks` if it is a generator (it runs its `finally` blocks now)."""
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()
