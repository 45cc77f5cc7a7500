"""The staff login throttle: a password is guessable, so guessing must be slow.

As the guest login's (`guests.throttle`): each attempt takes a slot, before the password
is checked, in the account's bucket (hotel and e-mail, from any address) and in the
client address's at that hotel; a login that succeeds gives its own slots back.
"""

from __future__ import annotations

from posada.core.config import Settings
from posada.limits.attempts import AttemptThrottle, Reservation
from posada.limits.buckets import Buckets, Limit


class StaffLoginThrottle:
    """Slots for one staff login attempt, keyed by account and by client address."""

    def __init__(self, buckets: Buckets, settings: Settings) -> None:
        self._attempts = AttemptThrottle(buckets, what="login attempts")
        self.account_limit = Limit(
            burst=settings.staff.login_burst,
            per_hour=settings.staff.login_per_hour,
            free=settings.staff.login_free,
            backoff_s=settings.login_backoff_s,
            backoff_max_s=settings.login_backoff_max_s,
        )
        self.address_limit = Limit(
            burst=settings.login_address_burst, per_hour=settings.login_address_per_hour
        )

    async def reserve(self, *, tenant_id: int, email: str, address: str) -> Reservation:
        """Take this attempt's slots; TooManyAttempts (429 with Retry-After) when one is full."""
        return await self._attempts.reserve(
            [
                (f"staff-login:account:{tenant_id}:{email.strip().lower()}", self.account_limit),
                (f"staff-login:address:{tenant_id}:{address}", self.address_limit),
            ]
        )

    async def succeeded(self, reservation: Reservation) -> None:
        """The password proved right: return its own slots."""
        await self._attempts.give_back(reservation)
