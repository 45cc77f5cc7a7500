"""The client's address, trusting forwarded headers only from configured proxies.

Without trusted proxies the socket's peer is the client, whatever `X-Forwarded-For`
says: a client could otherwise name any address it likes. With them, the header is read
from the right (each proxy appends the address it received from) and the first address
that is not a trusted proxy is the client's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """IPs and CIDRs as networks (an IP is a network of one)."""
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip())


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(request: Request, *, trusted: Sequence[Network] = ()) -> str:
    """The address of the client that sent `request` (see the module docstring)."""
    peer = request.client.host if request.client else "unknown"
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _is_trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a proxy we trust would not write garbage: ignore the header
    return peer
