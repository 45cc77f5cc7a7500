"""The kill proof: one replica stopped while guests are driven through nginx.

Guests are driven through nginx; partway through, one replica gets SIGTERM (posada's
graceful stop: it stops accepting, finishes what it holds within POSADA_SHUTDOWN_GRACE_S)
and is started again; then the same with SIGKILL. What posada promises, and is asserted:

- after SIGTERM, every chat POST that got a response status got its complete answer, and
  the guest questions stored (counted on the database, hotel by hotel) are exactly those
  answered: none lost, none stored twice;
- after either signal, no question is stored twice: nginx passes a POST to another
  replica only after a refused connection (nothing sent), and every POST that failed
  after reaching a replica (nginx's error log) was answered 502 from that one replica
  (its access log), not sent again; and every complete answer the guests got is stored.

What SIGKILL does to answers in flight is reported, not asserted: their question is
stored (before any LLM call), the answer dies with the process (a stream is cut, a whole
answer becomes nginx's 502), so such questions stay without a stored answer.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter
from typing import TYPE_CHECKING, Any

import psycopg

from posada_bench.driver import Drive, drive
from posada_bench.scale.nginx import read_access_log
from posada_bench.scale.proofs_parts import Proof, Say, tenant_id
from posada_bench.workload import Session

if TYPE_CHECKING:
    from posada_bench.scale.stack import ScaleRun

_COUNTS = """SELECT count(*) FILTER (WHERE role = 'guest'),
       count(*) FILTER (WHERE role = 'assistant'),
       count(*) FILTER (WHERE role = 'assistant' AND incomplete)
FROM messages WHERE tenant_id = %s"""
_CHAT_PATHS = ("/api/guest/chat", "/api/guest/chat/stream")


async def stored(direct_url: str, tenants: list[int]) -> Counter[str]:
    """Guest questions, answers and incomplete answers stored, over these hotels."""
    found: Counter[str] = Counter()
    async with await psycopg.AsyncConnection.connect(direct_url) as conn:
        for tenant in tenants:
            cur = await conn.execute(_COUNTS, (tenant,))
            row = await cur.fetchone()
            assert row is not None
            found.update(questions=int(row[0]), answers=int(row[1]), incomplete=int(row[2]))
    return found


def tally(run: Drive) -> dict[str, int]:
    """What the guests' chat requests got, as the driver saw them."""
    chats = [s for s in run.samples if s.kind in ("chat", "stream")]
    return {
        "sent": len(chats),
        "answered": sum(1 for s in chats if s.status == 200),
        "complete": sum(1 for s in chats if s.ok),
        "cut": sum(1 for s in chats if s.status == 200 and not s.ok),
        "refused_429": sum(1 for s in chats if s.status == 429),
        "failed_5xx": sum(1 for s in chats if s.status >= 500),
        "no_status": sum(1 for s in chats if s.status == 0),
        "logins_failed": sum(1 for s in run.samples if s.kind == "login" and not s.ok),
    }


_AFTER_SEND = re.compile(
    r"\[error\].*?\*(\d+) (?:upstream prematurely closed connection|recv\(\) failed .*?)"
    r" while reading response header from upstream.*?request: \"POST (/api/guest/chat\S*) "
)


def nginx_view(lines: list[dict[str, Any]], error_log: str) -> dict[str, int]:
    """What nginx did with the guests' chat POSTs: how many it passed on to another replica
    (each after a refused connection: nothing had been sent), how many failed after they
    reached a replica (its error log), and how many it answered 502 from the replica it
    first sent them to (not sent again)."""
    posts = [x for x in lines if x.get("method") == "POST" and x.get("uri") in _CHAT_PATHS]
    moved = [x for x in posts if "," in str(x.get("upstream", ""))]
    unmoved_5xx = [x for x in posts if x not in moved and str(x.get("status", "")).startswith("5")]
    failed = {m.group(1) for m in _AFTER_SEND.finditer(error_log) if m.group(2) in _CHAT_PATHS}
    return {
        "chat_posts": len(posts),
        "moved_to_another_replica": len(moved),
        "failed_after_reaching_a_replica": len(failed),
        "answered_5xx_not_resent": len(unmoved_5xx),
    }


