"""A person instead of posada: the guest asks for one, staff replies, staff hands back.

A conversation's `handoff` is NULL (posada answers), 'waiting' (the guest asked for a
person; none has replied yet) or 'staff' (a person has it). While it is set, posada stores
the guest's messages and does not answer them (`guests.conversations` reads the state in
the statement that stores the question). Each change stores its message ('notice' from
posada, 'staff' from a person) and tells the live streams (`guests.live`) in the same
statement; the streams read what changed back with the hotel (and the stay) as parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from posada.core.errors import NotAuthorized, NotFound
from posada.core.language import Language, detect_language
from posada.db.pool import AsyncConn
from posada.guests.conversations import STAY_GONE, STAY_HOLDS, check_reads, stay_params
from posada.guests.live import notify_sql
from posada.guests.tokens import GuestClaims

LIVE_ROWS = 200  # messages a stream reads at once (a reconnect after a long absence loops)


@dataclass(frozen=True)
class Handoff:
    """The conversation asked about, its state now, and the notice stored (None: it was
    already with a person, so nothing more was said)."""

    conversation_id: int
    state: str
    notice: dict[str, Any] | None


def message_out(row: tuple[Any, ...]) -> dict[str, Any]:
    """(id, role, content, created_at) as the streams and the handoff route give it."""
    created: datetime = row[3]
    return {"id": row[0], "role": row[1], "content": row[2], "created_at": created.isoformat()}


async def request_handoff(
    conn: AsyncConn,
    *,
    guest: GuestClaims,
    conversation_id: int | None,
    notice: str,
    question: str | None = None,
) -> Handoff:
    """Ask for a person in the guest's conversation (a new one if None), in one statement.

    The stay's and the conversation's checks, the guest's `question` stored (when it came
    as a message), the state set to 'waiting' and `notice` stored unless a handoff was
    already under way, and the live streams told.
    """
    cur = await conn.execute(
        f"""WITH guest AS (SELECT r.id FROM reservations r WHERE {STAY_HOLDS}),
           created AS (
               INSERT INTO conversations (tenant_id, reservation_id, handoff, handoff_at)
               SELECT %(tenant)s, id, 'waiting', now() FROM guest
               WHERE %(conversation)s::bigint IS NULL
               RETURNING id, NULL::text AS before),
           locked AS (
               SELECT id, handoff FROM conversations
               WHERE id = %(conversation)s AND tenant_id = %(tenant)s
                 AND reservation_id = (SELECT id FROM guest)
               FOR UPDATE),
           owned AS (
               UPDATE conversations c
               SET handoff = coalesce(c.handoff, 'waiting'), updated_at = now(),
                   handoff_at = CASE WHEN c.handoff IS NULL THEN now() ELSE c.handoff_at END
               FROM locked WHERE c.id = locked.id
               RETURNING c.id, locked.handoff AS before),
           target AS (SELECT * FROM created UNION ALL SELECT * FROM owned),
           stored AS (
               INSERT INTO messages (conversation_id, tenant_id, role, content, layer)
               SELECT target.id, %(tenant)s, m.role, m.content, m.layer
               FROM target, (VALUES (1, 'guest', %(question)s::text, NULL),
                                    (2, 'notice', %(notice)s::text, 'handoff'))
                            AS m(n, role, content, layer)
               WHERE (m.n = 1 AND m.content IS NOT NULL) OR (m.n = 2 AND target.before IS NULL)
               ORDER BY m.n
               RETURNING id, role, content, created_at)
           SELECT EXISTS (SELECT 1 FROM guest), t.id, coalesce(t.before, 'waiting'),
                  n.id, n.role, n.content, n.created_at,
                  (SELECT {notify_sql("id", "SELECT string_agg(id::text, ',') FROM stored")}
                   FROM target)
           FROM (SELECT 1) one
           LEFT JOIN target t ON true
           LEFT JOIN stored n ON n.role = 'notice'""",  # noqa: S608 (constants only)
        {**stay_params(guest), "conversation": conversation_id, "question": question}
        | {"notice": notice},
    )
    row = await cur.fetchone()
    assert row is not None
    if not row[0]:
        raise NotAuthorized(STAY_GONE)
    if row[1] is None:
        raise NotFound("no such conversation")
    told = message_out(row[3:7]) if row[3] is not None else None
    return Handoff(int(row[1]), str(row[2]), told)


@dataclass(frozen=True)
class Live:
    """What a guest's stream sends next: messages after the last sent, the state, and the
    newest message id (where a stream opened without `after` starts)."""

    messages: list[dict[str, Any]]
    handoff: str | None
    latest: int


async def read_live(
    conn: AsyncConn,
    *,
    guest: GuestClaims,
    conversation_id: int,
    after: int | None,
    also: list[int],
) -> Live:
    """The guest's conversation's messages after `after` (None: none, only the newest id)
    and those of `also` (ids notified out of order), oldest first; with the stay's and the
    conversation's checks (401, 404) in the same statement."""
    cur = await conn.execute(
        f"""WITH guest AS (SELECT r.id FROM reservations r WHERE {STAY_HOLDS})
           SELECT EXISTS (SELECT 1 FROM guest), c.id, c.handoff,
                  (SELECT max(id) FROM messages WHERE conversation_id = c.id),
                  m.id, m.role, m.content, m.created_at
           FROM (SELECT 1) one
           LEFT JOIN conversations c
             ON c.id = %(conversation)s AND c.tenant_id = %(tenant)s
            AND c.reservation_id = (SELECT id FROM guest)
           LEFT JOIN LATERAL (
               SELECT * FROM messages m
               WHERE m.conversation_id = c.id AND m.tenant_id = %(tenant)s
                 AND (m.id > %(after)s OR m.id = ANY(%(also)s))
               ORDER BY m.id LIMIT %(limit)s) m ON true
           ORDER BY m.id""",  # noqa: S608 (constants only)
        {
            **stay_params(guest),
            "conversation": conversation_id,
            "after": after,
            "also": also,
            "limit": LIVE_ROWS,
        },
    )
    rows = await cur.fetchall()
    check_reads(rows)
    messages = [message_out(r[4:8]) for r in rows if r[4] is not None]
    return Live(messages, rows[0][2], int(rows[0][3] or 0))


