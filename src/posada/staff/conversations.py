"""The hotel's conversations as its staff reads them: a list, most recently active first,
and one conversation's messages, newest page first.

The list pages by keyset on (updated_at, id), never by OFFSET. A conversation that gets a
message while the staff reads the list moves to the top: the pages after the cursor
neither repeat it nor skip another (it shows on the next fresh first page, and in the live
inbox). A conversation needs attention when a person is asked for or has it (`handoff`),
or when its latest answer was declined (no source) or marked unhelpful by the guest: a
newer, better answer clears it. Every statement takes the tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from posada.core.errors import InvalidInput, NotFound
from posada.db.pool import AsyncConn

# The layers messages are stored with: an answer's, and 'handoff' for the notices of a
# handoff (messages of their own role, never counted as declined).
Layer = Literal["exact", "semantic", "faq", "llm", "extractive", "handoff"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last row's activity time and id (`<microseconds>.<id>`)."""

    updated_at: datetime
    id: int

    def __str__(self) -> str:
        return f"{(self.updated_at - _EPOCH) // _MICROSECOND}.{self.id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """The cursor a page gave as `next_before`; InvalidInput (422) if it is not one."""
        micros, _, number = text.partition(".")
        try:
            return cls(_EPOCH + int(micros) * _MICROSECOND, int(number))
        except (ValueError, OverflowError) as exc:
            raise InvalidInput(f"before: {text!r} is not a cursor this list gave") from exc


@dataclass(frozen=True)
class Filters:
    """What the list is narrowed to; None: no narrowing."""

    unit: str | None = None  # the unit's slug
    attention: bool | None = None  # only those that need attention (True) or do not (False)
    layer: Layer | None = None  # only those with a message of this layer


@dataclass(frozen=True)
class LastMessage:
    """The newest message of a conversation, cut short."""

    role: str
    content: str
    layer: str | None
    created_at: datetime


@dataclass(frozen=True)
class ConversationItem:
    """One conversation in the staff's list."""

    id: int
    reservation_id: int
    guest_name: str
    unit: str
    created_at: datetime
    updated_at: datetime
    title: str
    last_message: LastMessage | None
    messages: int
    handoff: str | None
    needs_attention: bool


_PAGE = """SELECT c.id, c.reservation_id, r.guest_name, u.slug, c.created_at, c.updated_at,
       left(coalesce(first.content, ''), 80), last.role, left(last.content, 200), last.layer,
       last.created_at,
       (SELECT count(*) FROM messages n WHERE n.conversation_id = c.id), c.handoff,
       attention.needed
FROM conversations c
JOIN reservations r ON r.id = c.reservation_id AND r.tenant_id = c.tenant_id
JOIN units u ON u.id = r.unit_id
LEFT JOIN LATERAL (
    SELECT m.content FROM messages m WHERE m.conversation_id = c.id AND m.role = 'guest'
    ORDER BY m.id LIMIT 1) first ON true
LEFT JOIN LATERAL (
    SELECT m.role, m.content, m.layer, m.created_at FROM messages m
    WHERE m.conversation_id = c.id ORDER BY m.id DESC LIMIT 1) last ON true
CROSS JOIN LATERAL (
    SELECT c.handoff IS NOT NULL OR coalesce((
        SELECT m.sources = '[]'::jsonb OR m.feedback IS NOT DISTINCT FROM -1
        FROM messages m WHERE m.conversation_id = c.id AND m.role = 'assistant'
        ORDER BY m.id DESC LIMIT 1), false) AS needed) attention
WHERE c.tenant_id = %(tenant)s
  AND (%(at)s::timestamptz IS NULL OR (c.updated_at, c.id) < (%(at)s::timestamptz, %(id)s))
  AND (%(unit)s::text IS NULL OR u.slug = %(unit)s)
  AND (%(layer)s::text IS NULL OR EXISTS (
      SELECT 1 FROM messages l WHERE l.conversation_id = c.id AND l.layer = %(layer)s))
  AND (%(attention)s::boolean IS NULL OR attention.needed = %(attention)s)
ORDER BY c.updated_at DESC, c.id DESC
LIMIT %(limit)s"""


