"""The error bodies posada serves, as models the OpenAPI document shows.

Every error is `{"detail": str}` (`ErrorOut`); a 422 adds the fields at fault
(`ValidationErrorOut`), as `_install_error_handlers` in `posada.api.app` writes them. Routes
name their codes with `responses(...)`, so the spec lists exactly what they serve.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from posada.core.errors import (
    Forbidden,
    HeadersTooLarge,
    NotAuthorized,
    NotFound,
    PayloadTooLarge,
    PosadaError,
    RequestTimeout,
    TooManyAttempts,
    Unavailable,
)


class ErrorOut(BaseModel):
    """What went wrong, in a sentence."""

    detail: str


class FieldError(BaseModel):
    """One field at fault: its dotted path (`body` for the body as a whole) and why."""

    field: str
    error: str


class ValidationErrorOut(BaseModel):
    """A request that cannot be used: the summary and every field at fault."""

    detail: str
    errors: list[FieldError]


# One Server-Sent Event of the chat stream (OpenAPI 3.1: the `schema` of an event stream
# describes each event).
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["meta", "delta", "done", "error"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "meta `{conversation_id, ...}`, delta `{text}`, done (the chat "
            "answer's fields but `answer`), error `{detail}`",
        },
    },
}

_WHY: dict[type[PosadaError], str] = {
    NotAuthorized: "missing, expired or forged token; wrong login",
    Forbidden: "staff only",
    NotFound: "unknown hotel, or not this guest's",
    RequestTimeout: "the request body stalled",
    PayloadTooLarge: "the request body is over POSADA_MAX_BODY_BYTES",
    HeadersTooLarge: "request headers over POSADA_MAX_HEADER_BYTES or POSADA_MAX_HEADERS",
    TooManyAttempts: "too many attempts; try again later",
    Unavailable: "the database is unreachable or posada is starting",
}

# The runtime, and so the database, stands behind every route but the health checks.
COMMON: tuple[type[PosadaError], ...] = (Unavailable,)
# A route that takes a body may get these as it streams in.
BODY: tuple[type[PosadaError], ...] = (PayloadTooLarge, RequestTimeout)


def responses(
    *errors: type[PosadaError], invalid: bool = True, json_refs: bool = False
) -> dict[int | str, Any]:
    """The `responses=` of a route that may raise these errors (and a 422 unless told).

    `json_refs` for a route whose own answer is not JSON (the event stream): FastAPI would
    give a `model` the route's media type, so the errors name their JSON schema directly.
    """

    def entry(model: type[BaseModel], description: str) -> dict[str, Any]:
        if not json_refs:
            return {"model": model, "description": description}
        schema = {"$ref": f"#/components/schemas/{model.__name__}"}
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    documented: dict[int | str, Any] = {e.status_code: entry(ErrorOut, _WHY[e]) for e in errors}
    if invalid:
        documented[422] = entry(
            ValidationErrorOut, "malformed JSON, a missing or invalid field; names the field"
        )
    return documented


# Every route may get this one (headers are checked before routing): the app documents it.
EVERY_ROUTE = responses(HeadersTooLarge, invalid=False, json_refs=True)
