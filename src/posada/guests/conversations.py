"""Conversations and their messages; every query names the tenant and the reservation."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from posada.db.pool import AsyncConn
from posada.errors import NotAuthorized, NotFound
from posada.guests.tokens import GuestClaims


async def record_guest_message(
    conn: AsyncConn, *, guest: GuestClaims, conversation_id: int | None, content: str
) -> int:
    """Store the guest's message (in a new conversation if none is given); return its conversation.

    One statement checks that the token's reservation still holds (not cancelled, same
    unit: a token outlives an import that moves or cancels a stay), that the conversation
    is this guest's, and stores the message.
    """
    cur = await conn.execute(
        """WITH guest AS (
               SELECT id FROM reservations
               WHERE id = %(reservation)s AND tenant_id = %(tenant)s AND unit_id = %(unit)s
                 AND status <> 'cancelled'),
           created AS (
               INSERT INTO conversations (tenant_id, reservation_id)
               SELECT %(tenant)s, id FROM guest WHERE %(conversation)s::bigint IS NULL
               RETURNING id),
           owned AS (
               UPDATE conversations SET updated_at = now()
               WHERE id = %(conversation)s AND tenant_id = %(tenant)s
                 AND reservation_id = (SELECT id FROM guest)
               RETURNING id),
           stored AS (
               INSERT INTO messages (conversation_id, tenant_id, role, content)
               SELECT id, %(tenant)s, 'guest', %(content)s
               FROM (SELECT id FROM created UNION ALL SELECT id FROM owned) target
               RETURNING conversation_id)
           SELECT EXISTS (SELECT 1 FROM guest), (SELECT conversation_id FROM stored)""",
        {
            "tenant": guest.tenant_id,
            "reservation": guest.reservation_id,
            "unit": guest.unit_id,
            "conversation": conversation_id,
            "content": content,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    if not row[0]:
        raise NotAuthorized("this reservation is no longer valid; please log in again")
    if row[1] is None:
        raise NotFound("no such conversation")
    return int(row[1])


async def record_answer(
    conn: AsyncConn,
    *,
    tenant_id: int,
    conversation_id: int,
    content: str,
    layer: str,
    sources: list[dict[str, Any]],
    timings: dict[str, float],
    model: str | None = None,
) -> int:
    """Store the assistant's answer with what produced it; return its id."""
    cur = await conn.execute(
        """INSERT INTO messages (conversation_id, tenant_id, role, content, layer, model,
                                 sources, timings)
           VALUES (%s, %s, 'assistant', %s, %s, %s, %s, %s) RETURNING id""",
        (conversation_id, tenant_id, content, layer, model, Jsonb(sources), Jsonb(timings)),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])
