"""Guest login."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from posada.deps import RuntimeDep
from posada.errors import NotAuthorized, NotFound, TooManyAttempts
from posada.guests.service import log_in
from posada.guests.throttle import LoginThrottle
from posada.openapi import BODY, COMMON, responses
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
async def login(body: LoginRequest, runtime: RuntimeDep, request: Request) -> LoginResponse:
    """Exchange a reservation's check-in date and phone digits for a token."""
    settings = runtime.settings
    throttle: LoginThrottle = request.app.state.login_throttle
    key = f"{body.tenant}|{request.client.host if request.client else '?'}"
    throttle.check(key)
    async with runtime.pool.connection() as conn:
        tenant = await get_tenant(conn, slug=body.tenant)
        try:
            result = await log_in(
                conn,
                tenant=tenant,
                check_in=body.check_in,
                phone_last4=body.phone_last4,
                secret=settings.signing_secret,
                ttl=timedelta(hours=settings.jwt_ttl_hours),
                days_before=settings.login_days_before,
            )
        except NotAuthorized:
            throttle.failed(key)
            raise
    throttle.succeeded(key)
    return LoginResponse(
        token=result.token,
        expires_at=result.expires_at,
        guest_name=result.guest_name,
        unit=result.unit_name,
        check_in=result.check_in,
        check_out=result.check_out,
    )
