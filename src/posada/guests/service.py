"""Guest login and reservation imports."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from posada.core.errors import InvalidInput, NotAuthorized
from posada.db.pool import AsyncConn
from posada.guests.tokens import GuestClaims, issue_token, token_expiry
from posada.tenants.service import Tenant

RESERVATION_COLUMNS = (
    "external_ref",
    "unit",
    "guest_name",
    "phone_last4",
    "check_in",
    "check_out",
    "status",
)
STATUSES = ("confirmed", "checked_in", "checked_out", "cancelled")


@dataclass(frozen=True)
class Login:
    """A successful login: the token and what the guest page shows."""

    token: str
    expires_at: datetime
    guest_name: str
    unit_name: str
    check_in: date
    check_out: date


async def log_in(
    conn: AsyncConn,
    *,
    tenant: Tenant,
    check_in: date,
    phone_last4: str,
    secret: str,
    ttl: timedelta,
    days_before: int,
    today: date | None = None,
) -> Login:
    """A token for the guest whose current (or imminent) stay matches; NotAuthorized otherwise."""
    today = today or date.today()
    cur = await conn.execute(
        """SELECT r.id, r.unit_id, r.guest_name, u.name, r.check_in, r.check_out,
                  extract(epoch FROM now())::float8
           FROM reservations r JOIN units u ON u.id = r.unit_id
           WHERE r.tenant_id = %(tenant)s AND r.check_in = %(check_in)s
             AND r.phone_last4 = %(phone)s AND r.status <> 'cancelled'
             AND r.check_in - %(days)s <= %(today)s AND %(today)s <= r.check_out
           ORDER BY r.id LIMIT 1""",
        {
            "tenant": tenant.id,
            "check_in": check_in,
            "phone": phone_last4,
            "days": days_before,
            "today": today,
        },
    )
    row = await cur.fetchone()
    if row is None:
        # One message for every failure, so a caller cannot learn which field was wrong.
        raise NotAuthorized("no current reservation matches that check-in date and phone number")
    reservation_id, unit_id, guest_name, unit_name, res_check_in, res_check_out, now = row
    # Issued at the database's clock: the one `tokens_valid_after` (a revocation) is set by.
    claims = GuestClaims(tenant.id, tenant.slug, reservation_id, unit_id, issued_at=now)
    expires = token_expiry(check_out=datetime.combine(res_check_out, time(), tzinfo=UTC), ttl=ttl)
    opens = datetime.combine(res_check_in - timedelta(days=days_before), time(), tzinfo=UTC)
    return Login(
        issue_token(claims, secret=secret, expires_at=expires, not_before=opens),
        expires,
        guest_name,
        unit_name,
        res_check_in,
        res_check_out,
    )


@dataclass(frozen=True)
class ImportReport:
    """What an import wrote."""

    inserted: int
    updated: int


def _parse_rows(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in RESERVATION_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInput(f"line 1: missing column(s): {', '.join(missing)}")
    return [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]


async def unit_ids(conn: AsyncConn, *, tenant_id: int) -> dict[str, int]:
    """The hotel's units by slug and by name, both folded to lower case."""
    cur = await conn.execute("SELECT slug, name, id FROM units WHERE tenant_id = %s", (tenant_id,))
    units: dict[str, int] = {}
    for slug, name, unit_id in await cur.fetchall():
        units[slug.casefold()] = unit_id
        units.setdefault(name.casefold(), unit_id)
    return units


def check_row(row: dict[str, str], units: dict[str, int]) -> tuple[object, ...]:
    """One reservation (the CSV's columns, as text) as database values; InvalidInput
    naming everything wrong with it otherwise."""
    problems = []
    if not row["external_ref"]:
        problems.append("external_ref is empty")
    unit_id = units.get(row["unit"].casefold())
    if unit_id is None:
        problems.append(f"unknown unit {row['unit']!r}")
    if not row["guest_name"]:
        problems.append("guest_name is empty")
    if not re.fullmatch(r"[0-9]{4}", row["phone_last4"]):
        problems.append("phone_last4 must be exactly four digits")
    dates = []
    for column in ("check_in", "check_out"):
        try:
            dates.append(date.fromisoformat(row[column]))
        except ValueError:
            problems.append(f"{column} {row[column]!r} is not a date (YYYY-MM-DD)")
    if len(dates) == 2 and dates[1] <= dates[0]:
        problems.append("check_out must be after check_in")
    if row["status"] not in STATUSES:
        problems.append(f"status must be one of {', '.join(STATUSES)}")
    if problems:
        raise InvalidInput("; ".join(problems))
    return (
        row["external_ref"],
        unit_id,
        row["guest_name"],
        row["phone_last4"],
        dates[0],
        dates[1],
        row["status"],
    )


async def import_reservations(conn: AsyncConn, *, tenant: Tenant, csv_text: str) -> ImportReport:
    """Upsert a CSV of reservations in one statement; any bad row writes nothing at all."""
    rows = _parse_rows(csv_text)
    units = await unit_ids(conn, tenant_id=tenant.id)
    values: list[tuple[object, ...]] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        try:
            values.append(check_row(row, units))
        except InvalidInput as exc:
            errors.append(f"line {line}: {exc.message}")
        if row["external_ref"] in seen:
            errors.append(
                f"line {line}: external_ref {row['external_ref']!r} repeats line "
                f"{seen[row['external_ref']]}"
            )
        seen[row["external_ref"]] = line
    if errors:
        raise InvalidInput("; ".join(errors) + " (nothing was imported)")
    if not values:
        return ImportReport(0, 0)
    columns = list(zip(*values, strict=True))
    cur = await conn.execute(
        """INSERT INTO reservations (tenant_id, external_ref, unit_id, guest_name, phone_last4,
                                     check_in, check_out, status)
           SELECT %s, * FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::text[],
                                    %s::date[], %s::date[], %s::text[])
           ON CONFLICT (tenant_id, external_ref) DO UPDATE SET unit_id = excluded.unit_id,
               guest_name = excluded.guest_name, phone_last4 = excluded.phone_last4,
               check_in = excluded.check_in, check_out = excluded.check_out,
               status = excluded.status, updated_at = now()
           RETURNING (xmax = 0)""",
        (tenant.id, *[list(col) for col in columns]),
    )
    inserted = sum(1 for (fresh,) in await cur.fetchall() if fresh)
    return ImportReport(inserted=inserted, updated=len(values) - inserted)


async def revoke_tokens(
    conn: AsyncConn,
    *,
    tenant_id: int,
    external_ref: str | None = None,
    guest: GuestClaims | None = None,
) -> bool:
    """Refuse every token of one stay issued until now (by its reference, or the caller's own).

    With `guest`, only a token still valid may revoke (logout); False when nothing matched.
    """
    if (external_ref is None) == (guest is None):
        raise ValueError("name the stay by its reference or by the guest's token, not both")
    cur = await conn.execute(
        """UPDATE reservations SET tokens_valid_after = now(), updated_at = now()
           WHERE tenant_id = %(tenant)s
             AND (%(ref)s::text IS NULL OR external_ref = %(ref)s)
             AND (%(reservation)s::bigint IS NULL OR
                  (id = %(reservation)s AND unit_id = %(unit)s AND
                   to_timestamp(%(iat)s) >= coalesce(tokens_valid_after, '-infinity')))
           RETURNING id""",
        {
            "tenant": tenant_id,
            "ref": external_ref,
            "reservation": guest.reservation_id if guest else None,
            "unit": guest.unit_id if guest else None,
            "iat": guest.issued_at if guest else 0.0,
        },
    )
    return await cur.fetchone() is not None
