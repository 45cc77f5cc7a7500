"""`posada db profile`: the plans of the queries a guest's visit runs, and what to fix in them.

The profiled SQL is never copied here: the real service functions run on one connection
whose cursors first `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` each statement (inside a
savepoint rolled back at once, so a write is not done twice), then run it. The whole
visit is one transaction, rolled back at the end: nothing stays written.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from posada.answers.extractive import Thresholds, respond
from posada.answers.lookup import lookup
from posada.answers.models import Source
from posada.answers.routing import retrieval_text
from posada.answers.turn import fusion_weights
from posada.api.routes import conversations as conversation_routes
from posada.core.config import Settings
from posada.core.errors import ConfigurationError, NotFound, Unavailable
from posada.core.language import detect_language
from posada.db.pool import AsyncConn, open_pool
from posada.guests.conversations import (
    list_conversations,
    list_messages,
    record_answer,
    record_guest_message,
)
from posada.guests.service import log_in
from posada.guests.tokens import GuestClaims
from posada.knowledge.retrieval import Visibility
from posada.providers.types import Embedder
from posada.tenants.service import get_tenant
from posada_bench._plans import (
    EXPLAIN,
    Capture,
    Captured,
    Flag,
    capture_plans,
    plan_flags,
    summary_lines,
)
from posada_bench.conversations_profile import conversations_visit
from posada_bench.staff_profile import seed_reservations, staff_visit

# One guest's visit: a new conversation, follow-ups in it, Spanish and English.
QUESTIONS = (
    "¿Cuál es la clave del wifi?",
    "¿A qué hora es el check-out?",
    "Where can I go scuba diving near the hotel?",
    "and is breakfast included?",
)


@dataclass(frozen=True)
class Guest:
    """The reservation whose guest the profile plays."""

    tenant_slug: str
    reservation_id: int
    unit_id: int
    unit_slug: str
    check_in: date
    phone_last4: str


async def find_guest(conn: AsyncConn, *, tenant: str | None) -> Guest:
    """A current (else the latest) live reservation of `tenant`, or of the first hotel with one."""
    if tenant is not None:
        await get_tenant(conn, slug=tenant)  # an unknown hotel says so
    cur = await conn.execute(
        """SELECT t.slug, r.id, u.id, u.slug, r.check_in, r.phone_last4
           FROM tenants t JOIN reservations r ON r.tenant_id = t.id
           JOIN units u ON u.id = r.unit_id
           WHERE (%(slug)s::text IS NULL OR t.slug = %(slug)s) AND r.status <> 'cancelled'
           ORDER BY t.id, current_date BETWEEN r.check_in AND r.check_out DESC,
                    r.check_in DESC, r.id
           LIMIT 1""",
        {"slug": tenant},
    )
    row = await cur.fetchone()
    if row is None:
        who = f"hotel {tenant!r} has no reservation" if tenant else "no hotel has a reservation"
        raise NotFound(
            f"{who} to play a guest with; import some first "
            "(posada reservations import FILE.csv --tenant SLUG, or posada demo)"
        )
    return Guest(*row)


def _route_default(route: Callable[..., Any], parameter: str) -> int:
    # The page size a guest's page asks for is the route's default; read it, not a copy.
    default: int = inspect.signature(route).parameters[parameter].default
    return default


async def guest_visit(
    conn: AsyncConn, capture: Capture, *, guest: Guest, settings: Settings, embedder: Embedder
) -> None:
    """What a guest's requests run: log in, ask QUESTIONS in one conversation, read it back."""
    with capture.calling(get_tenant, "log-in and public info: the hotel by slug"):
        tenant = await get_tenant(conn, slug=guest.tenant_slug)
    with capture.calling(log_in, "check-in date and phone"):
        await log_in(
            conn,
            tenant=tenant,
            check_in=guest.check_in,
            phone_last4=guest.phone_last4,
            secret=secrets.token_urlsafe(32),  # the token is never used
            ttl=timedelta(hours=settings.jwt_ttl_hours),
            days_before=settings.login_days_before,
            today=guest.check_in,
        )
    claims = GuestClaims(
        tenant.id, tenant.slug, guest.reservation_id, guest.unit_id, issued_at=time.time()
    )
    conversation: int | None = None
    for question in QUESTIONS:
        turn = "new conversation" if conversation is None else "turn in a conversation"
        with capture.calling(record_guest_message, f"{turn}: {question}"):
            recorded = await record_guest_message(
                conn,
                guest=claims,
                conversation_id=conversation,
                content=question,
                history_turns=settings.history_turns,
            )
        conversation = recorded.conversation_id
        search = retrieval_text(question, recorded.history)
        embedding = (await embedder.embed_batch([search]))[0]
        with capture.calling(lookup, question):
            retrieved = await lookup(
                conn,
                visibility=Visibility(tenant.id, guest.unit_id),
                text=search,
                embedding=embedding,
                cache=settings.semantic_cache,
                language=detect_language(question),
                k=settings.retrieval_k,
                candidates=settings.retrieval_candidates,
                weights=fusion_weights(question, settings),
            )
        draft = respond(question, retrieved, Thresholds.of(settings))
        with capture.calling(record_answer, f"{draft.layer} answer: {question}"):
            await record_answer(
                conn,
                tenant_id=tenant.id,
                conversation_id=conversation,
                content=draft.text,
                layer=draft.layer,
                sources=[Source.of(hit).as_dict() for hit in draft.sources],
                timings={},
            )
    assert conversation is not None
    with capture.calling(list_conversations, "first page"):
        await list_conversations(
            conn,
            guest=claims,
            before=None,
            limit=_route_default(conversation_routes.conversations, "limit"),
        )
    with capture.calling(list_messages, "first page"):
        await list_messages(
            conn,
            guest=claims,
            conversation_id=conversation,
            after=None,
            limit=_route_default(conversation_routes.conversation, "limit"),
        )


