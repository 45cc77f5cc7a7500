"""The staff's reservations: a list paged by keyset, filtered; a stay added, changed or
cancelled, validated as the CSV import validates a row.

The list is ordered by check-in, then id, and pages by the last row seen (`after`), never
by OFFSET: a page costs the same at the first row and the 100,000th, and rows inserted
meanwhile neither repeat nor vanish between pages. Every statement takes the tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from posada.core.errors import InvalidInput, NotFound
from posada.db.pool import AsyncConn
from posada.guests.service import RESERVATION_COLUMNS, STATUSES, check_row, unit_ids


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last row's check-in and id (`2026-12-01.42` on the wire)."""

    check_in: date
    id: int

    def __str__(self) -> str:
        return f"{self.check_in.isoformat()}.{self.id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """The cursor a page gave as `next_after`; InvalidInput (422) if it is not one."""
        day, _, number = text.partition(".")
        try:
            return cls(date.fromisoformat(day), int(number))
        except ValueError as exc:
            raise InvalidInput(f"after: {text!r} is not a cursor this list gave") from exc


@dataclass(frozen=True)
class Filters:
    """What the list is narrowed to; None: no narrowing. A stay matches a date range when
    any of its nights fall in it."""

    stay_from: date | None = None
    stay_to: date | None = None
    unit: str | None = None  # the unit's slug
    status: str | None = None
    name: str | None = None  # part of the guest's name, any case and accents


@dataclass(frozen=True)
class Reservation:
    """One stay as the front desk sees it."""

    id: int
    external_ref: str
    unit: str
    unit_name: str
    guest_name: str
    phone_last4: str
    check_in: date
    check_out: date
    status: str
    updated_at: datetime


_COLUMNS = """r.id, r.external_ref, u.slug, u.name, r.guest_name, r.phone_last4, r.check_in,
       r.check_out, r.status, r.updated_at"""

# One statement per page. The (tenant_id, check_in, id) index serves the order and the
# keyset (a row comparison). A stay with a night on or after `from` began after `from`
# less the hotel's longest stay (an index gives it), so that bound spares walking every
# earlier stay. A trigram index serves the LIKE on the folded name when few match.
_PAGE = f"""SELECT {_COLUMNS}
FROM reservations r JOIN units u ON u.id = r.unit_id
WHERE r.tenant_id = %(tenant)s
  AND (%(after_in)s::date IS NULL OR (r.check_in, r.id) > (%(after_in)s::date, %(after_id)s))
  AND (%(to)s::date IS NULL OR r.check_in <= %(to)s)
  AND (%(from)s::date IS NULL OR (r.check_out > %(from)s AND r.check_in > %(from)s::date - (
      SELECT coalesce(max(n.check_out - n.check_in), 0) FROM reservations n
      WHERE n.tenant_id = %(tenant)s)))
  AND (%(unit)s::text IS NULL OR u.slug = %(unit)s)
  AND (%(status)s::text IS NULL OR r.status = %(status)s)
  AND (%(name)s::text IS NULL OR r.guest_folded LIKE '%%' || posada_fold(%(name)s) || '%%')
ORDER BY r.check_in, r.id
LIMIT %(limit)s"""  # noqa: S608 (constants only)


def _like(text: str) -> str:
    """`text` matched literally inside LIKE."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_reservations(
    conn: AsyncConn, *, tenant_id: int, filters: Filters, after: Cursor | None, limit: int
) -> tuple[list[Reservation], Cursor | None]:
    """One page of the hotel's reservations by check-in, and the cursor of the next."""
    if filters.status is not None and filters.status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}")
    if filters.stay_from and filters.stay_to and filters.stay_to < filters.stay_from:
        raise InvalidInput("stay_to is before stay_from")
    name = filters.name.strip() if filters.name else None
    cur = await conn.execute(
        _PAGE,
        {
            "tenant": tenant_id,
            "after_in": after.check_in if after else None,
            "after_id": after.id if after else None,
            "from": filters.stay_from,
            "to": filters.stay_to,
            "unit": filters.unit,
            "status": filters.status,
            "name": _like(name) if name else None,
            "limit": limit + 1,  # one more: whether there is a next page
        },
    )
    rows = [Reservation(*row) for row in await cur.fetchall()]
    page = rows[:limit]
    more = len(rows) > limit
    return page, Cursor(page[-1].check_in, page[-1].id) if more else None


async def cancel_reservation(conn: AsyncConn, *, tenant_id: int, reservation_id: int) -> None:
    """Cancel a stay: its guest's tokens stop working at their next request (the guest
    routes re-check the reservation). NotFound if not this hotel's."""
    cur = await conn.execute(
        """UPDATE reservations SET status = 'cancelled', updated_at = now()
           WHERE tenant_id = %s AND id = %s RETURNING id""",
        (tenant_id, reservation_id),
    )
    if await cur.fetchone() is None:
        raise NotFound("no such reservation at this hotel")


# What a change may set (the reference names the stay in the hotel's own system: fixed).
CHANGEABLE = RESERVATION_COLUMNS[1:]


async def add_reservation(conn: AsyncConn, *, tenant_id: int, row: dict[str, str]) -> int:
    """Add a stay (the import's columns, as text); InvalidInput naming what is wrong, or
    when the hotel already has a stay of that reference."""
    values = check_row(row, await unit_ids(conn, tenant_id=tenant_id))
    cur = await conn.execute(
        """INSERT INTO reservations (tenant_id, external_ref, unit_id, guest_name, phone_last4,
                                     check_in, check_out, status)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (tenant_id, external_ref) DO NOTHING RETURNING id""",
        (tenant_id, *values),
    )
    row_id = await cur.fetchone()
    if row_id is None:
        raise InvalidInput(f"external_ref {row['external_ref']!r} is already a stay here")
    return int(row_id[0])


async def change_reservation(
    conn: AsyncConn, *, tenant_id: int, reservation_id: int, changes: dict[str, str]
) -> None:
    """Change some of a stay's fields; the result is validated whole. A stay moved to
    another unit, or cancelled, logs its guest out (the guest routes re-check it)."""
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}")
    async with conn.transaction():
        cur = await conn.execute(
            """SELECT r.external_ref, u.slug, r.guest_name, r.phone_last4, r.check_in::text,
                      r.check_out::text, r.status
               FROM reservations r JOIN units u ON u.id = r.unit_id
               WHERE r.tenant_id = %s AND r.id = %s FOR UPDATE OF r""",
            (tenant_id, reservation_id),
        )
        current = await cur.fetchone()
        if current is None:
            raise NotFound("no such reservation at this hotel")
        row = dict(zip(RESERVATION_COLUMNS, (str(v) for v in current), strict=True)) | changes
        values = check_row(row, await unit_ids(conn, tenant_id=tenant_id))
        await conn.execute(
            """UPDATE reservations SET unit_id = %s, guest_name = %s, phone_last4 = %s,
                   check_in = %s, check_out = %s, status = %s, updated_at = now()
               WHERE tenant_id = %s AND id = %s""",
            (*values[1:], tenant_id, reservation_id),
        )