def _item(row: tuple[Any, ...]) -> ConversationItem:
    last = LastMessage(row[7], row[8], row[9], row[10]) if row[7] is not None else None
    return ConversationItem(
        id=row[0],
        reservation_id=row[1],
        guest_name=row[2],
        unit=row[3],
        created_at=row[4],
        updated_at=row[5],
        title=row[6],
        last_message=last,
        messages=int(row[11]),
        handoff=row[12],
        needs_attention=bool(row[13]),
    )


async def list_conversations(
    conn: AsyncConn, *, tenant_id: int, filters: Filters, before: Cursor | None, limit: int
) -> tuple[list[ConversationItem], Cursor | None]:
    """One page of the hotel's conversations, most recently active first, and the cursor of
    the next page."""
    cur = await conn.execute(
        _PAGE,
        {
            "tenant": tenant_id,
            "at": before.updated_at if before else None,
            "id": before.id if before else None,
            "unit": filters.unit,
            "layer": filters.layer,
            "attention": filters.attention,
            "limit": limit + 1,  # one more: whether there is a next page
        },
    )
    rows = [_item(row) for row in await cur.fetchall()]
    page = rows[:limit]
    more = len(rows) > limit
    return page, Cursor(page[-1].updated_at, page[-1].id) if more else None


@dataclass(frozen=True)
class StaffMessage:
    """A message as the staff sees it: with how it was made and what the guest thought."""

    id: int
    role: str
    content: str
    layer: str | None
    model: str | None
    sources: list[dict[str, Any]]
    incomplete: bool
    feedback: int | None
    staff_email: str | None
    created_at: datetime


@dataclass(frozen=True)
class ConversationPage:
    """A conversation and one page of its messages, oldest first within the page."""

    id: int
    reservation_id: int
    guest_name: str
    unit: str
    handoff: str | None
    messages: list[StaffMessage]
    next_before: int | None  # the id to pass as `before` for older messages


_READ = """SELECT c.id, c.reservation_id, r.guest_name, u.slug, c.handoff,
       m.id, m.role, m.content, m.layer, m.model, m.sources, m.incomplete, m.feedback,
       s.email, m.created_at
FROM conversations c
JOIN reservations r ON r.id = c.reservation_id AND r.tenant_id = c.tenant_id
JOIN units u ON u.id = r.unit_id
LEFT JOIN LATERAL (
    SELECT * FROM messages m
    WHERE m.conversation_id = c.id AND m.tenant_id = %(tenant)s
      AND (%(before)s::bigint IS NULL OR m.id < %(before)s)
    ORDER BY m.id DESC LIMIT %(limit)s) m ON true
LEFT JOIN staff s ON s.id = m.staff_id AND s.tenant_id = %(tenant)s
WHERE c.id = %(conversation)s AND c.tenant_id = %(tenant)s
ORDER BY m.id DESC"""


async def read_conversation(
    conn: AsyncConn, *, tenant_id: int, conversation_id: int, before: int | None, limit: int
) -> ConversationPage:
    """The newest `limit` messages of one of the hotel's conversations older than `before`
    (all, without it), oldest first; NotFound if it is not this hotel's."""
    cur = await conn.execute(
        _READ,
        {"tenant": tenant_id, "conversation": conversation_id, "before": before,
         "limit": limit + 1},
    )  # fmt: skip
    rows = await cur.fetchall()
    if not rows:
        raise NotFound("no such conversation at this hotel")
    head = rows[0]
    found = [
        StaffMessage(r[5], r[6], r[7], r[8], r[9], r[10] or [], r[11], r[12], r[13], r[14])
        for r in rows
        if r[5] is not None
    ]
    page = found[:limit]
    more = len(found) > limit
    return ConversationPage(
        id=head[0],
        reservation_id=head[1],
        guest_name=head[2],
        unit=head[3],
        handoff=head[4],
        messages=page[::-1],
        next_before=page[-1].id if more else None,
    )
