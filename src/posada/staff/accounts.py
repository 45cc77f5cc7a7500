"""Staff accounts: one hotel's members, each with a role and an argon2 password hash.

Roles nest: reception sees reservations, conversations and handoffs; a manager also the
knowledge and the reports; an owner also the staff accounts. Every statement takes the
tenant, so one hotel's members are never found from another's.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Literal, cast

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from posada.core.errors import InvalidInput, NotAuthorized, NotFound
from posada.db.pool import AsyncConn

Role = Literal["reception", "manager", "owner"]
ROLES: tuple[Role, ...] = ("reception", "manager", "owner")  # least to most
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_HASHER = PasswordHasher()  # argon2id, the library's defaults (RFC 9106's second choice)
# Checked when the e-mail is unknown, so that a wrong e-mail costs as long as a wrong
# password and the time says nothing of which one was wrong.
_UNKNOWN = _HASHER.hash("posada: no such member")
WRONG = "wrong e-mail or password"


@dataclass(frozen=True)
class Member:
    """A member of a hotel's staff."""

    id: int
    tenant_id: int
    email: str
    role: Role

    def may(self, role: Role) -> bool:
        """Whether this member's role includes `role`'s rights."""
        return ROLES.index(self.role) >= ROLES.index(role)


def normal_email(email: str) -> str:
    """The e-mail as it is stored and matched: trimmed and lower case; refused if not one."""
    folded = email.strip().lower()
    if not _EMAIL.match(folded) or len(folded) > 254:
        raise InvalidInput(f"{email!r} is not an e-mail address")
    return folded


async def add_member(
    conn: AsyncConn, *, tenant_id: int, email: str, role: Role, password: str, min_length: int
) -> Member:
    """Add a member to the hotel's staff; InvalidInput if the e-mail is taken there."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    if len(password) < min_length:
        raise InvalidInput(f"the password needs at least {min_length} characters")
    address = normal_email(email)
    digest = await asyncio.to_thread(_HASHER.hash, password)
    try:
        cur = await conn.execute(
            """INSERT INTO staff (tenant_id, email, role, password_hash)
               VALUES (%s, %s, %s, %s) RETURNING id""",
            (tenant_id, address, role, digest),
        )
    except psycopg.errors.UniqueViolation as exc:
        raise InvalidInput(f"{address} is already on this hotel's staff") from exc
    row = await cur.fetchone()
    assert row is not None
    return Member(int(row[0]), tenant_id, address, role)


async def list_members(conn: AsyncConn, *, tenant_id: int) -> list[Member]:
    """The hotel's staff, by e-mail."""
    cur = await conn.execute(
        "SELECT id, tenant_id, email, role FROM staff WHERE tenant_id = %s ORDER BY email",
        (tenant_id,),
    )
    return [Member(int(i), int(t), str(e), cast(Role, r)) for i, t, e, r in await cur.fetchall()]


async def remove_member(conn: AsyncConn, *, tenant_id: int, email: str) -> None:
    """Remove a member (their sessions end with them); NotFound if not on this staff."""
    cur = await conn.execute(
        "DELETE FROM staff WHERE tenant_id = %s AND email = %s RETURNING id",
        (tenant_id, normal_email(email)),
    )
    if await cur.fetchone() is None:
        raise NotFound(f"{email} is not on this hotel's staff")


async def check_password(conn: AsyncConn, *, tenant_id: int, email: str, password: str) -> Member:
    """The member these credentials name; NotAuthorized, saying nothing of which was wrong."""
    try:
        address = normal_email(email)
    except InvalidInput:
        address = ""
    cur = await conn.execute(
        "SELECT id, role, password_hash FROM staff WHERE tenant_id = %s AND email = %s",
        (tenant_id, address),
    )
    row = await cur.fetchone()
    digest = str(row[2]) if row is not None else _UNKNOWN
    try:
        await asyncio.to_thread(_HASHER.verify, digest, password)
    except (VerificationError, InvalidHashError) as exc:
        raise NotAuthorized(WRONG) from exc
    if row is None:
        raise NotAuthorized(WRONG)
    return Member(int(row[0]), tenant_id, address, cast(Role, row[1]))
