"""The front desk's reservations: a list by check-in (keyset pages); a stay added,
changed or cancelled; a CSV imported as the CLI imports it."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from posada.api.deps import RuntimeDep
from posada.api.openapi import BODY, COMMON, responses
from posada.api.staff_auth import StaffDep
from posada.core.errors import Forbidden, InvalidInput, NotAuthorized, NotFound
from posada.guests.service import import_reservations
from posada.staff.reservations import (
    Cursor,
    Filters,
    Reservation,
    add_reservation,
    cancel_reservation,
    change_reservation,
    list_reservations,
)
from posada.tenants.service import SLUG_MAX, SLUG_PATTERN, get_tenant

router = APIRouter(prefix="/api/staff", tags=["staff"])
Status = Literal["confirmed", "checked_in", "checked_out", "cancelled"]


class ReservationPage(BaseModel):
    """A page of stays by check-in; `next_after` asks for the next (null: the last page)."""

    reservations: list[Reservation]
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
        reservations=rows,
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


class NewReservation(BaseModel):
    """A stay, with the CSV import's columns and its checks."""

    external_ref: str = Field(min_length=1, max_length=100)
    unit: str = Field(min_length=1, max_length=200, description="the unit's slug or name")
    guest_name: str = Field(min_length=1, max_length=200)
    phone_last4: str = Field(pattern=r"^[0-9]{4}$")
    check_in: date
    check_out: date
    status: Status = "confirmed"


class ReservationChange(BaseModel):
    """The fields to change; the others stay."""

    unit: str | None = Field(default=None, min_length=1, max_length=200)
    guest_name: str | None = Field(default=None, min_length=1, max_length=200)
    phone_last4: str | None = Field(default=None, pattern=r"^[0-9]{4}$")
    check_in: date | None = None
    check_out: date | None = None
    status: Status | None = None


class Imported(BaseModel):
    """What an import wrote."""

    inserted: int
    updated: int


def _text(values: dict[str, object]) -> dict[str, str]:
    return {k: v.isoformat() if isinstance(v, date) else str(v) for k, v in values.items()}


@router.post(
    "/reservations",
    status_code=201,
    responses=responses(NotAuthorized, Forbidden, *BODY, *COMMON),
)
async def staff_add_reservation(
    body: NewReservation, session: StaffDep, runtime: RuntimeDep
) -> dict[str, int]:
    """Add a stay; 422 naming what is wrong, or if its reference is taken here."""
    async with runtime.pool.connection() as conn:
        reservation_id = await add_reservation(
            conn, tenant_id=session.member.tenant_id, row=_text(body.model_dump())
        )
    return {"id": reservation_id}


@router.patch(
    "/reservations/{reservation_id}",
    status_code=204,
    responses=responses(NotAuthorized, Forbidden, NotFound, *BODY, *COMMON),
)
async def staff_change_reservation(
    reservation_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: ReservationChange,
    session: StaffDep,
    runtime: RuntimeDep,
) -> Response:
    """Change a stay's unit, guest, phone, dates or status; moved or cancelled, its guest
    is logged out at their next request."""
    async with runtime.pool.connection() as conn:
        await change_reservation(
            conn,
            tenant_id=session.member.tenant_id,
            reservation_id=reservation_id,
            changes=_text(body.model_dump(exclude_none=True)),
        )
    return Response(status_code=204)


@router.post(
    "/reservations/import",
    responses=responses(NotAuthorized, Forbidden, *BODY, *COMMON),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def staff_import_reservations(
    request: Request, session: StaffDep, runtime: RuntimeDep
) -> Imported:
    """Upsert a CSV of stays (the CLI's columns); a bad row is named by its line and
    nothing is written."""
    try:
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the CSV is not UTF-8 text") from exc
    async with runtime.pool.connection() as conn:
        tenant = await get_tenant(conn, slug=session.tenant_slug)
        report = await import_reservations(conn, tenant=tenant, csv_text=text)
    return Imported(inserted=report.inserted, updated=report.updated)
