"""Signed guest tokens (JWT, HS256) naming the tenant, the reservation and the unit.

`iat` is kept to the microsecond (a JSON number may have a fraction): a stay's tokens are
revoked by moving its `tokens_valid_after` past their `iat`, and a token issued in the
same second just after a revocation must still be good.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from posada.core.errors import NotAuthorized

_ALGORITHM = "HS256"
_AUDIENCE = "posada-guest"


@dataclass(frozen=True)
class GuestClaims:
    """Who a verified token speaks for."""

    tenant_id: int
    tenant_slug: str
    reservation_id: int
    unit_id: int
    issued_at: float = 0.0  # seconds since the epoch; 0 for claims no token carried


def issue_token(
    claims: GuestClaims,
    *,
    secret: str,
    expires_at: datetime,
    not_before: datetime | None = None,
) -> str:
    """A token valid from `not_before` (default: now) until `expires_at`, issued at
    `claims.issued_at` (default: now)."""
    issued = claims.issued_at or datetime.now(UTC).timestamp()
    payload: dict[str, object] = {
        "sub": str(claims.reservation_id),
        "aud": _AUDIENCE,
        "tenant_id": claims.tenant_id,
        "tenant": claims.tenant_slug,
        "unit_id": claims.unit_id,
        "iat": round(issued, 6),
        "exp": expires_at,
    }
    if not_before is not None:
        payload["nbf"] = min(not_before.timestamp(), issued)
    return jwt.encode(payload, secret, algorithm=_ALGORITHM)


def verify_token(token: str, *, secret: str) -> GuestClaims:
    """The claims of a valid token; NotAuthorized for a missing, expired or forged one."""
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            options={"require": ["exp", "sub", "aud", "iat"]},
        )
        return GuestClaims(
            tenant_id=int(payload["tenant_id"]),
            tenant_slug=str(payload["tenant"]),
            reservation_id=int(payload["sub"]),
            unit_id=int(payload["unit_id"]),
            issued_at=float(payload["iat"]),
        )
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthorized("your session has expired; please log in again") from exc
    except jwt.ImmatureSignatureError as exc:
        raise NotAuthorized("this stay cannot be used yet; please log in again later") from exc
    except (jwt.InvalidTokenError, KeyError, TypeError, ValueError) as exc:
        raise NotAuthorized("invalid token") from exc


def token_expiry(*, check_out: datetime, ttl: timedelta) -> datetime:
    """The sooner of the token lifetime and noon the day after check-out."""
    return min(datetime.now(UTC) + ttl, check_out + timedelta(days=1, hours=12))
