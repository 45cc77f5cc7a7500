"""Timing middleware: headers on every response, then the window, Prometheus and logs.

A plain ASGI middleware (not BaseHTTPMiddleware, which would buffer streamed answers).
`X-Response-Time` and `Server-Timing` give the time until the headers were sent, with one
entry per stage that had run by then; streamed answers carry their stages in their final
event. The window, Prometheus and the persisted figures (posada.observe.rollup) get the
time until the last byte. Unless timings are public (`POSADA_EXPOSE_TIMINGS`; dev) only
staff get those two headers: their stages tell a guest whether an answer came from a
cache, that is, whether someone asked it before.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from posada.core import context
from posada.core.context import RequestStats
from posada.observe.prom import Metrics
from posada.observe.rollup import Rollups
from posada.observe.staff import Exposure
from posada.observe.window import RequestRecord, RequestWindow

log = logging.getLogger("posada.requests")


SLOW_CLIENT_ROUTE = "slow client (408)"


def server_timing(stages: dict[str, float], total_ms: float) -> str:
    """The `Server-Timing` value: one `name;dur=ms` per stage, then `total`."""
    parts = [f"{name};dur={ms:.3f}" for name, ms in stages.items()]
    parts.append(f"total;dur={total_ms:.3f}")
    return ", ".join(parts)


class ObserveMiddleware:
    """Measure each HTTP request and report it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        window: RequestWindow,
        metrics: Metrics,
        slow_ms: float,
        n_plus_one_threshold: int,
        exposure: Exposure | None = None,
        rollups: Rollups | None = None,
    ) -> None:
        self.app = app
        self.exposure = exposure or Exposure(public=True, admin_token=None)
        self.window = window
        self.metrics = metrics
        self.slow_ms = slow_ms
        self.n_plus_one_threshold = n_plus_one_threshold
        self.rollups = rollups

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request inside a fresh `RequestStats`."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        show = self.exposure.visible(scope["headers"])
        status = 500
        response_ms = 0.0
        with context.measure() as stats:

            async def send_measured(message: Message) -> None:
                nonlocal status, response_ms
                if message["type"] == "http.response.start":
                    status = message["status"]
                    response_ms = stats.elapsed_ms()
                    headers = MutableHeaders(scope=message)
                    headers.append("X-Request-ID", request_id)
                    if show:
                        headers.append("X-Response-Time", f"{response_ms:.3f}ms")
                        headers.append("Server-Timing", server_timing(stats.stages, response_ms))
                await send(message)

            try:
                await self.app(scope, receive, send_measured)
            finally:
                self._finish(scope, stats, request_id, status, response_ms)

    def _finish(
        self, scope: Scope, stats: RequestStats, request_id: str, status: int, response_ms: float
    ) -> None:
        duration = stats.elapsed_ms()
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        if status == 408:
            # The client stopped sending (posada.api.http_limits): its wait is not the route's time,
            # and 400 stalled logins would otherwise be the login route's P50.
            route = SLOW_CLIENT_ROUTE
        repeated = [s for s, n in stats.statements.items() if n > self.n_plus_one_threshold]
        record = RequestRecord(
            request_id=request_id,
            at=time.time(),
            method=_method(scope["method"]),
            route=route,
            status=status,
            duration_ms=round(duration, 3),
            response_ms=round(response_ms, 3),
            stages=dict(stats.stages),
            counters=stats.counters(),
            tenant=stats.tenant,
            slow=duration > self.slow_ms,
            n_plus_one=bool(repeated),
            cache=dict(stats.cache),
        )
        self.window.add(record)
        self.metrics.observe(record, stats)
        if self.rollups is not None:
            self.rollups.add(record, stats)
        if repeated:
            for statement in repeated:
                log.warning(
                    "N+1 query: %s %s ran %d times: %s",
                    record.method,
                    route,
                    stats.statements[statement],
                    " ".join(statement.split())[:200],
                )
        if record.slow:
            log.warning("slow request %s", json.dumps(_slow_line(record), ensure_ascii=False))


# The methods posada answers; any other a client sends is counted as one, so that made-up
# methods cannot fill the window's keys and the persisted figures' rows.
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def _method(method: str) -> str:
    return method if method in _METHODS else "OTHER"


def _slow_line(record: RequestRecord) -> dict[str, Any]:
    return {
        "request_id": record.request_id,
        "method": record.method,
        "route": record.route,
        "status": record.status,
        "duration_ms": record.duration_ms,
        "stages": record.stages,
        **record.counters,
    }
