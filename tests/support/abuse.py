"""What the abuse tests share: a hotel of their own, and an app with small limits."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from typing import Any

import httpx

from posada.api.app import create_app
from posada.core.config import Settings
from posada.guests.service import import_reservations
from posada.runtime import Runtime
from posada.tenants.service import Tenant, ensure_tenant

# The shipped limits (the session's settings lift them for every other test).
DEFAULT_LIMITS: dict[str, Any] = {
    name: field.default
    for name, field in Settings.model_fields.items()
    if name.startswith(("login_stay", "login_address", "login_backoff", "chat_"))
}
HEADER = "external_ref,unit,guest_name,phone_last4,check_in,check_out,status\n"


@dataclasses.dataclass(frozen=True)
class Hotel:
    """A tenant with two units and a few current stays (phone digits known)."""

    tenant: Tenant
    today: date

    def day(self, offset: int) -> date:
        """A check-in date `offset` days before today."""
        return self.today - timedelta(days=offset)


async def make_hotel(runtime: Runtime, stays: list[tuple[str, str, str, int]]) -> Hotel:
    """A new tenant with units `a` and `b` and stays (ref, unit, phone, days since check-in)."""
    async with runtime.pool.connection() as conn:
        tenant = await ensure_tenant(conn, slug=f"t-{uuid.uuid4().hex[:10]}", name="Test Hotel")
        for slug in ("a", "b"):
            await conn.execute(
                "INSERT INTO units (tenant_id, slug, name) VALUES (%s, %s, %s)",
                (tenant.id, slug, slug.upper()),
            )
        hotel = Hotel(tenant, date.today())
        await import_stays(runtime, hotel, stays)
    return hotel


async def import_stays(
    runtime: Runtime,
    hotel: Hotel,
    stays: list[tuple[str, str, str, int]],
    *,
    status: str = "checked_in",
    nights: int = 4,
) -> None:
    """Upsert stays through the real import."""
    rows = [
        f"{ref},{unit},Guest {ref},{phone},{hotel.day(ago)},{hotel.day(ago - nights)},{status}"
        for ref, unit, phone, ago in stays
    ]
    async with runtime.pool.connection() as conn:
        await import_reservations(conn, tenant=hotel.tenant, csv_text=HEADER + "\n".join(rows))


def with_settings(runtime: Runtime, **changes: Any) -> Runtime:
    """The session's runtime with the shipped limits and `changes` (limits are built from them)."""
    update = {**DEFAULT_LIMITS, **changes}
    return dataclasses.replace(runtime, settings=runtime.settings.model_copy(update=update))


@asynccontextmanager
async def app_client(runtime: Runtime, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh app (its own in-process buckets) on the session's runtime with `changes`."""
    app = create_app(runtime=with_settings(runtime, **changes))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://posada.test") as http:
        yield http


def login_body(hotel: Hotel, ago: int, phone: str) -> dict[str, str]:
    """The body of a login for the stay that checked in `ago` days ago."""
    return {
        "tenant": hotel.tenant.slug,
        "check_in": hotel.day(ago).isoformat(),
        "phone_last4": phone,
    }
