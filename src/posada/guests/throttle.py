"""The guest login throttle: four phone digits are guessable, so guessing must be slow.

Every attempt takes a slot, before the lookup, in two buckets (`limits.buckets`) shared by
every process and replica (Redis when configured, else PostgreSQL; PostgreSQL while Redis
is down; never this process's memory):

- the stay: hotel and check-in date, the thing being guessed. However many addresses an
  attacker has, one check-in date gets at most `burst + per_hour * T` guesses in T hours,
  the later ones after a doubling back-off;
- the client address at that hotel: generous, because a hotel's guests often share its
  one public Wi-Fi address; it bounds how many dates one address can sweep.

A login that succeeds gives back its own two slots, and nothing else: another stay's
failures (or this date's earlier ones) still count.
"""

from __future__ import annotations

from datetime import date

from posada.core.config import Settings
from posada.limits.attempts import AttemptThrottle, Reservation
from posada.limits.buckets import Buckets, Limit


class LoginThrottle:
    """Slots for one guest login attempt, keyed by stay and by client address."""

    def __init__(self, buckets: Buckets, settings: Settings) -> None:
        self._attempts = AttemptThrottle(buckets, what="login attempts")
        self.stay_limit = Limit(
            burst=settings.login_stay_burst,
            per_hour=settings.login_stay_per_hour,
            free=settings.login_stay_free,
            backoff_s=settings.login_backoff_s,
            backoff_max_s=settings.login_backoff_max_s,
        )
        self.address_limit = Limit(
            burst=settings.login_address_burst, per_hour=settings.login_address_per_hour
        )

    async def reserve(self, *, tenant_id: int, check_in: date, address: str) -> Reservation:
        """Take this attempt's slots; TooManyAttempts (429 with Retry-After) when one is full."""
        return await self._attempts.reserve(
            [
                (f"login:stay:{tenant_id}:{check_in.isoformat()}", self.stay_limit),
                (f"login:address:{tenant_id}:{address}", self.address_limit),
            ]
        )

    async def succeeded(self, reservation: Reservation) -> None:
        """The login proved right: return its own slots."""
        await self._attempts.give_back(reservation)
