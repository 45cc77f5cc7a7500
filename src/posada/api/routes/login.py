"""Guest login and logout."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from posada.api.deps import ClientAddressDep, GuestDep, LoginThrottleDep, RuntimeDep
from posada.api.openapi import BODY, COMMON, responses
from posada.core.errors import NotAuthorized, NotFound, TooManyAttempts
from posada.guests.conversations import STAY_GONE
from posada.guests.service import log_in, revoke_tokens
from posada.tenants.service import SLUG_MAX, SLUG_PATTERN, get_tenant

router = APIRouter(prefix="/api/guest", tags=["guest"])


class LoginRequest(BaseModel):
    """A guest proves their stay with its check-in date and their phone's last four digits."""

    tenant: str = Field(min_length=1, max_length=SLUG_MAX, pattern=SLUG_PATTERN)
    check_in: date
    phone_last4: str = Field(pattern=r"^[0-9]{4}$")


class LoginResponse(BaseModel):
    """The token to send as `Authorization: Bearer ...`."""

    token: str
    token_type: str = "bearer"  # noqa: S105 - the scheme name, not a secret
    expires_at: datetime
    guest_name: str
    unit: str
    check_in: date
    check_out: date


@router.post(
    "/login", responses=responses(NotAuthorized, NotFound, TooManyAttempts, *BODY, *COMMON)
)
async def login(
    body: LoginRequest,
    runtime: RuntimeDep,
    throttle: LoginThrottleDep,
    address: ClientAddressDep,
) -> LoginResponse:
    """Exchange a reservation's check-in date and phone digits for a token."""
    settings = runtime.settings
    async with runtime.pool.connection() as conn:
        tenant = await get_tenant(conn, slug=body.tenant)
    # Counted before the lookup, so that concurrent guesses cannot pass a count together.
    slots = await throttle.reserve(tenant_id=tenant.id, check_in=body.check_in, address=address)
    async with runtime.pool.connection() as conn:
        result = await log_in(
            conn,
            tenant=tenant,
            check_in=body.check_in,
            phone_last4=body.phone_last4,
            secret=settings.signing_secret,
            ttl=timedelta(hours=settings.jwt_ttl_hours),
            days_before=settings.login_days_before,
        )
    await throttle.succeeded(slots)
    return LoginResponse(
        token=result.token,
        expires_at=result.expires_at,
        guest_name=result.guest_name,
        unit=result.unit_name,
        check_in=result.check_in,
        check_out=result.check_out,
    )


@router.post("/logout", status_code=204, responses=responses(NotAuthorized, *COMMON, invalid=False))
async def logout(guest: GuestDep, runtime: RuntimeDep) -> Response:
    """Revoke every token of the caller's stay issued until now (this one included)."""
    async with runtime.pool.connection() as conn:
        revoked = await revoke_tokens(conn, tenant_id=guest.tenant_id, guest=guest)
    if not revoked:
        raise NotAuthorized(STAY_GONE)
    return Response(status_code=204)
