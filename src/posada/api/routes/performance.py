"""Staff endpoints: the request window as JSON and the Prometheus text format.

Operators read both with the admin token (or from loopback when none is set). A hotel's
owner, logged in on the staff page, reads the window too, but only their own hotel's
requests: the process serves every hotel, and one hotel's traffic and spend are not
another's business. Prometheus' exposition labels every hotel, so it stays the operators'.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from posada.api.deps import MetricsDep, RuntimeDep, SettingsDep, WindowDep
from posada.api.openapi import COMMON, responses
from posada.api.staff_auth import COOKIE, get_staff
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


async def window_reader(request: Request, settings: SettingsDep, runtime: RuntimeDep) -> str | None:
    """Whose requests the reader may see: every hotel's (None) with the admin token or from
    loopback, one hotel's (its slug) for that hotel's owner by their staff session."""
    if request.cookies.get(COOKIE) and "authorization" not in request.headers:
        session = await get_staff(request, runtime)
        if not session.member.may("owner"):
            raise Forbidden("this needs the owner role")
        return session.tenant_slug
    await require_staff(request, settings)
    return None


WindowReader = Annotated[str | None, Depends(window_reader)]


@router.get("/api/performance/metrics", responses=responses(NotAuthorized, Forbidden, *COMMON))
async def performance_metrics(
    tenant: WindowReader,
    window: WindowDep,
    format: Annotated[Literal["summary", "full"], Query()] = "summary",
    route: Annotated[str | None, Query(max_length=300)] = None,
) -> dict[str, Any]:
    """Percentiles, rates and counters of this process's recent requests (a hotel's owner:
    their hotel's only)."""
    return window.summary(route=route, tenant=tenant, full=format == "full")


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(_: Staff, metrics: MetricsDep) -> Response:
    """Prometheus text exposition."""
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