@dataclass(frozen=True)
class TopStatement:
    """One row of pg_stat_statements."""

    calls: int
    total_ms: float
    mean_ms: float
    rows: int
    query: str


@dataclass
class Profile:
    """What `posada db profile` found."""

    database: str
    guest: Guest
    large_rows: int
    slow_ms: float
    statements: list[Captured]
    table_rows: dict[str, float]
    flags: list[Flag]
    top: list[TopStatement] = field(default_factory=list)
    stat_statements_missing: str | None = None
    taken_at: datetime = field(default_factory=lambda: datetime.now(UTC))


async def enable_stat_statements(url: str) -> str | None:
    """Create pg_stat_statements if it can be; None when it is readable, else why not."""
    try:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise Unavailable(f"cannot reach the database: {exc}".strip()) from exc
    async with conn:
        migrated = await (await conn.execute("SELECT to_regclass('schema_migrations')")).fetchone()
        if migrated is None or migrated[0] is None:
            raise ConfigurationError("this database has no posada schema: run `posada db migrate`")
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await conn.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0]
            return f"pg_stat_statements is not available on this server ({reason})"
    return None


async def top_statements(conn: AsyncConn, *, limit: int) -> list[TopStatement]:
    """This database's statements by total execution time, the profiler's EXPLAINs left out."""
    cur = await conn.execute(
        """SELECT s.calls, s.total_exec_time, s.mean_exec_time, s.rows, s.query
           FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
           WHERE d.datname = current_database() AND s.query NOT LIKE %s
           ORDER BY s.total_exec_time DESC LIMIT %s""",
        (EXPLAIN.strip() + "%", limit),
    )
    return [
        TopStatement(int(c), float(t), float(m), int(r), q)
        for c, t, m, r, q in await cur.fetchall()
    ]


async def profile_database(
    *,
    url: str,
    settings: Settings,
    embedder: Embedder,
    tenant: str | None = None,
    large_rows: int = 1000,
    slow_ms: float = 500.0,
    top: int = 15,
    reservations: int = 0,
) -> Profile:
    """Play one guest's visit and the front desk's explained, flag their plans, and read
    pg_stat_statements; `reservations` made-up stays are added first (and rolled back)."""
    missing = await enable_stat_statements(url)
    load = getattr(embedder, "load", None)  # a local model
    if load is not None:
        # Loaded before the transaction opens, so it is not held open while a model loads.
        await asyncio.to_thread(load)
    # The app's own pool: its connections are configured as production's are.
    pool = await open_pool(url, min_size=1, max_size=1)
    try:
        async with pool.connection() as conn:
            guest = await find_guest(conn, tenant=tenant)
            version = await (await conn.execute("SHOW server_version")).fetchone()
            assert version is not None
            database = f"{conn.info.dbname} on {conn.info.host} (PostgreSQL {version[0]})"

            async def visit(c: AsyncConn, capture: Capture) -> None:
                tenant_id = (await get_tenant(c, slug=guest.tenant_slug)).id
                today = datetime.now(UTC).date()
                await seed_reservations(c, tenant_id=tenant_id, count=reservations, today=today)
                await guest_visit(c, capture, guest=guest, settings=settings, embedder=embedder)
                await staff_visit(c, capture, tenant_id=tenant_id, today=today)
                await conversations_visit(c, capture, tenant_id=tenant_id)

            statements, table_rows = await capture_plans(conn, work=visit)
            flags = [
                flag
                for s in statements
                for flag in plan_flags(
                    s, table_rows=table_rows, large_rows=large_rows, slow_ms=slow_ms
                )
            ]
            tops = [] if missing else await top_statements(conn, limit=top)
    finally:
        await pool.close()
    return Profile(
        database, guest, large_rows, slow_ms, statements, table_rows, flags, tops, missing
    )


