"""The staff page's performance figures (managers and owners): per route P50/P95/P99 over
the last hour, day or week, the slowest routes, lookups and answers by layer and the
cache-and-FAQ share, all of the session's hotel only, from the persisted figures
(posada.observe.figures: every replica, every grain in the window)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from posada.api.deps import RuntimeDep
from posada.api.openapi import COMMON, responses
from posada.api.staff_auth import ManagerDep
from posada.core.errors import Forbidden, NotAuthorized
from posada.db.pool import AsyncConn
from posada.observe.figures import RouteFigures, answer_figures, layer_figures, route_figures

router = APIRouter(prefix="/api/staff", tags=["staff"])

Window = Literal["hour", "day", "week"]
SPANS: dict[str, timedelta] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
}
SLOWEST = 5


class RouteOut(BaseModel):
    """One route (`METHOD /template`) over the window; `stream`: a live event stream,
    whose time is how long it stayed open, not a wait (left out of the slowest)."""

    route: str
    requests: int
    errors: int
    slow: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    stream: bool


class LayerOut(BaseModel):
    """Lookups in one answer layer: hits, misses, hits over lookups."""

    layer: str
    hits: int
    misses: int
    hit_rate: float


class AnswersOut(BaseModel):
    """Answers given by one layer."""

    layer: str
    answers: int


class Performance(BaseModel):
    """The hotel's figures over [since, until); `cache_faq_share` is null with no answers."""

    window: Window
    since: datetime
    until: datetime
    routes: list[RouteOut]
    slowest: list[RouteOut]
    layers: list[LayerOut]
    answers: list[AnswersOut]
    answers_total: int
    cache_faq_share: float | None


def _route(figures: RouteFigures) -> RouteOut:
    out = figures.as_dict()
    return RouteOut(**out, stream=figures.route.endswith("/events"))


async def read_performance(
    conn: AsyncConn, *, tenant_id: int, window: Window, now: datetime
) -> Performance:
    """One hotel's routes, layers and answers over the `window` that ends at `now`."""
    since = now - SPANS[window]
    found = await route_figures(conn, tenant_id=tenant_id, since=since, until=now)
    routes = [_route(r) for r in found]
    routes.sort(key=lambda r: (-r.requests, r.route))
    waits = [r for r in routes if not r.stream and r.requests]
    slowest = sorted(waits, key=lambda r: (-r.p95_ms, r.route))[:SLOWEST]
    lookups = await layer_figures(conn, tenant_id=tenant_id, since=since, until=now)
    layers = [LayerOut(**vars(f)) for f in lookups]
    answers = await answer_figures(conn, tenant_id=tenant_id, since=since, until=now)
    return Performance(
        window=window,
        since=since,
        until=now,
        routes=routes,
        slowest=slowest,
        layers=layers,
        answers=[
            AnswersOut(layer=layer, answers=n)
            for layer, n in sorted(answers.by_layer.items(), key=lambda item: (-item[1], item[0]))
        ],
        answers_total=answers.total,
        cache_faq_share=None if (share := answers.cache_faq_share) is None else round(share, 4),
    )


@router.get("/performance", responses=responses(NotAuthorized, Forbidden, *COMMON))
async def staff_performance(
    session: ManagerDep,
    runtime: RuntimeDep,
    window: Annotated[Window, Query(description="the last hour, day or week")] = "hour",
) -> Performance:
    """The hotel's P50/P95/P99 per route, slowest routes and answers by layer."""
    async with runtime.pool.connection() as conn:
        return await read_performance(
            conn, tenant_id=session.member.tenant_id, window=window, now=datetime.now(UTC)
        )
