"""The kill proof: one replica stopped while guests are driven through nginx.

Guests are driven through nginx; partway through, one replica gets SIGTERM (posada's
graceful stop: it stops accepting, finishes what it holds within POSADA_SHUTDOWN_GRACE_S)
and is started again; then the same with SIGKILL. What posada promises, and is asserted:

- after SIGTERM, every chat POST that got a response status got its complete answer, and
  the guest questions stored (counted on the database, hotel by hotel) are exactly those
  answered: none lost, none stored twice;
- after either signal, no question is stored twice: every question of a round is made
  unique (a tag), and none is stored more often than the round holds it (counted per
  text, hotel by hotel); request by request (nginx's JSON access log names each with its
  `$request_id` and `$connection`), nginx tried another replica only after a failed
  connect to each one before (its error log, same connection and replica: nothing had
  been sent), and every POST that failed after reaching a replica (the error log's
  "while reading response header") ended there, answered 5xx, not sent again; and every
  complete answer the guests got is stored.

What SIGKILL does to answers in flight is reported, not asserted: their question is
stored (before any LLM call), the answer dies with the process (a stream is cut, a whole
answer becomes nginx's 502), so such questions stay without a stored answer.
"""

from __future__ import annotations

import asyncio
import re
import signal
import uuid
from collections import Counter
from dataclasses import replace
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


_BY_TEXT = """SELECT content, count(*) FROM messages
WHERE tenant_id = %s AND role = 'guest' AND content = ANY(%s) GROUP BY content"""


async def stored_texts(direct_url: str, tenants: list[int], texts: list[str]) -> Counter[str]:
    """How many times each of these guest questions is stored, over these hotels."""
    found: Counter[str] = Counter()
    async with await psycopg.AsyncConnection.connect(direct_url) as conn:
        for tenant in tenants:
            cur = await conn.execute(_BY_TEXT, (tenant, texts))
            found.update({str(text): int(n) for text, n in await cur.fetchall()})
    return found


def tagged(sessions: list[Session], *, mark: str) -> list[Session]:
    """The sessions with every question made unique (a tag at its end): the driver visits
    a session at most once, so no question of a round may be stored twice."""
    return [
        replace(
            session,
            turns=[
                replace(turn, text=f"{turn.text} (#{mark}.{i}.{j})")
                for j, turn in enumerate(session.turns)
            ],
        )
        for i, session in enumerate(sessions)
    ]


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


# One [error] line of nginx's about a request: its connection (`*N`), what failed, the
# request line's path and the replica it was talking to.
_ERROR = re.compile(
    r"\[error\] \S+ \*(\d+) (.*?), client: .*?request: \"POST (\S+) [^\"]*\""
    r"(?:, upstream: \"\w+://([^/\"]+))?"
)


def _failures(error_log: str) -> tuple[Counter[tuple[str, str]], list[tuple[str, str]]]:
    """The chat POSTs' failed connects, and their failures after being sent, as
    (connection, replica address)."""
    connects: Counter[tuple[str, str]] = Counter()
    after_send = []
    for m in _ERROR.finditer(error_log):
        connection, what, path, addr = m.group(1), m.group(2), m.group(3), m.group(4) or ""
        if path not in _CHAT_PATHS:
            continue
        if what.endswith("while connecting to upstream"):
            connects[(connection, addr)] += 1
        elif what.endswith("while reading response header from upstream"):
            after_send.append((connection, addr))
    return connects, after_send


def _tries(line: dict[str, Any]) -> list[str]:
    return [a.strip() for a in str(line.get("upstream", "")).split(",") if a.strip()]


