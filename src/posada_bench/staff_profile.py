"""The front desk's part of `posada db profile`: the reservation list's statements, at the
size a hotel group reaches.

`--reservations N` first adds N made-up stays to the profiled hotel, inside the profile's
transaction (rolled back with it), and analyses the table, so the plans are the ones the
planner picks at that size: 100,000 stays is a few years of a 100-unit hotel.
"""

from __future__ import annotations

import inspect
from datetime import date, timedelta

from posada.api.routes import staff_reservations as routes
from posada.db.pool import AsyncConn
from posada.staff.reservations import Filters, cancel_reservation, list_reservations
from posada_bench._plans import Capture

# Names with and without accents, so the folded-name search has both to find.
_FIRST = ("José", "María", "Émile", "John", "Ana", "Zoë", "Luis", "Françoise")
_LAST = ("Núñez", "García", "Smith", "Lefèvre", "Pereira", "O'Brien", "Müller", "Díaz")


async def seed_reservations(conn: AsyncConn, *, tenant_id: int, count: int, today: date) -> int:
    """Add `count` stays over two years around `today` to the hotel's units; ANALYZE them."""
    if count <= 0:
        return 0
    cur = await conn.execute(
        """INSERT INTO reservations (tenant_id, external_ref, unit_id, guest_name,
                                     phone_last4, check_in, check_out, status)
           SELECT %(tenant)s, 'profile-' || n, units[1 + n %% cardinality(units)],
                  (%(first)s::text[])[1 + n %% 8] || ' '
                      || (%(last)s::text[])[1 + (n / 8) %% 8] || ' ' || n,
                  lpad((n %% 10000)::text, 4, '0'),
                  %(start)s::date + n %% 730, %(start)s::date + n %% 730 + 1 + n %% 6,
                  (ARRAY['confirmed', 'checked_in', 'checked_out', 'cancelled'])[1 + n %% 4]
           FROM generate_series(1, %(count)s) n,
                (SELECT array_agg(id ORDER BY id) AS units FROM units
                 WHERE tenant_id = %(tenant)s) u""",
        {
            "tenant": tenant_id,
            "count": count,
            "first": list(_FIRST),
            "last": list(_LAST),
            "start": today - timedelta(days=365),
        },
    )
    await conn.execute("ANALYZE reservations")
    return cur.rowcount


def _name(n: int) -> str:
    """The name `seed_reservations` gives stay `n`."""
    return f"{_FIRST[n % 8]} {_LAST[(n // 8) % 8]} {n}"


def _default_limit() -> int:
    limit: int = inspect.signature(routes.staff_reservations).parameters["limit"].default
    return limit


async def staff_visit(conn: AsyncConn, capture: Capture, *, tenant_id: int, today: date) -> None:
    """What the front desk's reservation tab runs: pages, each filter, a cancellation."""
    limit = _default_limit()
    cases = {
        "first page": Filters(),
        "stays this week": Filters(stay_from=today, stay_to=today + timedelta(days=7)),
        "cancelled stays": Filters(status="cancelled"),
        "a guest's name, common (jose)": Filters(name="jose"),
        "a guest's name, one stay": Filters(name=_name(4242)),
    }
    for case, filters in cases.items():
        with capture.calling(list_reservations, case):
            await list_reservations(
                conn, tenant_id=tenant_id, filters=filters, after=None, limit=limit
            )
    first, following = await list_reservations(
        conn, tenant_id=tenant_id, filters=Filters(), after=None, limit=limit
    )
    if following is not None:
        with capture.calling(list_reservations, "the next page (keyset)"):
            await list_reservations(
                conn, tenant_id=tenant_id, filters=Filters(), after=following, limit=limit
            )
    if first:
        unit = first[0].unit
        with capture.calling(list_reservations, "one unit"):
            await list_reservations(
                conn, tenant_id=tenant_id, filters=Filters(unit=unit), after=None, limit=limit
            )
        with capture.calling(cancel_reservation, "cancel a stay"):
            await cancel_reservation(conn, tenant_id=tenant_id, reservation_id=first[0].id)
