"""Public hotel information."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from posada.deps import RuntimeDep
from posada.tenants.service import get_tenant

router = APIRouter(prefix="/api/public", tags=["public"])


class HotelInfo(BaseModel):
    """What anyone may know about a hotel."""

    slug: str
    name: str


@router.get("/{slug}/info")
async def hotel_info(slug: str, runtime: RuntimeDep) -> HotelInfo:
    """The hotel's public name; 404 for an unknown hotel."""
    async with runtime.pool.connection() as conn:
        tenant = await get_tenant(conn, slug=slug)
    return HotelInfo(slug=tenant.slug, name=tenant.name)
