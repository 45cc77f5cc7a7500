"""Conversations and their messages; every query names the tenant and the reservation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from posada.cache import semantic
from posada.cache.semantic import CacheEntry
from posada.core.errors import NotAuthorized, NotFound
from posada.db.pool import AsyncConn
from posada.guests.live import notify_sql
from posada.guests.tokens import GuestClaims
from posada.providers.llm import ChatMessage

# The token's stay still holds (a token outlives an import that moves or cancels a stay):
# not cancelled, the same unit, not over (noon the day after check-out, the token expiry's
# rule, against a check-out moved earlier), and the token not revoked (issued at or after
# `tokens_valid_after`). Every query of a guest's data puts it in its own statement.
STAY_HOLDS = """r.id = %(reservation)s AND r.tenant_id = %(tenant)s AND r.unit_id = %(unit)s
      AND r.status <> 'cancelled'
      AND now() < (r.check_out + 1)::timestamp AT TIME ZONE 'UTC' + interval '12 hours'
      AND to_timestamp(%(iat)s::float8) >= coalesce(r.tokens_valid_after, '-infinity')"""
STAY_GONE = "this reservation is no longer valid; please log in again"


def check_reads(rows: Sequence[Sequence[Any]]) -> None:
    """Rows of a read that put EXISTS(the stay holds) first and the guest's conversation's
    id second: NotAuthorized once the stay no longer holds, NotFound if it is not theirs."""
    if not rows or not rows[0][0]:
        raise NotAuthorized(STAY_GONE)
    if rows[0][1] is None:
        raise NotFound("no such conversation")


def stay_params(guest: GuestClaims) -> dict[str, object]:
    """The parameters of STAY_HOLDS for this guest's token."""
    return {
        "tenant": guest.tenant_id,
        "reservation": guest.reservation_id,
        "unit": guest.unit_id,
        "iat": guest.issued_at,
    }


# The stay holds, and the conversation is created or is this guest's (with its handoff
# state: while a person has it, posada stores the guest's messages and does not answer).
_STAY_AND_CONVERSATION = f"""guest AS (
    SELECT r.id FROM reservations r WHERE {STAY_HOLDS}),
created AS (
    INSERT INTO conversations (tenant_id, reservation_id)
    SELECT %(tenant)s, id FROM guest WHERE %(conversation)s::bigint IS NULL
    RETURNING id, handoff),
owned AS (
    UPDATE conversations SET updated_at = now()
    WHERE id = %(conversation)s AND tenant_id = %(tenant)s
      AND reservation_id = (SELECT id FROM guest)
    RETURNING id, handoff)"""  # noqa: S608 (constants only)


@dataclass(frozen=True)
class Recorded:
    """The stored question's conversation, the hotel's name and the turns before it; and
    the conversation's handoff state (not None: a person has it, posada does not answer)."""

    conversation_id: int
    hotel: str
    history: list[ChatMessage]
    handoff: str | None = None