def nginx_view(lines: list[dict[str, Any]], error_log: str) -> dict[str, Any]:
    """What nginx did with the guests' chat POSTs, request by request: each one passed on
    to another replica must have failed to connect to every replica before (its error log,
    same connection and replica: nothing had been sent), and each failure after a POST
    reached a replica must be the last try of one request, answered 5xx from there."""
    posts = [x for x in lines if x.get("method") == "POST" and x.get("uri") in _CHAT_PATHS]
    ids = Counter(str(x.get("request_id", "")) for x in posts)
    not_unique = sum(1 for x in posts if not x.get("request_id") or ids[x["request_id"]] > 1)
    connects, after_send = _failures(error_log)
    sent_again = []
    for post in posts:
        for addr in _tries(post)[:-1]:
            key = (str(post.get("connection", "")), addr)
            if connects[key] > 0:
                connects[key] -= 1
            else:
                sent_again.append(f"{post.get('request_id')} on {addr}")
    answered, unmatched = set(), []
    for connection, addr in after_send:
        match = next(
            (
                str(p.get("request_id"))
                for p in posts
                if str(p.get("connection", "")) == connection
                and _tries(p)[-1:] == [addr]
                and str(p.get("status", "")).startswith("5")
                and str(p.get("request_id")) not in answered
            ),
            None,
        )
        if match is None:
            unmatched.append(f"*{connection} on {addr}")
        else:
            answered.add(match)
    return {
        "chat_posts": len(posts),
        "request_ids_not_unique": not_unique,
        "moved_to_another_replica": sum(1 for x in posts if len(_tries(x)) > 1),
        "sent_again_after_reaching_a_replica": sent_again,
        "failed_after_reaching_a_replica": len(after_send),
        "answered_5xx_not_resent": len(answered),
        "failures_without_their_request": unmatched,
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
    texts = [t.text for s in sessions for t in s.turns]
    before = await stored(stack.direct_url, tenants)
    already = await stored_texts(stack.direct_url, tenants, texts)
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
    by_text = await stored_texts(stack.direct_url, tenants, texts) - already
    asked = Counter(texts)
    lines = read_access_log(log, offset=offset) if log is not None else []
    error_text = (
        errors.read_bytes()[error_offset:].decode("utf-8", "replace") if errors.exists() else ""
    )
    return {
        "signal": sig.name,
        "victim": victim,
        "driver": tally(driven),
        "stored": {k: after[k] - before[k] for k in ("questions", "answers", "incomplete")}
        | {
            "questions_of_the_round": sum(by_text.values()),
            "stored_more_than_sent": sorted(t for t, n in by_text.items() if n > asked[t]),
        },
        "nginx": nginx_view(lines, error_text),
    }


def judge_round(found: dict[str, Any], *, graceful: bool) -> list[str]:
    """What went against posada's promise in one round (nothing: it held)."""
    driver, rows = found["driver"], found["stored"]
    name = found["signal"]
    problems = []
    if rows["questions"] > driver["sent"]:
        problems.append(f"{name}: {rows['questions']} questions stored of {driver['sent']} sent")
    if rows["stored_more_than_sent"]:
        twice = rows["stored_more_than_sent"]
        problems.append(f"{name}: {len(twice)} questions stored twice, e.g. {twice[0]!r}")
    if rows["questions_of_the_round"] != rows["questions"]:
        problems.append(
            f"{name}: {rows['questions']} questions stored, "
            f"{rows['questions_of_the_round']} of them the round's"
        )
    if rows["answers"] < driver["complete"]:
        problems.append(f"{name}: {driver['complete']} complete answers, {rows['answers']} stored")
    problems += _judge_nginx(name, found["nginx"])
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


def _judge_nginx(name: str, seen: dict[str, Any]) -> list[str]:
    problems = []
    if seen["request_ids_not_unique"]:
        problems.append(f"{name}: {seen['request_ids_not_unique']} chat POSTs without their own id")
    if seen["sent_again_after_reaching_a_replica"]:
        again = seen["sent_again_after_reaching_a_replica"]
        problems.append(f"{name}: nginx sent {len(again)} POSTs on with no failed connect: {again}")
    if seen["failures_without_their_request"]:
        lost = seen["failures_without_their_request"]
        problems.append(
            f"{name}: {len(lost)} POSTs failed after reaching a replica and were not "
            f"answered 5xx from there: {lost}"
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
    mark = uuid.uuid4().hex[:6]
    for n, sig in enumerate((signal.SIGTERM, signal.SIGKILL)):
        rounds.append(
            await _round(
                run,
                tagged(sessions[n::2], mark=f"{mark}{n}"),
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
