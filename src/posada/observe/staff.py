"""Who is staff: the admin token, or a client on this machine when there is none.

`is_local` asks the socket's address (never a name such as "localhost", which is only a
string a header carried) and refuses any request a proxy forwarded: uvicorn may have put
the forwarded address in `scope["client"]`, and a proxy on this host is not its client.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import SecretStr

STAFF_HEADER = "x-posada-admin"
_FORWARDED = (b"x-forwarded-for", b"forwarded", b"x-real-ip")


def bearer(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer ...` value."""
    scheme, _, token = authorization.partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def is_admin(headers: Iterable[tuple[bytes, bytes]], admin_token: SecretStr | None) -> bool:
    """Whether the request carries the admin token, as its Bearer token or in X-Posada-Admin.

    The second is for staff calling a guest route (which needs the guest's own Bearer
    token) who want its timings.
    """
    if admin_token is None:
        return False
    expected = admin_token.get_secret_value().encode()
    for name, value in headers:
        given: str | None = None
        if name == b"authorization":
            given = bearer(value.decode("latin-1"))
        elif name == STAFF_HEADER.encode():
            given = value.decode("latin-1")
        if given is not None and secrets.compare_digest(given.encode("latin-1"), expected):
            return True
    return False


@dataclass(frozen=True)
class Exposure:
    """Who sees how an answer was made (cache layer, timings, counters, Server-Timing).

    Everyone when `public` (POSADA_EXPOSE_TIMINGS; dev), else staff only: a cache layer or
    a quick answer tells a guest that someone else asked the same question.
    """

    public: bool
    admin_token: SecretStr | None

    def visible(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """Whether the request with these headers sees them."""
        return self.public or is_admin(headers, self.admin_token)


def is_local(client: tuple[str, int] | None, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the request came straight from a loopback socket, not through a proxy."""
    if client is None:
        return False
    try:
        loopback = ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False
    return loopback and not any(name in _FORWARDED for name, _ in headers)
