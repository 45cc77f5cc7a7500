"""The naive way of keeping a conversation: one statement per step (the benchmark's baseline).

posada stores a question, checks the stay and the conversation and reads the history in
one statement (`conversations.record_guest_message`). The system it replaces does each
step on its own round trip: the stay, the conversation's owner, the insert, the history,
the previous question again for follow-ups; and after the answer, the insert, a count
and an update. `conversation_store = stepwise` runs this module instead, so that the
benchmark measures the difference with the same data and the same answers.
"""

from __future__ import annotations

from typing import Any

from posada.core.errors import NotAuthorized, NotFound
from posada.db.pool import AsyncConn
from posada.guests.conversations import (
    STAY_GONE,
    STAY_HOLDS,
    Recorded,
    alternate_turns,
    record_answer,
    stay_params,
)
from posada.guests.tokens import GuestClaims


async def record_guest_message_stepwise(
    conn: AsyncConn,
    *,
    guest: GuestClaims,
    conversation_id: int | None,
    content: str,
    history_turns: int = 6,
) -> Recorded:
    """Store the guest's message as the naive system does: five or six round trips."""
    cur = await conn.execute(
        f"""SELECT t.name FROM reservations r JOIN tenants t ON t.id = r.tenant_id
           WHERE {STAY_HOLDS}""",  # noqa: S608 (constants only)
        stay_params(guest),
    )
    stay = await cur.fetchone()
    if stay is None:
        raise NotAuthorized(STAY_GONE)
    if conversation_id is None:
        cur = await conn.execute(
            "INSERT INTO conversations (tenant_id, reservation_id) VALUES (%s, %s) RETURNING id",
            (guest.tenant_id, guest.reservation_id),
        )
    else:
        cur = await conn.execute(
            """SELECT id FROM conversations
               WHERE id = %s AND tenant_id = %s AND reservation_id = %s""",
            (conversation_id, guest.tenant_id, guest.reservation_id),
        )
    owned = await cur.fetchone()
    if owned is None:
        raise NotFound("no such conversation")
    conversation = int(owned[0])
    await conn.execute(
        """INSERT INTO messages (conversation_id, tenant_id, role, content)
           VALUES (%s, %s, 'guest', %s)""",
        (conversation, guest.tenant_id, content),
    )
    cur = await conn.execute(
        """SELECT role, content FROM (
               SELECT id, role, content FROM messages
               WHERE conversation_id = %s AND tenant_id = %s
               ORDER BY id DESC LIMIT %s OFFSET 1) recent
           ORDER BY id""",
        (conversation, guest.tenant_id, history_turns),
    )
    rows: list[Any] = await cur.fetchall()
    # The follow-up read: the previous question once more, for the question rewrite.
    await conn.execute(
        """SELECT content FROM messages
           WHERE conversation_id = %s AND tenant_id = %s AND role = 'guest'
           ORDER BY id DESC LIMIT 1 OFFSET 1""",
        (conversation, guest.tenant_id),
    )
    return Recorded(conversation, str(stay[0]), alternate_turns(rows))


async def record_answer_stepwise(
    conn: AsyncConn, *, tenant_id: int, conversation_id: int, **answer: Any
) -> tuple[int | None, int]:
    """Store the answer, count the messages, touch the conversation; the answer's id and
    the count."""
    stored = await record_answer(
        conn, tenant_id=tenant_id, conversation_id=conversation_id, **answer
    )
    cur = await conn.execute(
        "SELECT count(*) FROM messages WHERE conversation_id = %s AND tenant_id = %s",
        (conversation_id, tenant_id),
    )
    row = await cur.fetchone()
    await conn.execute(
        "UPDATE conversations SET updated_at = now() WHERE id = %s AND tenant_id = %s",
        (conversation_id, tenant_id),
    )
    return stored, int(row[0]) if row else 0
