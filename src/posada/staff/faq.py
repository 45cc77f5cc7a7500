"""The hotel's FAQ entries as its managers keep them from the staff page.

An entry written by the staff belongs to the hotel's own document `staff:faq`
(`knowledge.ingest.STAFF_FAQ_SOURCE`), which no file can be and no ingest prunes or
replaces. Each entry is also a passage of that document (heading: the question, text: the
answer), as ingest makes one of an FAQ heading in a file: a rewording of the question is
answered from the entry only when the entry's passage is among its best, so the entry
needs one. The question is embedded in the question role, as ingest embeds FAQ questions,
the passage in the passage role.

Entries that come from a document are listed but not editable here: the next ingest of a
changed file would put the file's version back, so they are changed in the file (422
otherwise). Every change moves the hotel's knowledge version in its own transaction, which
drops the cached answers and tells every process (`bump_knowledge_version`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posada.core import context as observe
from posada.core.errors import InvalidInput, NotFound
from posada.db.pool import AsyncConn
from posada.knowledge.ingest import STAFF_FAQ_SOURCE, bump_knowledge_version
from posada.knowledge.markdown import chunk_embedding_text
from posada.providers.types import Embedder

STAFF_FAQ_TITLE = "Answers from the staff"


@dataclass(frozen=True)
class FaqEntry:
    """One FAQ entry of the hotel."""

    id: int
    question: str
    answer: str
    scope: str
    unit: str | None  # the unit's slug, for a unit's entry
    source: str  # the document it belongs to (`staff:faq` for the staff's own)
    editable: bool


@dataclass(frozen=True)
class Embedders:
    """The two roles an entry is embedded in: passages and questions."""

    passages: Embedder
    questions: Embedder


async def list_faq(
    conn: AsyncConn, *, tenant_id: int, after: int | None, limit: int
) -> tuple[list[FaqEntry], int | None]:
    """One page of the hotel's FAQ entries by id (keyset: ids above `after`), and the
    `after` of the next page."""
    cur = await conn.execute(
        """SELECT f.id, f.question, f.answer, f.scope, u.slug, d.source, d.source = %(staff)s
           FROM faq f JOIN documents d ON d.id = f.document_id
                LEFT JOIN units u ON u.id = f.unit_id
           WHERE f.tenant_id = %(tenant)s AND (%(after)s::bigint IS NULL OR f.id > %(after)s)
           ORDER BY f.id LIMIT %(limit)s""",
        {"tenant": tenant_id, "after": after, "limit": limit + 1, "staff": STAFF_FAQ_SOURCE},
    )
    rows = [FaqEntry(*row) for row in await cur.fetchall()]
    page = rows[:limit]
    return page, page[-1].id if len(rows) > limit else None


def _clean(text: str, name: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise InvalidInput(f"{name} is empty")
    return cleaned


async def _embed(
    embedders: Embedders, *, tenant_id: int, question: str, answer: str
) -> tuple[np.ndarray, np.ndarray]:
    """(the question's vector, the passage's vector)."""
    with observe.acting_for(tenant_id):  # the usage ledger charges this hotel
        asked = await embedders.questions.embed_batch([question])
        passage = await embedders.passages.embed_batch([chunk_embedding_text(question, answer)])
    return asked[0], passage[0]


async def _unit_id(conn: AsyncConn, *, tenant_id: int, unit: str) -> int:
    cur = await conn.execute(
        "SELECT id FROM units WHERE tenant_id = %s AND slug = %s", (tenant_id, unit)
    )
    row = await cur.fetchone()
    if row is None:
        raise InvalidInput(f"unit: this hotel has no unit {unit!r}")
    return int(row[0])


async def add_faq(
    conn: AsyncConn,
    *,
    tenant_id: int,
    question: str,
    answer: str,
    unit: str | None,
    embedders: Embedders,
) -> int:
    """Add an entry of the hotel (or of one unit: its guests only); its id."""
    question, answer = _clean(question, "question"), _clean(answer, "answer")
    unit_id = None if unit is None else await _unit_id(conn, tenant_id=tenant_id, unit=unit)
    scope = "hotel" if unit_id is None else "unit"
    asked, passage = await _embed(embedders, tenant_id=tenant_id, question=question, answer=answer)
    model = embedders.passages.model
    async with conn.transaction():
        cur = await conn.execute(
            """INSERT INTO documents (tenant_id, scope, source, title, content_hash)
               VALUES (%s, 'hotel', %s, %s, 'staff')
               ON CONFLICT (tenant_id, source) DO UPDATE SET updated_at = now()
               RETURNING id""",
            (tenant_id, STAFF_FAQ_SOURCE, STAFF_FAQ_TITLE),
        )
        document = await cur.fetchone()
        assert document is not None
        cur = await conn.execute(
            """WITH passage AS (
                   INSERT INTO chunks (document_id, tenant_id, scope, unit_id, ordinal, heading,
                                       content, embedding, embedding_model)
                   SELECT %(doc)s, %(tenant)s, %(scope)s, %(unit)s,
                          coalesce(max(ordinal) + 1, 0), %(q)s, %(a)s, %(passage)s, %(model)s
                   FROM chunks WHERE document_id = %(doc)s
                   RETURNING id)
               INSERT INTO faq (document_id, tenant_id, scope, unit_id, chunk_id, question,
                                answer, embedding, embedding_model)
               SELECT %(doc)s, %(tenant)s, %(scope)s, %(unit)s, passage.id, %(q)s, %(a)s,
                      %(asked)s, %(model)s
               FROM passage RETURNING id""",
            {"doc": document[0], "tenant": tenant_id, "scope": scope, "unit": unit_id,
             "q": question, "a": answer, "passage": passage, "asked": asked, "model": model},
        )  # fmt: skip
        entry = await cur.fetchone()
        assert entry is not None
        await bump_knowledge_version(conn, tenant_id=tenant_id)
    return int(entry[0])


async def _staff_entry(conn: AsyncConn, *, tenant_id: int, faq_id: int) -> tuple[str, str]:
    """The question and answer of a staff entry; NotFound if not this hotel's, InvalidInput
    if it comes from a document."""
    cur = await conn.execute(
        """SELECT f.question, f.answer, d.source FROM faq f JOIN documents d
               ON d.id = f.document_id
           WHERE f.id = %s AND f.tenant_id = %s""",
        (faq_id, tenant_id),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound("no such FAQ entry at this hotel")
    if row[2] != STAFF_FAQ_SOURCE:
        raise InvalidInput(
            f"this entry comes from the document {row[2]!r}: change it there and ingest the "
            "document again (a change made here would be undone by that ingest)"
        )
    return str(row[0]), str(row[1])


# Only the staff's own entries, even if one moved documents since it was read.
_OWN = """f.tenant_id = %(tenant)s AND f.id = %(id)s AND f.document_id = (
    SELECT id FROM documents WHERE tenant_id = %(tenant)s AND source = %(staff)s)"""


async def change_faq(
    conn: AsyncConn,
    *,
    tenant_id: int,
    faq_id: int,
    question: str | None,
    answer: str | None,
    embedders: Embedders,
) -> None:
    """Change a staff entry's question and/or answer (embedded again)."""
    if question is None and answer is None:
        raise InvalidInput("nothing to change: give a question or an answer")
    old_question, old_answer = await _staff_entry(conn, tenant_id=tenant_id, faq_id=faq_id)
    new_question = old_question if question is None else _clean(question, "question")
    new_answer = old_answer if answer is None else _clean(answer, "answer")
    asked, passage = await _embed(
        embedders, tenant_id=tenant_id, question=new_question, answer=new_answer
    )
    params = {"tenant": tenant_id, "id": faq_id, "staff": STAFF_FAQ_SOURCE, "q": new_question,
              "a": new_answer, "asked": asked, "passage": passage}  # fmt: skip
    async with conn.transaction():
        cur = await conn.execute(
            f"""WITH entry AS (
                   UPDATE faq f SET question = %(q)s, answer = %(a)s, embedding = %(asked)s
                   WHERE {_OWN} RETURNING f.chunk_id)
               UPDATE chunks c SET heading = %(q)s, content = %(a)s, embedding = %(passage)s
               FROM entry WHERE c.id = entry.chunk_id AND c.tenant_id = %(tenant)s
               RETURNING c.id""",  # noqa: S608 (constants only)
            params,
        )
        if await cur.fetchone() is None:
            raise NotFound("no such FAQ entry at this hotel")
        await bump_knowledge_version(conn, tenant_id=tenant_id)


async def delete_faq(conn: AsyncConn, *, tenant_id: int, faq_id: int) -> None:
    """Delete a staff entry with its passage."""
    await _staff_entry(conn, tenant_id=tenant_id, faq_id=faq_id)
    params = {"tenant": tenant_id, "id": faq_id, "staff": STAFF_FAQ_SOURCE}
    async with conn.transaction():
        cur = await conn.execute(
            f"""WITH entry AS (DELETE FROM faq f WHERE {_OWN} RETURNING f.chunk_id)
               DELETE FROM chunks c USING entry
               WHERE c.id = entry.chunk_id AND c.tenant_id = %(tenant)s
               RETURNING c.id""",  # noqa: S608 (constants only)
            params,
        )
        if await cur.fetchone() is None:
            raise NotFound("no such FAQ entry at this hotel")
        await bump_knowledge_version(conn, tenant_id=tenant_id)
