"""Ending live streams on shutdown (`posada.api.draining`): however a stream ends, the
events generator under it is closed, so its subscription and its `finally` run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from posada.api.draining import RECONNECT, Draining


class Source:
    """A live stream's events: one chunk, then it waits (as a quiet stream does)."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.waiting = asyncio.Event()

    async def events(self) -> AsyncIterator[bytes]:
        try:
            yield b"first"
            self.waiting.set()
            await asyncio.sleep(3600)
            yield b"never"
        finally:
            self.closed.set()


async def _read(stream: AsyncIterator[bytes], into: list[bytes]) -> None:
    async for chunk in stream:
        into.append(chunk)


async def test_the_stop_sends_the_reconnect_hint_and_closes_the_events() -> None:
    draining, source = Draining(), Source()
    got: list[bytes] = []
    reader = asyncio.create_task(_read(draining.until(source.events()), got))
    await source.waiting.wait()
    draining.begin()
    await asyncio.wait_for(reader, timeout=5)
    assert got == [b"first", RECONNECT]
    assert source.closed.is_set()


async def test_a_client_leaving_mid_wait_closes_the_events_without_an_error() -> None:
    draining, source = Draining(), Source()
    got: list[bytes] = []
    reader = asyncio.create_task(_read(draining.until(source.events()), got))
    await source.waiting.wait()
    reader.cancel()  # what the server does when the client goes
    done, _ = await asyncio.wait({reader}, timeout=5)
    assert done == {reader}
    assert reader.cancelled()  # not a RuntimeError from closing a running generator
    assert source.closed.is_set()
    assert got == [b"first"]


async def test_a_client_leaving_between_chunks_closes_the_events() -> None:
    draining, source = Draining(), Source()
    stream = draining.until(source.events())
    assert await anext(stream) == b"first"
    await stream.aclose()  # type: ignore[attr-defined]
    assert source.closed.is_set()


async def test_events_that_end_end_the_stream() -> None:
    async def two() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    got: list[bytes] = []
    await _read(Draining().until(two()), got)
    assert got == [b"a", b"b"]
