"""Signed guest tokens (JWT, HS256) naming the tenant, the reservation and the unit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from posada.errors import NotAuthorized

_ALGORITHM = "HS256"
_AUDIENCE = "posada-guest"


@dataclass(frozen=True)
class GuestClaims:
    """Who a verified token speaks for."""

    tenant_id: int
    tenant_slug: str
    reservation_id: int
    unit_id: int


def issue_token(claims: GuestClaims, *, secret: str, expires_at: datetime) -> str:
    """A token valid until `expires_at`."""
    payload = {
        "sub": str(claims.reservation_id),
        "aud": _AUDIENCE,
        "tenant_id": claims.tenant_id,
        "tenant": claims.tenant_slug,
        "unit_id": claims.unit_id,
        "iat": datetime.now(UTC),
        "exp": expires_at,
    }
    return jwt.encode(payload, secret, algorithm=_ALGORITHM)


def verify_token(token: str, *, secret: str) -> GuestClaims:
    """The claims of a valid token; NotAuthorized for a missing, expired or forged one."""
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            options={"require": ["exp", "sub", "aud"]},
        )
        return GuestClaims(
            tenant_id=int(payload["tenant_id"]),
            tenant_slug=str(payload["tenant"]),
            reservation_id=int(payload["sub"]),
            unit_id=int(payload["unit_id"]),
        )
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthorized("your session has expired; please log in again") from exc
    except (jwt.InvalidTokenError, KeyError, TypeError, ValueError) as exc:
        raise NotAuthorized("invalid token") from exc


def token_expiry(*, check_out: datetime, ttl: timedelta) -> datetime:
    """The sooner of the token lifetime and noon the day after check-out."""
    return min(datetime.now(UTC) + ttl, check_out + timedelta(days=1, hours=12))
