"""What the scale test's proofs share: the `Proof`, guests and staff on one replica, the
counters each replica's `/metrics` and the simulated LLM's `/stats` report, and the most
attempts a limit can grant in a given time."""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from posada.core.config import Settings
from posada.limits.buckets import Limit, LocalBuckets
from posada.staff.accounts import Role, add_member
from posada_bench import sse
from posada_bench.hotels import Stay
from posada_bench.scale.figures import Parsed, parse_metrics
from posada_bench.sse import Event

Say = Callable[[str], None]
# How long a proof waits for one response or event before it fails (a guard against a
# hang, not a bound on how fast posada is).
PATIENCE_S = 30.0
PASSWORD = "scale proof: a long enough password"  # noqa: S105 - a throwaway account's


@dataclass
class Proof:
    """One cross-replica claim, whether it held, and the numbers that show it."""

    name: str
    passed: bool
    counters: dict[str, Any]  # the numbers that prove it (per replica where relevant)
    detail: str  # one line a reader understands


class ProofFailed(Exception):
    """A step of a proof did not go as posada promises (the message says which)."""


def client(url: str) -> httpx.AsyncClient:
    """A client of one replica (or of nginx)."""
    return httpx.AsyncClient(base_url=url, timeout=PATIENCE_S)


async def guest_auth(http: httpx.AsyncClient, stay: Stay) -> dict[str, str]:
    """Log the stay's guest in; the Authorization header."""
    response = await http.post("/api/guest/login", json=stay.login())
    if response.status_code != 200:
        raise ProofFailed(f"guest login on {http.base_url}: {response.status_code} {response.text}")
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def ask(
    http: httpx.AsyncClient, auth: dict[str, str], message: str, conversation: int | None = None
) -> dict[str, Any]:
    """One question, answered whole; the body (its layer and counters: timings exposed)."""
    body = {"message": message, "conversation_id": conversation}
    response = await http.post("/api/guest/chat", json=body, headers=auth)
    if response.status_code != 200:
        raise ProofFailed(f"chat on {http.base_url}: {response.status_code} {response.text}")
    answer: dict[str, Any] = response.json()
    return answer


async def tenant_id(direct_url: str, slug: str) -> int:
    """The id of the hotel `slug`."""
    async with await psycopg.AsyncConnection.connect(direct_url) as conn:
        cur = await conn.execute("SELECT id FROM tenants WHERE slug = %s", (slug,))
        row = await cur.fetchone()
    if row is None:
        raise ProofFailed(f"no hotel {slug!r} in the database")
    return int(row[0])


async def new_member(direct_url: str, *, tenant: str, role: Role) -> str:
    """A new staff member of `tenant` (password `PASSWORD`), added as `posada staff add`
    does, on the server itself; their e-mail."""
    email = f"proof-{role}-{uuid.uuid4().hex[:8]}@example.org"
    found = await tenant_id(direct_url, tenant)
    async with await psycopg.AsyncConnection.connect(direct_url, autocommit=True) as conn:
        await add_member(
            conn, tenant_id=found, email=email, role=role, password=PASSWORD, min_length=10
        )
    return email


async def staff_headers(http: httpx.AsyncClient, *, tenant: str, email: str) -> dict[str, str]:
    """Log a member in on this replica; the session cookie and CSRF token as headers (sent
    by hand: outside dev the cookie is Secure, and these are plain-HTTP loopback calls)."""
    body = {"tenant": tenant, "email": email, "password": PASSWORD}
    response = await http.post("/api/staff/login", json=body)
    if response.status_code != 200:
        raise ProofFailed(f"staff login on {http.base_url}: {response.status_code}")
    cookie = response.cookies.get("posada_staff")
    if cookie is None:
        raise ProofFailed("the staff login set no session cookie")
    return {"Cookie": f"posada_staff={cookie}", "X-CSRF-Token": response.json()["csrf_token"]}


async def scrape(url: str) -> Parsed:
    """One replica's /metrics, parsed (`figures.parse_metrics`)."""
    async with client(url) as http:
        return parse_metrics((await http.get("/metrics")).text)


def total(parsed: Parsed, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels hold `labels`."""
    wanted = labels.items()
    return sum(value for key, value in parsed.get(name, {}).items() if wanted <= dict(key).items())


async def upstream_calls(llm_url: str) -> int:
    """The LLM calls the simulated LLM has seen (streamed and whole)."""
    root = llm_url.removesuffix("/").removesuffix("/v1")
    async with client(root) as http:
        stats = (await http.get("/stats")).json()
    return int(stats["started"]) + int(stats["whole"])


class Events(sse.Events):
    """A replica's Server-Sent Events stream; its end, or a hang, fails the proof."""

    patience_s = PATIENCE_S
    ended = ProofFailed

    async def until(self, check: Callable[[Event], bool]) -> Event:
        """Read on to the first event `check` accepts."""
        return await self.first(check)


@asynccontextmanager
async def events(
    http: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> AsyncIterator[Events]:
    """A live stream of this replica's, open while the block runs."""
    async with http.stream("GET", path, headers=headers) as response:
        if response.status_code != 200:
            raise ProofFailed(f"GET {path}: {response.status_code} {(await response.aread())!r}")
        yield Events(response)


@dataclass(frozen=True)
class Limits:
    """The replicas' abuse limits the proofs meet, read from their environment."""

    guest_login: Limit  # per hotel and check-in date
    staff_login: Limit  # per hotel and e-mail
    chat: Limit  # chat requests per stay


_FLAT = ("login_stay_burst", "login_stay_per_hour", "login_stay_free", "login_backoff_s",
         "login_backoff_max_s", "chat_token_burst", "chat_token_per_minute")  # fmt: skip
_STAFF = ("login_burst", "login_per_hour", "login_free")


def limits_of(env: Mapping[str, str]) -> Limits:
    """The limits a replica with this environment applies (posada's defaults elsewhere)."""
    from posada.api.chat_limits import ChatLimits
    from posada.guests.throttle import LoginThrottle
    from posada.staff.throttle import StaffLoginThrottle

    flat = {n: env[f"POSADA_{n.upper()}"] for n in _FLAT if f"POSADA_{n.upper()}" in env}
    staff = {
        n: env[f"POSADA_STAFF_{n.upper()}"] for n in _STAFF if f"POSADA_STAFF_{n.upper()}" in env
    }
    settings = Settings(_env_file=None, env="dev", **flat, staff=staff)  # type: ignore[arg-type]
    buckets = LocalBuckets()
    return Limits(
        guest_login=LoginThrottle(buckets, settings).stay_limit,
        staff_login=StaffLoginThrottle(buckets, settings).account_limit,
        chat=ChatLimits(buckets, settings).token_limit,
    )


def most_granted(limit: Limit, elapsed_s: float) -> int:
    """The most attempts `limit` grants one key from an empty bucket within `elapsed_s`,
    however they are sent (the bound the replicas together must keep)."""
    leaked = limit.rate_per_s * max(elapsed_s, 0.0)
    by_level = math.floor(limit.burst + leaked + 1e-9)
    if limit.free is None or limit.backoff_s <= 0:
        return by_level
    # From `free` on, each attempt waits a doubling back-off after the last granted one;
    # a whole attempt leaked away lowers the level (and so the waits) by one.
    granted, waited = limit.free, 0.0
    step = max(0, granted - limit.first_backoff - math.floor(leaked))
    while granted < by_level:
        waited += min(limit.backoff_s * 2.0**step, limit.backoff_max_s)
        if waited > elapsed_s:
            break
        granted, step = granted + 1, step + 1
    return min(granted, by_level)
