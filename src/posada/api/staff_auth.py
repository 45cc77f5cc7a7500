"""Who a staff request comes from: the session cookie, the CSRF token, the role.

`StaffDep` is any logged-in member of a hotel's staff; `ManagerDep` and `OwnerDep` need
that role or above (403 otherwise). A request that changes something (POST, PUT, PATCH,
DELETE) must also carry the session's CSRF token in `X-CSRF-Token` (403 otherwise).
The hotel is the session's: a route reads the tenant from here, never from the request.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from posada.api.deps import RuntimeDep
from posada.core import context
from posada.core.errors import Forbidden, NotAuthorized
from posada.staff.accounts import Role
from posada.staff.sessions import Session, find_session

COOKIE = "posada_staff"
CSRF_HEADER = "x-csrf-token"
_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def get_staff(request: Request, runtime: RuntimeDep) -> Session:
    """The live session the cookie names; 401 without one, 403 on a missing CSRF token."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise NotAuthorized("staff only: log in first")
    async with runtime.pool.connection() as conn:
        session = await find_session(conn, token=token)
    if session is None:
        raise NotAuthorized("the session has ended: log in again")
    if request.method in _CHANGES:
        given = request.headers.get(CSRF_HEADER, "").encode()
        if not secrets.compare_digest(given, session.csrf_token.encode()):
            raise Forbidden("missing or wrong X-CSRF-Token")
    stats = context.current()
    if stats is not None:
        stats.tenant_id, stats.tenant = session.member.tenant_id, session.tenant_slug
    return session


StaffDep = Annotated[Session, Depends(get_staff)]


def _at_least(role: Role) -> Callable[[Session], Awaitable[Session]]:
    async def check(session: StaffDep) -> Session:
        if not session.member.may(role):
            raise Forbidden(f"this needs the {role} role")
        return session

    check.__name__ = f"require_{role}"
    return check


ManagerDep = Annotated[Session, Depends(_at_least("manager"))]
OwnerDep = Annotated[Session, Depends(_at_least("owner"))]
