"""The guest chat endpoint."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator

from posada.answers.pipeline import answer_question
from posada.deps import GuestDep, RuntimeDep
from posada.knowledge.retrieval import Visibility

router = APIRouter(prefix="/api/guest", tags=["guest"])

MAX_MESSAGE_CHARS = 2000


class ChatRequest(BaseModel):
    """A guest's message, in a conversation or starting one."""

    message: str = Field(max_length=MAX_MESSAGE_CHARS)
    conversation_id: int | None = Field(default=None, ge=1, le=2**63 - 1)

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("message must not be empty")
        if "\x00" in value:
            raise ValueError("message must not contain NUL characters")
        return value


class SourceOut(BaseModel):
    """A document an answer drew on."""

    title: str
    heading: str
    source: str
    scope: str


class ChatResponse(BaseModel):
    """The answer and what produced it."""

    answer: str
    conversation_id: int
    layer: str
    sources: list[SourceOut]
    timings: dict[str, float]


@router.post("/chat")
async def chat(body: ChatRequest, guest: GuestDep, runtime: RuntimeDep) -> ChatResponse:
    """Answer a guest's question from their hotel's knowledge."""
    answer = await answer_question(
        runtime=runtime,
        visibility=Visibility(tenant_id=guest.tenant_id, unit_id=guest.unit_id),
        question=body.message,
        guest=guest,
        conversation_id=body.conversation_id,
    )
    assert answer.conversation_id is not None
    return ChatResponse(
        answer=answer.text,
        conversation_id=answer.conversation_id,
        layer=answer.layer,
        sources=[SourceOut(**s.as_dict()) for s in answer.sources],
        timings=answer.timings,
    )
