"""Conversations and their messages; every query names the tenant and the reservation."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from posada.db.pool import AsyncConn
from posada.errors import NotFound
from posada.guests.tokens import GuestClaims


async def record_guest_message(
    conn: AsyncConn, *, guest: GuestClaims, conversation_id: int | None, content: str
) -> int:
    """Store the guest's message (in a new conversation if none is given); return its conversation.

    One statement: the ownership check, the conversation and the message together.
    """
    cur = await conn.execute(
        """WITH created AS (
               INSERT INTO conversations (tenant_id, reservation_id)
               SELECT %(tenant)s, %(reservation)s WHERE %(conversation)s::bigint IS NULL
               RETURNING id),
           owned AS (
               UPDATE conversations SET updated_at = now()
               WHERE id = %(conversation)s AND tenant_id = %(tenant)s
                 AND reservation_id = %(reservation)s
               RETURNING id),
           target AS (SELECT id FROM created UNION ALL SELECT id FROM owned)
           INSERT INTO messages (conversation_id, tenant_id, role, content)
           SELECT id, %(tenant)s, 'guest', %(content)s FROM target
           RETURNING conversation_id""",
        {
            "tenant": guest.tenant_id,
            "reservation": guest.reservation_id,
            "conversation": conversation_id,
            "content": content,
        },
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound("no such conversation")
    return int(row[0])


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
