"""Chat rate limits: requests per stay and per address, LLM calls per conversation, streams.

Requests and LLM calls are counted in Redis buckets when Redis is configured, so every
replica counts the same; without Redis (or while it is down) each process counts its own,
so with N processes a guest may get up to N times the rate. Open streams (answers being
written, and the live event streams of a stay or a staff member) are counted in each
process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Annotated, Any

from fastapi import Depends, Request

from posada.api.deps import ClientAddressDep, GuestDep
from posada.core.config import Settings
from posada.core.errors import TooManyAttempts
from posada.guests.tokens import GuestClaims
from posada.limits.attempts import AttemptThrottle
from posada.limits.buckets import Buckets, Limit


class ChatLimits:
    """The limits every chat request passes before it is answered."""

    def __init__(self, buckets: Buckets, settings: Settings) -> None:
        self._buckets = buckets
        self._requests = AttemptThrottle(buckets, what="requests")
        self.token_limit = Limit(
            burst=settings.chat_token_burst, per_hour=settings.chat_token_per_minute * 60
        )
        self.address_limit = Limit(
            burst=settings.chat_address_burst, per_hour=settings.chat_address_per_minute * 60
        )
        per_hour = settings.chat_llm_per_conversation_hour
        self.llm_limit = Limit(burst=per_hour, per_hour=per_hour)
        self._max_streams = settings.chat_streams_per_token
        self.reject_delay_s = settings.chat_reject_delay_ms / 1000
        self._streams: dict[Hashable, int] = {}
        self._max_live = settings.live_streams_per_holder
        self._live: dict[Hashable, int] = {}

    async def admit(self, *, guest: GuestClaims, address: str) -> None:
        """Count one request of this stay and address; TooManyAttempts (429) past either."""
        await self._requests.reserve(
            [
                (f"chat:stay:{guest.tenant_id}:{guest.reservation_id}", self.token_limit),
                (f"chat:address:{guest.tenant_id}:{address}", self.address_limit),
            ]
        )

    async def llm_allowed(self, *, tenant_id: int, conversation_id: int) -> bool:
        """Whether this conversation may have one more LLM answer this hour (and count it)."""
        decision = await self._buckets.take(
            f"llm:conv:{tenant_id}:{conversation_id}", self.llm_limit
        )
        return decision.granted

    def open_stream(self, guest: GuestClaims) -> StreamSlot:
        """Hold one of the stay's open streams; TooManyAttempts (429) past the bound."""
        key = (guest.tenant_id, guest.reservation_id)
        if self._streams.get(key, 0) >= self._max_streams:
            raise TooManyAttempts(
                f"you already have {self._max_streams} answers streaming; "
                "please try again in a few seconds",
                retry_after_s=2,
            )
        self._streams[key] = self._streams.get(key, 0) + 1
        return StreamSlot(self._streams, key)

    def open_live(self, holder: Hashable) -> StreamSlot:
        """Hold one of a stay's or a staff member's live event streams; 429 past the bound."""
        if self._live.get(holder, 0) >= self._max_live:
            raise TooManyAttempts(
                f"{self._max_live} live streams are open already; close a tab and try again",
                retry_after_s=5,
            )
        self._live[holder] = self._live.get(holder, 0) + 1
        return StreamSlot(self._live, holder)


class StreamSlot:
    """One open stream; `release` may be called any number of times, and counts once."""

    def __init__(self, counts: dict[Any, int], key: Hashable) -> None:
        self._counts = counts
        self._key = key
        self._held = True

    def release(self) -> None:
        """Give the slot back."""
        if not self._held:
            return
        self._held = False
        left = self._counts.get(self._key, 1) - 1
        if left > 0:
            self._counts[self._key] = left
        else:
            self._counts.pop(self._key, None)


async def get_chat_limits(request: Request) -> ChatLimits:
    """The chat limits the app installed with its runtime (here, not in posada.api.deps,
    which this module imports)."""
    limits: ChatLimits = request.app.state.chat_limits
    return limits


ChatLimitsDep = Annotated[ChatLimits, Depends(get_chat_limits)]


async def admitted_guest(
    guest: GuestDep, limits: ChatLimitsDep, address: ClientAddressDep
) -> GuestClaims:
    """The verified guest, once their request is within the chat rate limits."""
    try:
        await limits.admit(guest=guest, address=address)
    except TooManyAttempts:
        # A client that ignores Retry-After and asks again at once would spend the other
        # guests' CPU on its 429s; each waits a little (a sleeping request costs nothing).
        await asyncio.sleep(limits.reject_delay_s)
        raise
    return guest


AdmittedGuestDep = Annotated[GuestClaims, Depends(admitted_guest)]