async def reply(
    conn: AsyncConn, *, tenant_id: int, staff_id: int, conversation_id: int, text: str
) -> dict[str, Any]:
    """A staff member's reply, stored with who wrote it; the conversation is theirs now
    ('staff'), and the live streams are told. NotFound if it is not this hotel's."""
    cur = await conn.execute(
        f"""WITH taken AS (
               UPDATE conversations
               SET handoff = 'staff', updated_at = now(),
                   handoff_at = CASE WHEN handoff = 'staff' THEN handoff_at ELSE now() END
               WHERE id = %(conversation)s AND tenant_id = %(tenant)s
               RETURNING id),
           stored AS (
               INSERT INTO messages (conversation_id, tenant_id, role, content, staff_id)
               SELECT id, %(tenant)s, 'staff', %(text)s, %(staff)s FROM taken
               RETURNING id, created_at)
           SELECT id, created_at, {notify_sql("%(conversation)s::bigint", "id::text")}
           FROM stored""",  # noqa: S608 (constants only)
        {"conversation": conversation_id, "tenant": tenant_id, "text": text, "staff": staff_id},
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound("no such conversation")
    return {"id": row[0], "created_at": row[1]}


async def hand_back(
    conn: AsyncConn,
    *,
    tenant_id: int,
    conversation_id: int,
    notice_for: Callable[[Language], str],
) -> bool:
    """posada answers the conversation again: its handoff cleared and `notice_for` the
    guest's language stored, the live streams told. False: it was not handed off (nothing
    changed); NotFound if it is not this hotel's."""
    cur = await conn.execute(
        """SELECT c.handoff,
                  (SELECT content FROM messages m WHERE m.conversation_id = c.id
                     AND m.tenant_id = c.tenant_id AND m.role = 'guest'
                   ORDER BY m.id DESC LIMIT 1)
           FROM conversations c WHERE c.id = %s AND c.tenant_id = %s""",
        (conversation_id, tenant_id),
    )
    found = await cur.fetchone()
    if found is None:
        raise NotFound("no such conversation")
    if found[0] is None:
        return False
    notice = notice_for(detect_language(found[1] or ""))
    cur = await conn.execute(
        f"""WITH back AS (
               UPDATE conversations SET handoff = NULL, handoff_at = NULL, updated_at = now()
               WHERE id = %(conversation)s AND tenant_id = %(tenant)s AND handoff IS NOT NULL
               RETURNING id),
           stored AS (
               INSERT INTO messages (conversation_id, tenant_id, role, content, layer)
               SELECT id, %(tenant)s, 'notice', %(notice)s, 'handoff' FROM back
               RETURNING id)
           SELECT {notify_sql("%(conversation)s::bigint", "id::text")} FROM stored""",  # noqa: S608 (constants only)
        {"conversation": conversation_id, "tenant": tenant_id, "notice": notice},
    )
    return await cur.fetchone() is not None


@dataclass(frozen=True)
class StaffEvent:
    """A hotel's conversation got a message: its id, handoff state and the message."""

    conversation_id: int
    handoff: str | None
    message: dict[str, Any]


async def latest_message_id(conn: AsyncConn) -> int:
    """The newest message id of any hotel (where a staff stream without Last-Event-ID starts;
    an id says nothing of whose it is)."""
    cur = await conn.execute("SELECT coalesce(max(id), 0) FROM messages")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def read_hotel_live(
    conn: AsyncConn, *, tenant_id: int, after: int, also: list[int]
) -> list[StaffEvent]:
    """The hotel's messages after `after` and those of `also`, oldest first, with their
    conversations' state; nothing of another hotel."""
    cur = await conn.execute(
        """SELECT c.id, c.handoff, m.id, m.role, m.content, m.created_at
           FROM messages m JOIN conversations c
             ON c.id = m.conversation_id AND c.tenant_id = %(tenant)s
           WHERE m.tenant_id = %(tenant)s AND (m.id > %(after)s OR m.id = ANY(%(also)s))
           ORDER BY m.id LIMIT %(limit)s""",
        {"tenant": tenant_id, "after": after, "also": also, "limit": LIVE_ROWS},
    )
    return [StaffEvent(r[0], r[1], message_out(r[2:6])) for r in await cur.fetchall()]