async def record_guest_message(
    conn: AsyncConn,
    *,
    guest: GuestClaims,
    conversation_id: int | None,
    content: str,
    history_turns: int = 6,
) -> Recorded:
    """Store the guest's message (in a new conversation if none is given).

    One statement checks that the token's reservation still holds (not cancelled, same
    unit: a token outlives an import that moves or cancels a stay), that the conversation
    is this guest's, stores the message, reads the turns before it and the conversation's
    handoff state, and tells the live streams (`guests.live`).
    """
    cur = await conn.execute(
        f"""WITH {_STAY_AND_CONVERSATION},
           stored AS (
               INSERT INTO messages (conversation_id, tenant_id, role, content)
               SELECT id, %(tenant)s, 'guest', %(content)s
               FROM (SELECT id FROM created UNION ALL SELECT id FROM owned) target
               RETURNING id, conversation_id)
           SELECT EXISTS (SELECT 1 FROM guest), (SELECT conversation_id FROM stored),
                  (SELECT name FROM tenants WHERE id = %(tenant)s),
                  (SELECT coalesce(json_agg(json_build_array(role, content) ORDER BY id), '[]')
                   FROM (SELECT m.id, m.role, m.content FROM messages m
                         WHERE m.conversation_id = (SELECT id FROM owned)
                           AND m.tenant_id = %(tenant)s
                         ORDER BY m.id DESC LIMIT %(turns)s) recent),
                  (SELECT handoff FROM owned),
                  (SELECT {notify_sql("conversation_id", "id::text")} FROM stored)""",  # noqa: S608 (constants only)
        {
            **stay_params(guest),
            "conversation": conversation_id,
            "content": content,
            "turns": history_turns,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    if not row[0]:
        raise NotAuthorized(STAY_GONE)
    if row[1] is None:
        raise NotFound("no such conversation")
    return Recorded(int(row[1]), str(row[2]), alternate_turns(row[3]), row[4])


def alternate_turns(rows: Sequence[Sequence[str]]) -> list[ChatMessage]:
    """Stored (role, content) rows, oldest first, as turns a provider accepts.

    Empty answers (cut off before their first word) are dropped, turns alternate (of two
    in a row, the later stays), and the history starts with the guest and ends with an
    answer: a question left unanswered is followed by the new one.
    """
    history: list[ChatMessage] = []
    for role, text in rows:
        turn = ChatMessage("user" if role == "guest" else "assistant", text)
        if not text.strip() or role == "notice":
            continue
        if history and history[-1].role == turn.role:
            history[-1] = turn
        else:
            history.append(turn)
    while history and history[0].role != "user":
        history.pop(0)
    while history and history[-1].role == "user":
        history.pop()
    return history


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
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cost_usd: float | None = None,
    incomplete: bool = False,
    cache_entry: CacheEntry | None = None,
    cache_hit: int | None = None,
) -> int | None:
    """Store the assistant's answer with what produced it and what it cost; return its id.

    The same statement keeps the answer in the semantic cache (`cache_entry`) or counts
    the reuse of a cached one (`cache_hit`). A conversation erased meanwhile (a hotel
    removing a guest's data) is a NotFound; one a person took meanwhile (the guest asked
    for reception, staff replied) keeps nothing of posada's after a person's word: None.
    """
    cur = await conn.execute(
        f"""WITH answer AS (
               INSERT INTO messages (conversation_id, tenant_id, role, content, layer, model,
                                     input_tokens, output_tokens, cost_usd, sources, timings,
                                     incomplete)
               SELECT id, tenant_id, 'assistant', %(content)s, %(layer)s, %(model)s,
                      %(input_tokens)s, %(output_tokens)s, %(cost)s, %(sources)s,
                      %(timings)s, %(incomplete)s
               FROM conversations WHERE id = %(conversation)s AND tenant_id = %(tenant)s
                 AND handoff IS NULL
               FOR KEY SHARE
               RETURNING id),
           cached AS ({semantic.INSERT}),
           reused AS ({semantic.HIT})
           SELECT (SELECT id FROM answer), (SELECT count(*) FROM cached),
                  (SELECT count(*) FROM reused),
                  (SELECT {notify_sql("%(conversation)s::bigint", "id::text")} FROM answer),
                  EXISTS (SELECT 1 FROM conversations
                          WHERE id = %(conversation)s AND tenant_id = %(tenant)s)""",  # noqa: S608 (constants only)
        {
            "content": content, "layer": layer, "model": model, "input_tokens": input_tokens,
            "output_tokens": output_tokens, "cost": cost_usd, "sources": Jsonb(sources),
            "timings": Jsonb(timings), "incomplete": incomplete,
            "conversation": conversation_id, "tenant": tenant_id,
            **semantic.entry_params(cache_entry, cache_hit),
        },
    )  # fmt: skip
    row = await cur.fetchone()
    assert row is not None
    if not row[4]:
        raise NotFound("this conversation no longer exists; please start a new one")
    return None if row[0] is None else int(row[0])


@dataclass(frozen=True)
class Exchanged:
    """Where an exact-cache hit was stored, and the conversation's handoff state (not None:
    only the question was stored; a person answers it)."""

    conversation_id: int
    handoff: str | None
    answer_id: int | None = None  # the stored answer (None: only the question was)


async def record_exchange(
    conn: AsyncConn,
    *,
    guest: GuestClaims,
    conversation_id: int | None,
    question: str,
    answer: str,
    layer: str,
    sources: list[dict[str, Any]],
    timings: dict[str, float],
    model: str | None = None,
) -> Exchanged:
    """Store a question and its (cached) answer, or only the question while a person has
    the conversation. An exact-cache hit's one round trip: the same checks as
    `record_guest_message`, then the messages, in order, and the live streams told.
    """
    cur = await conn.execute(
        f"""WITH {_STAY_AND_CONVERSATION},
           target AS (SELECT id, handoff FROM created UNION ALL SELECT id, handoff FROM owned),
           stored AS (
               INSERT INTO messages (conversation_id, tenant_id, role, content, layer, model,
                                     sources, timings)
               SELECT target.id, %(tenant)s, m.role, m.content, m.layer, %(model)s,
                      m.sources, m.timings
               FROM target, (VALUES
                   (1, 'guest', %(question)s, NULL, NULL::jsonb, NULL::jsonb),
                   (2, 'assistant', %(answer)s, %(layer)s, %(sources)s, %(timings)s)
               ) AS m(n, role, content, layer, sources, timings)
               WHERE m.n = 1 OR target.handoff IS NULL
               ORDER BY m.n
               RETURNING id, conversation_id)
           SELECT EXISTS (SELECT 1 FROM guest), (SELECT max(conversation_id) FROM stored),
                  (SELECT handoff FROM target),
                  -- The answer is inserted after the question: the larger id.
                  (SELECT max(id) FROM stored WHERE (SELECT handoff FROM target) IS NULL),
                  (SELECT {notify_sql("id", "SELECT string_agg(id::text, ',') FROM stored")}
                   FROM target),
                  -- Both messages can be given again from the cache: the commit need not
                  -- wait for the disk (a crash may lose the last few hundred ms of them).
                  -- A question a person is to answer cannot: that one waits.
                  set_config('synchronous_commit', CASE WHEN (SELECT handoff FROM target)
                             IS NULL THEN 'off' ELSE 'on' END, true)""",  # noqa: S608 (constants only)
        {
            **stay_params(guest),
            "conversation": conversation_id,
            "question": question,
            "answer": answer,
            "layer": layer,
            "model": model,
            "sources": Jsonb(sources),
            "timings": Jsonb(timings),
        },
    )
    row = await cur.fetchone()
    assert row is not None
    if not row[0]:
        raise NotAuthorized(STAY_GONE)
    if row[1] is None:
        raise NotFound("no such conversation")
    return Exchanged(int(row[1]), row[2], row[3])


async def list_conversations(
    conn: AsyncConn, *, guest: GuestClaims, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """The guest's conversations, newest first, `limit` at a time (keyset: ids below `before`);
    NotAuthorized once the stay no longer holds (checked in the same statement)."""
    cur = await conn.execute(
        f"""WITH guest AS (SELECT r.id FROM reservations r WHERE {STAY_HOLDS})
           SELECT EXISTS (SELECT 1 FROM guest), c.id, c.created_at, c.updated_at,
                  c.first_message
           FROM (SELECT 1) one
           LEFT JOIN LATERAL (
               SELECT c.id, c.created_at, c.updated_at,
                      (SELECT content FROM messages m WHERE m.conversation_id = c.id
                       ORDER BY m.id LIMIT 1) AS first_message
               FROM conversations c
               WHERE c.tenant_id = %(tenant)s AND c.reservation_id = (SELECT id FROM guest)
                 AND (%(before)s::bigint IS NULL OR c.id < %(before)s)
               ORDER BY c.id DESC LIMIT %(limit)s) c ON true
           ORDER BY c.id DESC""",  # noqa: S608 (constants only)
        {**stay_params(guest), "before": before, "limit": limit},
    )
    rows = await cur.fetchall()
    if not rows or not rows[0][0]:
        raise NotAuthorized(STAY_GONE)
    return [
        {"id": r[1], "created_at": r[2], "updated_at": r[3], "title": (r[4] or "")[:80]}
        for r in rows
        if r[1] is not None
    ]


@dataclass(frozen=True)
class Page:
    """A page of a conversation's messages, oldest first, and its handoff state."""

    messages: list[dict[str, Any]]
    handoff: str | None


# A page of messages: after an id (oldest first), or the newest before an id (or of all).
_FORWARD = "m.id > %(after)s ORDER BY m.id"
_BACKWARD = "(%(before)s::bigint IS NULL OR m.id < %(before)s) ORDER BY m.id DESC"


async def list_messages(
    conn: AsyncConn,
    *,
    guest: GuestClaims,
    conversation_id: int,
    after: int | None = None,
    before: int | None = None,
    limit: int,
) -> Page:
    """A page of one of the guest's conversations, oldest first: the messages after `after`,
    else the newest before `before` (neither: the newest); NotFound if it is not theirs,
    NotAuthorized once the stay no longer holds (in the same statement)."""
    keyset = _FORWARD if after is not None else _BACKWARD
    cur = await conn.execute(
        f"""WITH guest AS (SELECT r.id FROM reservations r WHERE {STAY_HOLDS})
           SELECT EXISTS (SELECT 1 FROM guest), c.id, c.handoff, m.id, m.role, m.content,
                  m.layer, m.model, m.sources, m.incomplete, m.created_at, m.feedback
           FROM (SELECT 1) one
           LEFT JOIN conversations c
             ON c.id = %(conversation)s AND c.tenant_id = %(tenant)s
            AND c.reservation_id = (SELECT id FROM guest)
           LEFT JOIN LATERAL (
               SELECT * FROM messages m WHERE m.conversation_id = c.id
                 AND m.tenant_id = %(tenant)s AND {keyset} LIMIT %(limit)s) m ON true
           ORDER BY m.id""",  # noqa: S608 (constants only)
        {
            **stay_params(guest),
            "conversation": conversation_id,
            "after": after,
            "before": before,
            "limit": limit,
        },
    )
    rows = await cur.fetchall()
    check_reads(rows)
    messages = [
        {
            "id": r[3],
            "role": r[4],
            "content": r[5],
            "layer": r[6],
            "model": r[7],
            "sources": r[8] or [],
            "incomplete": r[9],
            "created_at": r[10],
            "feedback": r[11],  # the guest's own thumbs: -1, 1 or None
        }
        for r in rows
        if r[3] is not None
    ]
    return Page(messages, rows[0][2])
