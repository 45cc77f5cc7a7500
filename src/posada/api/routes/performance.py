"""Staff endpoints: the request window as JSON and the Prometheus text format."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from posada.api.deps import MetricsDep, SettingsDep, WindowDep
from posada.api.openapi import COMMON, responses
from posada.core.errors import Forbidden, NotAuthorized
from posada.observe.staff import is_admin, is_local

router = APIRouter(tags=["performance"])


async def require_staff(request: Request, settings: SettingsDep) -> None:
    """The admin Bearer token when one is set; otherwise a direct loopback client."""
    headers = request.scope["headers"]
    if settings.admin_token is not None:
        if not is_admin(headers, settings.admin_token):
            raise NotAuthorized("staff only: send the admin token as a Bearer token")
        return
    if not is_local(request.scope.get("client"), headers):
        raise Forbidden("staff only: set POSADA_ADMIN_TOKEN to read metrics remotely")


Staff = Annotated[None, Depends(require_staff)]


@router.get("/api/performance/metrics", responses=responses(NotAuthorized, Forbidden, *COMMON))
async def performance_metrics(
    _: Staff,
    window: WindowDep,
    format: Annotated[Literal["summary", "full"], Query()] = "summary",
    route: Annotated[str | None, Query(max_length=300)] = None,
) -> dict[str, Any]:
    """Percentiles, rates and counters of this process's recent requests."""
    return window.summary(route=route, full=format == "full")


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(_: Staff, metrics: MetricsDep) -> Response:
    """Prometheus text exposition."""
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
