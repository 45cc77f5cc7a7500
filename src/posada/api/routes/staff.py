"""Staff login, logout, who is logged in, and the hotel's staff accounts (owners)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, Field

from posada.api.deps import ClientAddressDep, RuntimeDep, SettingsDep, part
from posada.api.openapi import BODY, COMMON, responses
from posada.api.staff_auth import COOKIE, OwnerDep, StaffDep
from posada.core.config import Settings
from posada.core.errors import Forbidden, InvalidInput, NotAuthorized, NotFound, TooManyAttempts
from posada.staff.accounts import (
    WRONG,
    Member,
    Role,
    add_member,
    check_password,
    list_members,
    remove_member,
)
from posada.staff.sessions import Session, close_session, open_session
from posada.staff.throttle import StaffLoginThrottle
from posada.tenants.service import SLUG_MAX, SLUG_PATTERN, get_tenant

router = APIRouter(prefix="/api/staff", tags=["staff"])
ThrottleDep = Annotated[
    StaffLoginThrottle, Depends(part("staff_login_throttle", StaffLoginThrottle))
]


class StaffLogin(BaseModel):
    """A member's hotel, e-mail and password."""

    tenant: str = Field(min_length=1, max_length=SLUG_MAX, pattern=SLUG_PATTERN)
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class MemberOut(BaseModel):
    """A member of the hotel's staff."""

    email: str
    role: Role


class SessionOut(MemberOut):
    """Who is logged in; send `csrf_token` as `X-CSRF-Token` with every change."""

    tenant: str
    csrf_token: str
    expires_at: datetime


class NewMember(BaseModel):
    """An account to add to the hotel's staff."""

    email: str = Field(min_length=3, max_length=254)
    role: Role
    password: str = Field(min_length=1, max_length=1024)


def _cookie_flags(settings: Settings) -> dict[str, Any]:
    """The session cookie's flags, the same when it is set and when it is cleared."""
    return {"httponly": True, "samesite": "strict", "secure": settings.env != "dev", "path": "/"}


def _out(member: Member) -> MemberOut:
    return MemberOut(email=member.email, role=member.role)


def _session_out(session: Session) -> SessionOut:
    member = session.member
    return SessionOut(
        email=member.email,
        role=member.role,
        tenant=session.tenant_slug,
        csrf_token=session.csrf_token,
        expires_at=session.expires_at,
    )


@router.post("/login", responses=responses(NotAuthorized, TooManyAttempts, *BODY, *COMMON))
async def staff_login(
    body: StaffLogin,
    runtime: RuntimeDep,
    throttle: ThrottleDep,
    address: ClientAddressDep,
    response: Response,
) -> SessionOut:
    """Log a member in: a session cookie (HttpOnly, SameSite=Strict) and its CSRF token."""
    settings = runtime.settings
    async with runtime.pool.connection() as conn:
        try:
            tenant = await get_tenant(conn, slug=body.tenant)
        except NotFound as exc:
            raise NotAuthorized(WRONG) from exc
    slots = await throttle.reserve(tenant_id=tenant.id, email=body.email, address=address)
    async with runtime.pool.connection() as conn:
        member = await check_password(
            conn, tenant_id=tenant.id, email=body.email, password=body.password
        )
        lifetime = timedelta(hours=settings.staff.session_hours)
        token, csrf, expires = await open_session(conn, member=member, lifetime=lifetime)
    await throttle.succeeded(slots)
    response.set_cookie(
        COOKIE, token, max_age=int(lifetime.total_seconds()), **_cookie_flags(settings)
    )
    return _session_out(Session(member, tenant.slug, csrf, expires, token))


@router.post("/logout", status_code=204, responses=responses(NotAuthorized, Forbidden, *COMMON))
async def staff_logout(session: StaffDep, runtime: RuntimeDep, settings: SettingsDep) -> Response:
    """End this session; the cookie is cleared."""
    async with runtime.pool.connection() as conn:
        await close_session(conn, token=session.token)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, **_cookie_flags(settings))
    return response


@router.get("/me", responses=responses(NotAuthorized, *COMMON))
async def staff_me(session: StaffDep) -> SessionOut:
    """Who is logged in, and the CSRF token (a reloaded page asks here)."""
    return _session_out(session)


@router.get("/accounts", responses=responses(NotAuthorized, Forbidden, *COMMON))
async def staff_accounts(session: OwnerDep, runtime: RuntimeDep) -> list[MemberOut]:
    """The hotel's staff (owners only)."""
    async with runtime.pool.connection() as conn:
        members = await list_members(conn, tenant_id=session.member.tenant_id)
    return [_out(m) for m in members]


@router.post(
    "/accounts",
    status_code=201,
    responses=responses(NotAuthorized, Forbidden, *BODY, *COMMON),
)
async def staff_add_account(body: NewMember, session: OwnerDep, runtime: RuntimeDep) -> MemberOut:
    """Add a member to the hotel's staff (owners only)."""
    async with runtime.pool.connection() as conn:
        member = await add_member(
            conn,
            tenant_id=session.member.tenant_id,
            email=body.email,
            role=body.role,
            password=body.password,
            min_length=runtime.settings.staff.password_min_length,
        )
    return _out(member)


@router.delete(
    "/accounts/{email}",
    status_code=204,
    responses=responses(NotAuthorized, Forbidden, NotFound, *COMMON),
)
async def staff_remove_account(
    email: Annotated[str, Path(max_length=254)], session: OwnerDep, runtime: RuntimeDep
) -> Response:
    """Remove a member of the hotel's staff (owners only; not yourself)."""
    if email.strip().lower() == session.member.email:
        raise InvalidInput("you cannot remove yourself; another owner can")
    async with runtime.pool.connection() as conn:
        await remove_member(conn, tenant_id=session.member.tenant_id, email=email)
    return Response(status_code=204)