async def _round(
    run: ScaleRun,
    sessions: list[Session],
    *,
    sig: signal.Signals,
    victim: str,
    guests: int,
    duration_s: float,
    say: Say,
) -> dict[str, Any]:
    """Drive `sessions` through nginx, send `sig` to `victim` partway, start it again."""
    stack = run.stack
    tenants = [
        await tenant_id(stack.direct_url, slug) for slug in {s.stay.tenant for s in sessions}
    ]
    log = stack.nginx_log
    offset = log.stat().st_size if log is not None and log.exists() else 0
    errors = stack.folder / "nginx" / "error.log"
    error_offset = errors.stat().st_size if errors.exists() else 0
    before = await stored(stack.direct_url, tenants)
    say(f"proof kill: {guests} guests through nginx, {sig.name} to {victim} partway ...")
    driving = asyncio.create_task(
        drive(
            base_url=stack.site,
            sessions=sessions,
            guests=guests,
            duration_s=duration_s,
            ramp_s=min(2.0, duration_s / 4),
        )
    )
    try:
        await asyncio.sleep(duration_s * 0.4)
        await asyncio.to_thread(stack.stop_replica, victim, sig=sig)
        driven = await driving
    finally:
        if not driving.done():
            driving.cancel()
        say(f"proof kill: starting {victim} again ...")
        if stack.replica(victim).process is None:
            await asyncio.to_thread(stack.start_replica, victim)
    after = await stored(stack.direct_url, tenants)
    lines = read_access_log(log, offset=offset) if log is not None else []
    error_text = (
        errors.read_bytes()[error_offset:].decode("utf-8", "replace") if errors.exists() else ""
    )
    return {
        "signal": sig.name,
        "victim": victim,
        "driver": tally(driven),
        "stored": {k: after[k] - before[k] for k in ("questions", "answers", "incomplete")},
        "nginx": nginx_view(lines, error_text),
    }


def judge_round(found: dict[str, Any], *, graceful: bool) -> list[str]:
    """What went against posada's promise in one round (nothing: it held)."""
    driver, rows = found["driver"], found["stored"]
    name = found["signal"]
    problems = []
    if rows["questions"] > driver["sent"]:
        problems.append(f"{name}: {rows['questions']} questions stored of {driver['sent']} sent")
    if rows["answers"] < driver["complete"]:
        problems.append(f"{name}: {driver['complete']} complete answers, {rows['answers']} stored")
    seen = found["nginx"]
    if seen["failed_after_reaching_a_replica"] != seen["answered_5xx_not_resent"]:
        problems.append(f"{name}: nginx {seen}: a POST that had reached a replica was sent on")
    if driver["complete"] == 0:
        problems.append(f"{name}: no question was answered")
    if graceful:
        if driver["cut"]:
            problems.append(f"{name}: {driver['cut']} answers cut")
        if rows["questions"] != driver["answered"]:
            problems.append(
                f"{name}: {rows['questions']} questions stored, {driver['answered']} answered"
            )
    return problems


async def kill_proof(
    run: ScaleRun,
    sessions: list[Session],
    *,
    say: Say = print,
    guests: int = 30,
    duration_s: float = 24.0,
    victim: str | None = None,
) -> Proof:
    """SIGTERM, then SIGKILL, to one replica while `guests` are driven through nginx."""
    target = victim or run.stack.replicas[1].name
    rounds = []
    for n, sig in enumerate((signal.SIGTERM, signal.SIGKILL)):
        rounds.append(
            await _round(
                run,
                sessions[n::2],
                sig=sig,
                victim=target,
                guests=guests,
                duration_s=duration_s,
                say=say,
            )
        )
    problems = judge_round(rounds[0], graceful=True) + judge_round(rounds[1], graceful=False)
    term, kill = rounds
    detail = "; ".join(problems) or (
        f"SIGTERM to {target}: {term['driver']['answered']} questions answered and stored, "
        f"{term['driver']['failed_5xx']} 5xx, none cut; SIGKILL: {kill['driver']['cut']} "
        f"streams cut and {kill['driver']['failed_5xx']} 502s (not sent again), "
        f"{kill['stored']['questions'] - kill['stored']['answers']} questions stored without "
        f"an answer ({kill['stored']['incomplete']} stored as incomplete), none stored twice"
    )
    return Proof("kill", not problems, {"rounds": rounds}, detail)
