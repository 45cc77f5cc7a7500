"""The guest's thumbs on an answer, which the staff's report and inbox read.

Only an answer (an assistant message) in one of this guest's own conversations, while the
stay still holds, in one statement; anything else is NotFound, another guest's answer of
the same hotel included.
"""

from __future__ import annotations

from posada.core.errors import NotAuthorized, NotFound
from posada.db.pool import AsyncConn
from posada.guests.conversations import STAY_GONE, STAY_HOLDS, stay_params
from posada.guests.tokens import GuestClaims

_MARK = f"""WITH guest AS (SELECT r.id FROM reservations r WHERE {STAY_HOLDS}),
marked AS (
    UPDATE messages m SET feedback = %(feedback)s
    FROM conversations c
    WHERE m.id = %(message)s AND m.tenant_id = %(tenant)s AND m.role = 'assistant'
      AND c.id = m.conversation_id AND c.tenant_id = %(tenant)s
      AND c.reservation_id = (SELECT id FROM guest)
    RETURNING m.id)
SELECT EXISTS (SELECT 1 FROM guest), EXISTS (SELECT 1 FROM marked)"""  # noqa: S608 (constants only)


async def mark_answer(
    conn: AsyncConn, *, guest: GuestClaims, message_id: int, helpful: bool
) -> None:
    """Record whether the guest found an answer helpful (a later mark replaces it)."""
    cur = await conn.execute(
        _MARK, {**stay_params(guest), "message": message_id, "feedback": 1 if helpful else -1}
    )
    row = await cur.fetchone()
    assert row is not None
    if not row[0]:
        raise NotAuthorized(STAY_GONE)
    if not row[1]:
        raise NotFound("no such answer in your conversations")
