"""The abuse limits' proofs: wrong guest and staff logins, and chat requests, spread over
the replicas, are refused past the configured limit as if they all met one server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

import httpx

from posada.limits.buckets import Limit
from posada_bench.hotels import Stay
from posada_bench.scale.proofs_parts import (
    Proof,
    Say,
    client,
    guest_auth,
    limits_of,
    most_granted,
    scrape,
    total,
)

if TYPE_CHECKING:
    from posada_bench.scale.stack import ScaleRun

# A check-in date no reservation has: its wrong logins lock no real guest out.
NOBODYS_DATE = date(2001, 2, 3)
CHAT_QUESTION = "What time is check-out?"


def judge(
    name: str,
    *,
    limit: Limit,
    results: list[tuple[str, int]],
    granted_status: int,
    elapsed_s: float,
    what: str,
    redis_errors: dict[str, float] | None = None,
) -> Proof:
    """Whether `results` ((replica, status) per attempt, in order sent) kept `limit` across
    the replicas: at least its free attempts granted, no more than one server grants in the
    time taken, and every replica refusing once the bucket they share is full."""
    granted = [r for r, status in results if status == granted_status]
    refused = [r for r, status in results if status == 429]
    other = [(r, s) for r, s in results if s not in (granted_status, 429)]
    replicas = sorted({r for r, _ in results})
    bound = most_granted(limit, elapsed_s)
    floor = min(limit.first_backoff, len(results))
    alone = min(len(results), len(replicas) * limit.first_backoff)
    problems = []
    if not floor <= len(granted) <= bound:
        problems.append(f"{len(granted)} granted, expected {floor} to {bound}")
    quiet = [r for r in replicas if r not in refused]
    if quiet:
        problems.append(f"{', '.join(quiet)} never refused")
    if other:
        problems.append(f"unexpected answers {other[:3]}")
    lost = {name: n for name, n in (redis_errors or {}).items() if n}
    if problems and lost:
        # Documented: a replica that cannot reach Redis counts chat requests in its own
        # memory meanwhile (logins go to PostgreSQL instead, still shared).
        problems.append(f"Redis failed meanwhile on {lost} (see posada_redis_errors)")
    counters: dict[str, Any] = {
        "attempts": len(results),
        "granted": len(granted),
        "refused": len(refused),
        "granted_per_replica": dict(Counter(granted)),
        "refused_per_replica": dict(Counter(refused)),
        "limit": {"burst": limit.burst, "free": limit.free, "backoff_s": limit.backoff_s},
        "most_one_server_grants": bound,
        "if_each_replica_counted_alone": alone,
        "elapsed_s": round(elapsed_s, 2),
        "redis_errors_per_replica": redis_errors or {},
    }
    detail = "; ".join(problems) or (
        f"{len(results)} {what} over {len(replicas)} replicas: {len(granted)} granted, "
        f"then 429 from every replica (one server allows {bound}; counted per replica, "
        f"{alone} would pass)"
    )
    return Proof(name, not problems, counters, detail)


Attempt = Callable[[httpx.AsyncClient, int], Awaitable[int]]


async def redis_errors(run: ScaleRun) -> dict[str, float]:
    """Each replica's count of failed Redis operations so far."""
    found = {}
    for replica in run.stack.replicas[:3]:
        found[replica.name] = total(await scrape(replica.url), "posada_redis_errors_total")
    return found


async def _in_turn(
    run: ScaleRun, attempt: Attempt, count: int, https: list[httpx.AsyncClient]
) -> tuple[list[tuple[str, int]], float, dict[str, float]]:
    """`count` attempts in rounds of one per replica, each round's sent together;
    (replica, status) per attempt, the seconds taken, and the Redis errors meanwhile (a
    replica that cannot reach Redis counts chat requests in its own memory)."""
    names = [r.name for r in run.stack.replicas[:3]]
    before = await redis_errors(run)
    results: list[tuple[str, int]] = []
    began = time.monotonic()
    for first in range(0, count, len(names)):
        turn = range(first, min(first + len(names), count))
        statuses = await asyncio.gather(*(attempt(https[n % len(https)], n) for n in turn))
        results += [
            (names[n % len(names)], status) for n, status in zip(turn, statuses, strict=True)
        ]
    elapsed = time.monotonic() - began
    after = await redis_errors(run)
    return results, elapsed, {name: after[name] - before[name] for name in names}


async def guest_login_proof(run: ScaleRun, stay: Stay, *, say: Say) -> Proof:
    """Wrong guest logins for one hotel and check-in date, over r1, r2, r3 in turn."""
    body = {"tenant": stay.tenant, "check_in": NOBODYS_DATE.isoformat(), "phone_last4": "0000"}
    limit = limits_of(run.stack.env).guest_login
    return await _login_proof(run, who="guest", body=body, limit=limit, say=say)


async def staff_login_proof(run: ScaleRun, stay: Stay, *, say: Say) -> Proof:
    """Wrong staff logins for one hotel and e-mail (no such member), over r1, r2, r3."""
    email = f"proof-nobody-{uuid.uuid4().hex[:8]}@example.org"
    body = {"tenant": stay.tenant, "email": email, "password": "not the password"}
    limit = limits_of(run.stack.env).staff_login
    return await _login_proof(run, who="staff", body=body, limit=limit, say=say)


async def _login_proof(
    run: ScaleRun, *, who: Literal["guest", "staff"], body: dict[str, str], limit: Limit, say: Say
) -> Proof:
    """The same wrong `who` login (guest or staff), over r1, r2, r3 in turn, past `limit`."""
    count = 3 * limit.first_backoff + 3
    say(f"proof {who}-login throttle: {count} wrong logins over the replicas ...")

    async def attempt(http: httpx.AsyncClient, _: int) -> int:
        return (await http.post(f"/api/{who}/login", json=body)).status_code

    async with _clients(run) as https:
        results, elapsed, errors = await _in_turn(run, attempt, count, https)
    return judge(
        f"{who}-login-throttle",
        limit=limit,
        results=results,
        granted_status=401,
        elapsed_s=elapsed,
        what=f"wrong {who} logins",
        redis_errors=errors,
    )


async def chat_limit_proof(run: ScaleRun, stay: Stay, *, say: Say) -> Proof:
    """One stay's chat requests (a token of its own on each replica), over r1, r2, r3."""
    limit = limits_of(run.stack.env).chat
    count = 3 * limit.burst + 3
    say(f"proof chat rate limit: {count} questions of one stay over the replicas ...")
    async with _clients(run) as https:
        auths = [await guest_auth(h, stay) for h in https]

        async def attempt(http: httpx.AsyncClient, n: int) -> int:
            body = {"message": CHAT_QUESTION}
            response = await http.post("/api/guest/chat", json=body, headers=auths[n % len(auths)])
            return response.status_code

        results, elapsed, errors = await _in_turn(run, attempt, count, https)
    return judge(
        "chat-rate-limit",
        limit=limit,
        results=results,
        granted_status=200,
        elapsed_s=elapsed,
        what="chat requests of one stay",
        redis_errors=errors,
    )


@asynccontextmanager
async def _clients(run: ScaleRun) -> AsyncIterator[list[httpx.AsyncClient]]:
    """A client of each of the first three replicas, open while the block runs."""
    https = [client(r.url) for r in run.stack.replicas[:3]]
    try:
        yield https
    finally:
        for http in https:
            await http.aclose()