def grouped_flags(flags: list[Flag]) -> list[tuple[Flag, int]]:
    """Each distinct flag once, with how many runs raised it, in the order first seen."""
    counts: dict[tuple[str, str, str], tuple[Flag, int]] = {}
    for flag in flags:
        key = (flag.kind, flag.function, flag.detail)
        first, n = counts.get(key, (flag, 0))
        counts[key] = (first, n + 1)
    return list(counts.values())


def _runs(n: int) -> str:
    return "1 run" if n == 1 else f"{n} runs"


def _cell(text: str, width: int = 0) -> str:
    flat = " ".join(text.split())
    if width and len(flat) > width:
        flat = flat[: width - 1] + "…"
    return flat.replace("|", "\\|")


def render_report(profile: Profile) -> str:
    """The Markdown report."""
    g = profile.guest
    by_function: dict[str, list[Captured]] = {}
    for statement in profile.statements:
        by_function.setdefault(statement.function, []).append(statement)
    sizes = ", ".join(f"{name} ~{rows:.0f}" for name, rows in sorted(profile.table_rows.items()))
    lines = [
        "# posada database profile",
        "",
        f"- database: {profile.database}",
        f"- taken: {profile.taken_at:%Y-%m-%d %H:%M} UTC",
        f"- guest played: hotel `{g.tenant_slug}`, reservation {g.reservation_id} "
        f"(unit `{g.unit_slug}`, check-in {g.check_in})",
        f"- questions: {'; '.join(QUESTIONS)}",
        f"- flags: sequential scans of tables over {profile.large_rows} rows, scans whose "
        f"filter removed over {profile.large_rows} rows, statements over {profile.slow_ms:g} ms",
        f"- estimated rows of the tables scanned: {sizes}",
        "- every statement ran in one transaction, rolled back: nothing was left written",
        "",
        "## Summary",
        "",
        f"{len(profile.statements)} statements from {len(by_function)} functions; "
        f"{len(profile.flags)} flags.",
        "",
        "| function | runs | execution ms (max) | planning ms (max) | flags |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for function, runs in by_function.items():
        lines.append(
            f"| `{function}` | {len(runs)} | {max(r.execution_ms for r in runs):.3f} | "
            f"{max(r.planning_ms for r in runs):.3f} | "
            f"{sum(f.function == function for f in profile.flags)} |"
        )
    lines += ["", "Flags, the same one in several runs once:", ""] if profile.flags else []
    lines += [
        f"- **{f.kind}** `{f.function}` ({_runs(n)}): {f.detail}"
        for f, n in grouped_flags(profile.flags)
    ]
    lines += ["", "## Hot queries", ""]
    for function, runs in by_function.items():
        lines += _function_section(profile, function, runs)
    lines += _stat_statements_section(profile)
    return "\n".join(lines) + "\n"


def _function_section(profile: Profile, function: str, runs: list[Captured]) -> list[str]:
    lines = [
        f"### `{function}`",
        "",
        "| case | execution ms | planning ms | shared hit | shared read | flags |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in runs:
        kinds = sorted(
            {f.kind for f in profile.flags if (f.function, f.case) == (function, s.case)}
        )
        lines.append(
            f"| {_cell(s.case, 70)} | {s.execution_ms:.3f} | {s.planning_ms:.3f} | "
            f"{s.shared_hit} | {s.shared_read} | {', '.join(kinds) or '-'} |"
        )
    slowest = max(runs, key=lambda s: s.execution_ms)
    lines += ["", f"Plan of the slowest run ({_cell(slowest.case, 70)}):", "", "```text"]
    lines += summary_lines(slowest.plan)
    lines += ["```", ""]
    flagged = grouped_flags([f for f in profile.flags if f.function == function])
    lines += [f"- **{f.kind}** ({_runs(n)}): {f.detail}" for f, n in flagged]
    return [*lines, ""] if flagged else lines


def _stat_statements_section(profile: Profile) -> list[str]:
    lines = ["## pg_stat_statements: top statements by total execution time", ""]
    if profile.stat_statements_missing:
        return [*lines, profile.stat_statements_missing + "; this section is empty."]
    lines += [
        "This database only, since the statistics were last reset; the profiler's EXPLAINs "
        "are left out, its own runs of each statement are counted.",
        "",
        "| calls | total ms | mean ms | rows | query |",
        "| ---: | ---: | ---: | ---: | --- |",
    ]
    lines += [
        f"| {t.calls} | {t.total_ms:.1f} | {t.mean_ms:.3f} | {t.rows} | `{_cell(t.query, 140)}` |"
        for t in profile.top
    ]
    return lines
