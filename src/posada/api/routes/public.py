"""Public hotel information, served stale-while-revalidate with ETags.

A hotel's name and its units change only with an ingest, and every guest page asks for
them: they are served from the process's `StaleWhileRevalidate` cache with
`Cache-Control` (fresh for `POSADA_PUBLIC_MAX_AGE_S`, then usable while revalidated for
`POSADA_PUBLIC_STALE_S`) and an `ETag`; `If-None-Match` with the current ETag gets a 304.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel

from posada.api.deps import RuntimeDep
from posada.api.openapi import COMMON, responses
from posada.core import context as observe
from posada.core.errors import NotFound
from posada.runtime import Runtime
from posada.tenants.service import SLUG_MAX, SLUG_PATTERN, get_tenant, list_public_units

router = APIRouter(prefix="/api/public", tags=["public"])

# Checked before any query: a value the tenants table could not hold (a NUL, say) is a
# 422 naming the field, never the database's error.
Slug = Annotated[str, Path(min_length=1, max_length=SLUG_MAX, pattern=SLUG_PATTERN)]
_RESPONSES = responses(NotFound, *COMMON) | {304: {"description": "unchanged (If-None-Match)"}}


class HotelInfo(BaseModel):
    """What anyone may know about a hotel."""

    slug: str
    name: str


class UnitOut(BaseModel):
    """A unit as anyone may see it."""

    slug: str
    name: str
    unit_type: str | None
    capacity: int | None


async def _cached(
    request: Request,
    runtime: Runtime,
    key: str,
    load: Callable[[], Awaitable[tuple[int, Any]]],
) -> Response:
    async def body() -> tuple[int, bytes]:
        tenant_id, data = await load()
        return tenant_id, json.dumps(data, ensure_ascii=False).encode()

    settings = runtime.settings
    entry, served = await runtime.caches.public.get(key, body)
    observe.record_cache("public", hit=served != "miss")
    headers = {
        "ETag": entry.etag,
        "Cache-Control": (
            f"public, max-age={settings.public_max_age_s}, "
            f"stale-while-revalidate={settings.public_stale_s}"
        ),
        "X-Cache": served,
    }
    if entry.etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(entry.body, media_type="application/json", headers=headers)


@router.get("/{slug}/info", response_model=HotelInfo, responses=_RESPONSES)
async def hotel_info(slug: Slug, request: Request, runtime: RuntimeDep) -> Response:
    """The hotel's public name; 404 for an unknown hotel."""

    async def load() -> tuple[int, Any]:
        async with runtime.pool.connection() as conn:
            tenant = await get_tenant(conn, slug=slug)
        return tenant.id, HotelInfo(slug=tenant.slug, name=tenant.name).model_dump()

    return await _cached(request, runtime, f"info:{slug}", load)


@router.get("/{slug}/units", response_model=list[UnitOut], responses=_RESPONSES)
async def hotel_units(slug: Slug, request: Request, runtime: RuntimeDep) -> Response:
    """The hotel's units (name, type, capacity); 404 for an unknown hotel."""

    async def load() -> tuple[int, Any]:
        async with runtime.pool.connection() as conn:
            tenant = await get_tenant(conn, slug=slug)
            units = await list_public_units(conn, tenant_id=tenant.id)
        return tenant.id, units

    return await _cached(request, runtime, f"units:{slug}", load)
