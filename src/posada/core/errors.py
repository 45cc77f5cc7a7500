"""posada's errors, one small hierarchy mapped to HTTP in one handler (`posada.api.app`).

PosadaError                 base; never raised itself
├── ConfigurationError      bad or missing settings, missing extension (not HTTP)
├── InvalidInput   -> 422   a request or file that cannot be used; names the field or line
├── NotAuthorized  -> 401   missing, expired or forged token; wrong login
├── Forbidden      -> 403   a valid caller asking for what is not theirs (staff pages)
├── NotFound       -> 404   unknown tenant, conversation, unit
├── RequestTimeout -> 408   a body that stalls, headers that never end (posada.api.http_limits)
├── PayloadTooLarge -> 413  a body over POSADA_MAX_BODY_BYTES
├── HeadersTooLarge -> 431  headers over POSADA_MAX_HEADER_BYTES or POSADA_MAX_HEADERS
├── TooManyAttempts -> 429  too many logins or requests; `Retry-After` says when to retry
└── Unavailable    -> 503   the database or model is not ready
"""

from __future__ import annotations


class PosadaError(Exception):
    """Base of every error posada raises on purpose."""

    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(PosadaError):
    """Settings or environment that posada cannot run with."""


class InvalidInput(PosadaError):
    """Input that cannot be used; the message names the field or the line."""

    status_code = 422


class NotAuthorized(PosadaError):
    """Authentication failed; the message never says which part was wrong."""

    status_code = 401


class Forbidden(PosadaError):
    """The caller may not use this (staff-only figures from a remote client)."""

    status_code = 403


class NotFound(PosadaError):
    """The named thing does not exist, or is not this caller's to see."""

    status_code = 404


class RequestTimeout(PosadaError):
    """The client stopped sending its request part-way."""

    status_code = 408


class PayloadTooLarge(PosadaError):
    """The request body is over the limit."""

    status_code = 413


class HeadersTooLarge(PosadaError):
    """The request's headers are over the limit (size or count)."""

    status_code = 431


class TooManyAttempts(PosadaError):
    """Too many attempts or requests; `retry_after_s` says when to try again."""

    status_code = 429

    def __init__(self, message: str, *, retry_after_s: int = 60) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class Unavailable(PosadaError):
    """A dependency (database, model) is not ready."""

    status_code = 503
