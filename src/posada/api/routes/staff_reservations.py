"""The front desk's reservations: a list by check-in (keyset pages) and a stay cancelled."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel

from posada.api.deps import RuntimeDep
from posada.api.openapi import COMMON, responses
from posada.api.staff_auth import StaffDep
from posada.core.errors import Forbidden, NotAuthorized, NotFound
from posada.staff.reservations import Cursor, Filters, cancel_reservation, list_reservations
from posada.tenants.service import SLUG_MAX, SLUG_PATTERN

router = APIRouter(prefix="/api/staff", tags=["staff"])
Status = Literal["confirmed", "checked_in", "checked_out", "cancelled"]


class ReservationOut(BaseModel):
    """One stay."""

    id: int
    external_ref: str
    unit: str
    unit_name: str
    guest_name: str
    phone_last4: str
    check_in: date
    check_out: date
    status: Status
    updated_at: datetime


class ReservationPage(BaseModel):
    """A page of stays by check-in; `next_after` asks for the next (null: the last page)."""

    reservations: list[ReservationOut]
    next_after: str | None


@router.get("/reservations", responses=responses(NotAuthorized, *COMMON))
async def staff_reservations(
    session: StaffDep,
    runtime: RuntimeDep,
    stay_from: Annotated[date | None, Query(description="stays with a night on or after")] = None,
    stay_to: Annotated[date | None, Query(description="stays that begin on or before")] = None,
    unit: Annotated[str | None, Query(max_length=SLUG_MAX, pattern=SLUG_PATTERN)] = None,
    status: Status | None = None,
    name: Annotated[
        str | None, Query(max_length=100, description="part of the guest's name")
    ] = None,
    after: Annotated[str | None, Query(max_length=40, description="a page's next_after")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReservationPage:
    """The hotel's reservations by check-in date, filtered, one page at a time."""
    filters = Filters(stay_from, stay_to, unit, status, name)
    cursor = Cursor.parse(after) if after else None
    async with runtime.pool.connection() as conn:
        rows, following = await list_reservations(
            conn, tenant_id=session.member.tenant_id, filters=filters, after=cursor, limit=limit
        )
    return ReservationPage(
        reservations=[ReservationOut(**vars(r)) for r in rows],
        next_after=str(following) if following else None,
    )


@router.post(
    "/reservations/{reservation_id}/cancel",
    status_code=204,
    responses=responses(NotAuthorized, Forbidden, NotFound, *COMMON),
)
async def staff_cancel_reservation(
    reservation_id: Annotated[int, Path(ge=1, le=2**63 - 1)], session: StaffDep, runtime: RuntimeDep
) -> Response:
    """Cancel a stay; its guest is logged out at their next request."""
    async with runtime.pool.connection() as conn:
        await cancel_reservation(
            conn, tenant_id=session.member.tenant_id, reservation_id=reservation_id
        )
    return Response(status_code=204)
