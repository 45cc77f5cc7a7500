"""The guest's thumbs up or down on an answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, StrictBool

from posada.api.deps import GuestDep, RuntimeDep
from posada.api.openapi import BODY, COMMON, responses
from posada.core.errors import NotAuthorized, NotFound
from posada.staff.feedback import mark_answer

router = APIRouter(prefix="/api/guest/messages", tags=["guest"])


class Feedback(BaseModel):
    """Whether the answer helped."""

    helpful: StrictBool


@router.post(
    "/{message_id}/feedback",
    status_code=204,
    responses=responses(NotAuthorized, NotFound, *BODY, *COMMON),
)
async def answer_feedback(
    message_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: Feedback,
    guest: GuestDep,
    runtime: RuntimeDep,
) -> Response:
    """Mark one of your answers helpful or not; the hotel's staff sees the unhelpful ones."""
    async with runtime.pool.connection() as conn:
        await mark_answer(conn, guest=guest, message_id=message_id, helpful=body.helpful)
    return Response(status_code=204)
