"""Counting attempts before the check they guard (guest logins now, staff logins later).

An attempt takes a slot in every bucket it names before the check runs, atomically, so a
burst of concurrent attempts cannot all pass a count they have not yet added to. An
attempt that proves right may give its own slots back; nothing ever clears a bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from posada.core.errors import TooManyAttempts
from posada.limits.buckets import Buckets, Decision, Limit


def wait_message(what: str, retry_after_s: int) -> str:
    """A plain sentence saying when to try again."""
    at = (datetime.now(UTC) + timedelta(seconds=retry_after_s)).strftime("%H:%M UTC")
    if retry_after_s < 90:
        return f"too many {what}; please try again in {retry_after_s} seconds"
    minutes = round(retry_after_s / 60)
    return f"too many {what}; please try again in {minutes} minutes (after {at})"


@dataclass
class Reservation:
    """The slots one attempt holds."""

    slots: list[tuple[str, Limit, Decision]] = field(default_factory=list)


class AttemptThrottle:
    """Reserve a slot on each key before an attempt; 429 (TooManyAttempts) when one is full."""

    def __init__(self, buckets: Buckets, *, what: str = "attempts") -> None:
        self._buckets = buckets
        self._what = what

    async def reserve(self, keys: Sequence[tuple[str, Limit]]) -> Reservation:
        """Take a slot on every key, or none (TooManyAttempts with the longest wait)."""
        held = Reservation()
        for key, limit in keys:
            decision = await self._buckets.take(key, limit)
            if not decision.granted:
                # Refused attempts are not counted against the other keys.
                await self.give_back(held)
                raise TooManyAttempts(
                    wait_message(self._what, decision.retry_after_s),
                    retry_after_s=decision.retry_after_s,
                )
            held.slots.append((key, limit, decision))
        return held

    async def give_back(self, reservation: Reservation) -> None:
        """Return this attempt's own slots (it proved right); no other attempt's."""
        for key, limit, decision in reservation.slots:
            await decision.store.give_back(key, limit)
        reservation.slots.clear()
