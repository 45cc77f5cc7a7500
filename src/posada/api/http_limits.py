"""Size and time limits on requests, at two levels.

`LimitsMiddleware` (plain ASGI, so streamed bodies are never buffered) refuses a body over
`max_body_bytes` (`max_upload_bytes` for the staff page's uploads: documents and a
reservations CSV, which are files, not messages) as it streams in, before FastAPI parses
it and before auth: a `Content-Length` over the limit at once, a chunked body as soon as
it passes the limit (413). It refuses headers over `max_header_bytes` or `max_headers`
(431), and a body that stalls for `body_timeout_s` between two pieces (408). It sees a
request only once its headers are complete, so it cannot bound what reading them costs.

`GuardedHttpTools` does that in uvicorn's httptools protocol: it counts header bytes and
headers while they are parsed (431 and close, before the request reaches the app), and
closes a connection whose request line and headers are not complete `header_timeout_s`
after it opened or after the request began (408). Neither uvicorn nor httptools bounds
these (measured with raw sockets on uvicorn 0.54.0: a 1 MB header was served, and half-sent
headers stayed open as long as the client kept the socket; `timeout_keep_alive` only runs
between requests, `h11_max_incomplete_event_size` only under h11). It subclasses uvicorn's
protocol, whose version is pinned: tests/integration/test_limits.py proves it over real uvicorn.

`uvicorn_options(settings)` gives `posada serve` the keyword arguments for all of this.
"""

from __future__ import annotations

import asyncio
import json
from functools import cache
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from posada.core.config import Settings
from posada.core.errors import HeadersTooLarge, PayloadTooLarge, PosadaError, RequestTimeout

_PROTOCOL = "posada.api.http_limits:GuardedHttpTools"
# The staff page's uploads: files, bounded by POSADA_STAFF_UPLOAD_MAX_BYTES instead.
UPLOADS = frozenset({"/api/staff/documents", "/api/staff/reservations/import"})


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of `uvicorn.run` that bound connections (see the module doc)."""
    return {
        "http": _PROTOCOL,
        "timeout_keep_alive": settings.keep_alive_s,
        # Past this many connections or tasks per process, new requests get uvicorn's 503
        # (text/plain) instead of piling up.
        "limit_concurrency": settings.max_connections,
    }


def header_bytes(scope: Scope) -> int:
    """The request line and headers as counted against `max_header_bytes`."""
    line = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    return line + sum(len(name) + len(value) for name, value in scope["headers"])


def _error_message(exc: PosadaError) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"detail": exc.message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The rest of the request is not read: the connection cannot carry another.
        (b"connection", b"close"),
    ]
    return headers, body


class LimitsMiddleware:
    """Bound each HTTP request's headers, body size and body pace."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_header_bytes: int,
        max_headers: int,
        body_timeout_s: float,
        max_upload_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes or max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse what is over a limit; watch the body while the app reads it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _refuse(send, refusal)
            return
        received = 0
        complete = False
        tripped = False
        started = False
        limit = self._body_limit(scope)

        async def limited_receive() -> Message:
            nonlocal received, complete, tripped
            if complete:
                # After the body only `http.disconnect` comes, whenever the client leaves:
                # a streamed answer waits for it, so no timeout here.
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout_s)
            except TimeoutError:
                tripped = True
                raise RequestTimeout(
                    f"the request body stalled for {self.body_timeout_s:g} s"
                ) from None
            if message["type"] != "http.request":
                complete = True
                return message
            received += len(message.get("body", b""))
            if received > limit:
                tripped = True
                raise PayloadTooLarge(f"the request body is over {limit} bytes")
            complete = not message.get("more_body", False)
            return message

        async def marked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if tripped:
                    MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        try:
            await self.app(scope, limited_receive, marked_send)
        except (RequestTimeout, PayloadTooLarge) as exc:
            # Raised where nothing turned it into a response (FastAPI's routes do).
            if started:
                raise
            await _refuse(send, exc)

    def _body_limit(self, scope: Scope) -> int:
        """The larger limit for an upload's POST, the message limit for everything else."""
        if scope["method"] == "POST" and scope["path"] in UPLOADS:
            return self.max_upload_bytes
        return self.max_body_bytes

    def _refusal(self, scope: Scope) -> PosadaError | None:
        headers = scope["headers"]
        if len(headers) > self.max_headers:
            return HeadersTooLarge(f"more than {self.max_headers} request headers")
        if header_bytes(scope) > self.max_header_bytes:
            return HeadersTooLarge(f"request headers over {self.max_header_bytes} bytes")
        limit = self._body_limit(scope)
        for name, value in headers:
            # httptools has refused a Content-Length that is not a number.
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                return PayloadTooLarge(f"the request body is over {limit} bytes")
        return None


async def _refuse(send: Send, exc: PosadaError) -> None:
    headers, body = _error_message(exc)
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _HeaderLimit(Exception):
    """Raised inside a parser callback to stop parsing a request that is over a limit."""


@cache
def _limits() -> tuple[int, int, float]:
    # uvicorn builds the protocol itself, in every worker: the settings come from the
    # same environment the app reads.
    settings = Settings()
    return settings.max_header_bytes, settings.max_headers, settings.header_timeout_s


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded headers and a deadline to send them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_bytes, self._max_headers, self._header_timeout_s = _limits()
        self._seen_bytes = 0
        self._seen_headers = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._limit_error: PosadaError | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the clock for the first request's headers."""
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock."""
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """As uvicorn's, but nothing more is read once the request was refused."""
        if not self._refused:
            super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error; a header limit's error is a 431 instead."""
        if self._limit_error is not None:
            self._refuse(self._limit_error)
            return
        super().send_400_response(msg)

    def on_message_begin(self) -> None:
        """A request begins: count its headers afresh and give it the full time."""
        super().on_message_begin()
        self._seen_bytes = 0
        self._seen_headers = 0
        self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        """Count the request line."""
        self._count(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Count each header."""
        self._count(len(name) + len(value), 1)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The headers are in: the clock stops, the app gets the request."""
        self._cancel_header_timer()
        super().on_headers_complete()

    def _count(self, size: int, headers: int) -> None:
        self._seen_bytes += size
        self._seen_headers += headers
        if self._seen_headers > self._max_headers:
            self._limit_error = HeadersTooLarge(f"more than {self._max_headers} request headers")
        elif self._seen_bytes > self._max_bytes:
            self._limit_error = HeadersTooLarge(f"request headers over {self._max_bytes} bytes")
        else:
            return
        # httptools turns this into an HttpParserCallbackError, which uvicorn answers with
        # send_400_response (above): nothing more of this connection is parsed.
        raise _HeaderLimit

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self._header_timeout_s, self._headers_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request is late while the one before is answered: just close.
            self.transport.close()
            return
        self._refuse(
            RequestTimeout(f"the request headers were not sent within {self._header_timeout_s:g} s")
        )

    def _refuse(self, exc: PosadaError) -> None:
        self._refused = True
        self._cancel_header_timer()
        headers, body = _error_message(exc)
        reason = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}.get(
            exc.status_code, b"Error"
        )
        head = [b"HTTP/1.1 %d %s\r\n" % (exc.status_code, reason)]
        head += [name + b": " + value + b"\r\n" for name, value in headers]
        head.append(b"x-content-type-options: nosniff\r\n\r\n")
        self.transport.write(b"".join(head) + body)
        self.transport.close()
