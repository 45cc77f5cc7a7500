"""The report of what posada could not answer: the guests' questions it declined, and those
whose answer the guest marked unhelpful, grouped so that rewordings of one question count
once.

A declined answer is one with no source: the offline responder found nothing relevant and
said so ("I don't have that information"), or the exact cache gave such an answer again.
(An LLM answer always has the passages it was sent as sources; posada only calls one when
something relevant was found.) The question is the guest's last message before the
answer.

Grouping is greedy, newest question first: a question joins the first group whose first
(most recent) question is near enough, else starts a group. "Near" is the cosine of the
two questions' embeddings (the question role, as guests' questions are embedded) after
taking away the mean of the questions at hand and a fixed set of everyday ones: the local
model puts every two questions between 0.75 and 0.95, and centring spreads them out.
The threshold was chosen on labelled tuning sets and checked on test sets
(tests/integration/test_staff_report.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from posada.core import context as observe
from posada.db.pool import AsyncConn
from posada.providers.types import Embedder, Vectors

# Chosen on the tuning halves of two labelled sets of rewordings, tests/support/same_question.py
# and bench/labels/real (the best mean F0.5 of the grouping: a merge of two different
# questions hides one of them, worse than counting one twice); checked on their test halves.
SAME_QUESTION = 0.34
MAX_QUESTIONS = 500  # the most recent; a report embeds each distinct wording once
# Everyday questions that anchor the mean taken away: a report of three questions has no
# mean of its own worth the name.
EVERYDAY = (
    "what time is breakfast",
    "¿a qué hora es el desayuno?",
    "what is the wifi password",
    "¿cuál es la clave del wifi?",
    "what time is check-out",
    "¿a qué hora es el check-in?",
    "where is the nearest beach",
    "¿dónde queda la playa más cercana?",
    "how do I get to the airport",
    "¿cómo llego al centro?",
    "is there hot water",
    "¿hay aire acondicionado?",
    "where can I eat seafood",
    "¿dónde puedo bucear?",
    "how much is a taxi to town",
    "¿cuánto cuesta el desayuno?",
)

# The answers given in the window that were declined or marked unhelpful, each with the
# guest message it answered. Both partial indexes serve the first two selects.
_ASKED = """WITH bad AS (
    SELECT m.id, m.conversation_id, 'declined' AS reason FROM messages m
    WHERE m.tenant_id = %(tenant)s AND m.role = 'assistant' AND m.sources = '[]'::jsonb
      AND m.created_at >= now() - %(days)s * interval '1 day'
    UNION ALL
    SELECT m.id, m.conversation_id, 'unhelpful' FROM messages m
    WHERE m.tenant_id = %(tenant)s AND m.feedback = -1
      AND m.created_at >= now() - %(days)s * interval '1 day')
SELECT q.id, q.content, q.created_at, b.conversation_id, u.slug,
       array_agg(DISTINCT b.reason ORDER BY b.reason)
FROM bad b
JOIN conversations c ON c.id = b.conversation_id AND c.tenant_id = %(tenant)s
JOIN reservations r ON r.id = c.reservation_id AND r.tenant_id = %(tenant)s
JOIN units u ON u.id = r.unit_id
JOIN LATERAL (
    SELECT g.id, g.content, g.created_at FROM messages g
    WHERE g.conversation_id = b.conversation_id AND g.tenant_id = %(tenant)s
      AND g.role = 'guest' AND g.id < b.id
    ORDER BY g.id DESC LIMIT 1) q ON true
GROUP BY q.id, q.content, q.created_at, b.conversation_id, u.slug
ORDER BY q.id DESC
LIMIT %(cap)s"""


@dataclass(frozen=True)
class Asked:
    """One guest question posada failed."""

    content: str
    asked_at: datetime
    conversation_id: int
    unit: str
    reasons: tuple[str, ...]


@dataclass
class Group:
    """Rewordings of one question: the most recent wording, the others, and how often."""

    question: str
    last_asked: datetime
    rewordings: list[str] = field(default_factory=list)
    count: int = 0
    reasons: list[str] = field(default_factory=list)
    conversation_ids: list[int] = field(default_factory=list)
    unit: str | None = None
    units: set[str] = field(default_factory=set, repr=False)

    def add(self, asked: Asked) -> None:
        """Count `asked` in this group."""
        self.count += 1
        wording = asked.content.strip()
        if wording != self.question and wording not in self.rewordings:
            self.rewordings.append(wording)
        self.reasons = sorted(set(self.reasons) | set(asked.reasons))
        if asked.conversation_id not in self.conversation_ids:
            self.conversation_ids.append(asked.conversation_id)
        self.units.add(asked.unit)
        self.unit = asked.unit if len(self.units) == 1 else None


async def failed_questions(conn: AsyncConn, *, tenant_id: int, days: int) -> list[Asked]:
    """The hotel's questions declined or marked unhelpful in the last `days`, newest first."""
    cur = await conn.execute(_ASKED, {"tenant": tenant_id, "days": days, "cap": MAX_QUESTIONS})
    return [
        Asked(str(content), at, int(conversation), str(unit), tuple(reasons))
        for _, content, at, conversation, unit, reasons in await cur.fetchall()
    ]


def centred(vectors: Vectors, anchors: Vectors) -> Vectors:
    """Unit vectors less the mean of themselves and `anchors`."""
    mean = np.vstack([vectors, anchors]).mean(axis=0)
    moved = vectors - mean
    norms = np.linalg.norm(moved, axis=1, keepdims=True)
    out: Vectors = (moved / np.where(norms == 0, 1, norms)).astype(np.float32)
    return out


async def embed_questions(embedder: Embedder, texts: list[str]) -> Vectors:
    """`texts`' vectors, centred for grouping (each distinct text embedded once)."""
    distinct = sorted(set(texts))
    vectors = await embedder.embed_batch([*distinct, *EVERYDAY])
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: Vectors = (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)
    mine = centred(unit[: len(distinct)], unit[len(distinct) :])
    at = {text: i for i, text in enumerate(distinct)}
    return mine[[at[t] for t in texts]] if texts else mine


def group_indexes(vectors: Vectors, *, threshold: float = SAME_QUESTION) -> list[list[int]]:
    """Greedy groups of row indexes: each row joins the group whose first row is nearest,
    if near enough, else starts one."""
    groups: list[list[int]] = []
    heads: list[int] = []
    for i in range(len(vectors)):
        if heads:
            similarity = vectors[heads] @ vectors[i]
            best = int(np.argmax(similarity))
            if similarity[best] >= threshold:
                groups[best].append(i)
                continue
        heads.append(i)
        groups.append([i])
    return groups


async def unanswered_report(
    conn: AsyncConn, *, tenant_id: int, days: int, embedder: Embedder
) -> list[Group]:
    """The hotel's failed questions of the last `days`, grouped, most asked first."""
    asked = await failed_questions(conn, tenant_id=tenant_id, days=days)
    if not asked:
        return []
    texts = [a.content.strip() for a in asked]
    with observe.acting_for(tenant_id):  # the usage ledger charges this hotel
        vectors = await embed_questions(embedder, texts)
    groups: list[Group] = []
    for members in group_indexes(vectors):
        head = asked[members[0]]
        group = Group(question=head.content.strip(), last_asked=head.asked_at)
        for i in members:
            group.add(asked[i])
        groups.append(group)
    groups.sort(key=lambda g: (-g.count, -g.last_asked.timestamp()))
    return groups
