"""Staff sessions: a random token in an HttpOnly cookie, kept server-side as its hash.

Each session also has a CSRF token, given to the page at login and on `GET /api/staff/me`;
every state-changing staff request must send it back in `X-CSRF-Token` (a cookie alone,
which another site's form would carry along, is not enough).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from posada.db.pool import AsyncConn
from posada.staff.accounts import Member, Role


@dataclass(frozen=True)
class Session:
    """A logged-in member and what their requests must carry."""

    member: Member
    tenant_slug: str
    csrf_token: str
    expires_at: datetime
    token: str  # the cookie's own (kept in memory only: the table holds its hash)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def open_session(
    conn: AsyncConn, *, member: Member, lifetime: timedelta
) -> tuple[str, str, datetime]:
    """A new session for `member`: (cookie token, CSRF token, expiry)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    cur = await conn.execute(
        """INSERT INTO staff_sessions (token_hash, staff_id, tenant_id, csrf_token, expires_at)
           VALUES (%s, %s, %s, %s, now() + %s) RETURNING expires_at""",
        (_digest(token), member.id, member.tenant_id, csrf, lifetime),
    )
    row = await cur.fetchone()
    assert row is not None
    return token, csrf, row[0]


async def find_session(conn: AsyncConn, *, token: str) -> Session | None:
    """The live session of this cookie token, with its member as they are now."""
    cur = await conn.execute(
        """SELECT m.id, m.tenant_id, m.email, m.role, t.slug, s.csrf_token, s.expires_at
           FROM staff_sessions s JOIN staff m ON m.id = s.staff_id
                JOIN tenants t ON t.id = m.tenant_id
           WHERE s.token_hash = %s AND s.expires_at > now()""",
        (_digest(token),),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    member = Member(int(row[0]), int(row[1]), str(row[2]), cast(Role, row[3]))
    return Session(member, str(row[4]), str(row[5]), row[6], token)


async def close_session(conn: AsyncConn, *, token: str) -> None:
    """End this session (logout); expired ones of anyone go with it."""
    await conn.execute(
        "DELETE FROM staff_sessions WHERE token_hash = %s OR expires_at <= now()",
        (_digest(token),),
    )
