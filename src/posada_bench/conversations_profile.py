"""The staff's conversations, report and FAQ part of `posada db profile`: the statements
their tabs run, read-only (`staff.conversations`, `staff.report`, `staff.faq`).

`conversations_visit` is played after `staff_visit`, inside the profile's transaction.
"""

from __future__ import annotations

from posada.db.pool import AsyncConn
from posada.staff.conversations import Filters, list_conversations, read_conversation
from posada.staff.faq import list_faq
from posada.staff.report import failed_questions
from posada_bench._plans import Capture

PAGE = 30  # the list route's default


async def conversations_visit(conn: AsyncConn, capture: Capture, *, tenant_id: int) -> None:
    """What the conversations, report and knowledge tabs read: each list filter, the next
    page, one conversation, the report's questions and the FAQ list."""
    cases = {
        "first page": Filters(),
        "needs attention": Filters(attention=True),
        "answered by the LLM": Filters(layer="llm"),
    }
    for case, filters in cases.items():
        with capture.calling(list_conversations, case):
            await list_conversations(
                conn, tenant_id=tenant_id, filters=filters, before=None, limit=PAGE
            )
    first, following = await list_conversations(
        conn, tenant_id=tenant_id, filters=Filters(), before=None, limit=PAGE
    )
    if following is not None:
        with capture.calling(list_conversations, "the next page (keyset)"):
            await list_conversations(
                conn, tenant_id=tenant_id, filters=Filters(), before=following, limit=PAGE
            )
    if first:
        with capture.calling(list_conversations, "one unit"):
            await list_conversations(
                conn, tenant_id=tenant_id, filters=Filters(unit=first[0].unit), before=None,
                limit=PAGE,
            )  # fmt: skip
        with capture.calling(read_conversation, "the newest messages"):
            await read_conversation(
                conn, tenant_id=tenant_id, conversation_id=first[0].id, before=None, limit=50
            )
    with capture.calling(failed_questions, "the last 30 days"):
        await failed_questions(conn, tenant_id=tenant_id, days=30)
    with capture.calling(list_faq, "first page"):
        await list_faq(conn, tenant_id=tenant_id, after=None, limit=100)
