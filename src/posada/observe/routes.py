"""Staff endpoints: the request window as JSON and the Prometheus text format."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from posada.deps import SettingsDep
from posada.errors import Forbidden, NotAuthorized
from posada.observe.prom import Metrics
from posada.observe.window import RequestWindow

router = APIRouter(tags=["performance"])

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


async def require_staff(request: Request, settings: SettingsDep) -> None:
    """The admin Bearer token when one is set; otherwise a loopback client."""
    if settings.admin_token is not None:
        expected = settings.admin_token.get_secret_value()
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token, expected):
            raise NotAuthorized("staff only: send the admin token as a Bearer token")
        return
    host = request.client.host if request.client else ""
    if host not in _LOOPBACK:
        raise Forbidden("staff only: set POSADA_ADMIN_TOKEN to read metrics remotely")


Staff = Annotated[None, Depends(require_staff)]


@router.get("/api/performance/metrics")
async def performance_metrics(
    request: Request,
    _: Staff,
    format: Annotated[Literal["summary", "full"], Query()] = "summary",
    route: Annotated[str | None, Query(max_length=300)] = None,
) -> dict[str, Any]:
    """Percentiles, rates and counters of this process's recent requests."""
    window: RequestWindow = request.app.state.window
    return window.summary(route=route, full=format == "full")


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request, _: Staff) -> Response:
    """Prometheus text exposition."""
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
