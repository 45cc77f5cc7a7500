"""A reader of Server-Sent Events streams, shared by the scale proofs and the tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx


@dataclass
class Event:
    """One Server-Sent Event (a keep-alive comment has the name `comment`)."""

    name: str
    data: Any
    id: int | None


class StreamEnded(Exception):
    """The server ended the stream before the event a reader waited for."""


class Events:
    """A Server-Sent Events stream, read one event (or keep-alive comment) at a time."""

    # How long a read waits before it fails (a guard against a hang, not a bound on speed).
    patience_s: ClassVar[float] = 30.0
    # What a read raises when the stream ends first; the tests want an AssertionError.
    ended: ClassVar[Callable[[str], Exception]] = StreamEnded

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def rest(self) -> list[str]:
        """Every line the stream still sends, until the server ends it."""
        return await asyncio.wait_for(self._rest(), timeout=self.patience_s)

    async def _rest(self) -> list[str]:
        return [line async for line in self._lines]

    async def next(self, *, comments: bool = False) -> Event:
        """The next event (with `comments`, a keep-alive comment counts as one)."""
        return await asyncio.wait_for(self._next(comments), timeout=self.patience_s)

    async def _next(self, comments: bool) -> Event:
        fields: dict[str, str] = {}
        async for line in self._lines:
            if line.startswith(":"):
                if comments:
                    return Event("comment", line[1:].strip(), None)
                continue
            if not line:
                if fields:
                    given = fields.get("id")
                    data = json.loads(fields.get("data", "null"))
                    return Event(
                        fields.get("event", "message"), data, int(given) if given else None
                    )
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        raise type(self).ended("the stream ended")

    async def first(self, check: Callable[[Event], bool]) -> Event:
        """Read on to the first event `check` accepts."""
        while True:
            event = await self.next()
            if check(event):
                return event
