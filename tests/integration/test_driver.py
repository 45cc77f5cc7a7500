"""The benchmark's HTTP client: whole requests in one write, guests started over a ramp."""

from __future__ import annotations

import asyncio
import json
from asyncio import selector_events
from typing import Any

import pytest

from posada_bench.driver import _client, _timed, start_delays


async def test_a_request_goes_out_in_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    # posada's clock starts at the headers: a body written after them, once the client's
    # busy event loop comes back to it, would count as server time. (httpx writes twice.)
    writes: list[bytes] = []
    # A private class (the loop's TCP transport), so typeshed does not list it.
    transport: Any = getattr(selector_events, "_SelectorSocketTransport")  # noqa: B009
    write = transport.write

    def counted(self: Any, data: bytes) -> None:
        writes.append(bytes(data))
        write(self, data)

    monkeypatch.setattr(transport, "write", counted)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"}")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b'Content-Length: 15\r\n\r\n{"layer":"faq"}'
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, _client(f"http://127.0.0.1:{port}", connections=1, timeout_s=10) as http:
        result = await _timed(http, "chat", "/api/guest/chat", {"message": "¿wifi?"}, {})

    assert result.sample.ok
    assert result.sample.status == 200
    assert result.body == {"layer": "faq"}
    sent = [w for w in writes if not w.startswith(b"HTTP/1.1")]
    assert len(sent) == 1
    head, _, body = sent[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /api/guest/chat HTTP/1.1")
    assert json.loads(body) == {"message": "¿wifi?"}


def test_guests_start_evenly_over_the_ramp() -> None:
    assert start_delays(4, 1.0) == [0.0, 0.25, 0.5, 0.75]
    assert start_delays(3, 0.0) == [0.0, 0.0, 0.0]
