"""`posada db profile` on the session's real database: plans captured, nothing written, flags."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from posada.answers.lookup import lookup
from posada.db.pool import AsyncConn
from posada.demo import DEMO_SLUG
from posada.guests.conversations import (
    list_conversations,
    list_messages,
    record_answer,
    record_guest_message,
)
from posada.guests.service import log_in
from posada.runtime import Runtime
from posada.staff import conversations as desk_conversations
from posada.staff.faq import list_faq
from posada.staff.report import failed_questions
from posada.staff.reservations import cancel_reservation, list_reservations
from posada.tenants.service import get_tenant
from posada_bench._plans import Capture, capture_plans, function_name, plan_flags, walk
from posada_bench.profile import QUESTIONS, Profile, profile_database, render_report, top_statements
from tests.support.helpers import CliResult, run_cli

HOT = {
    function_name(fn)
    for fn in (
        get_tenant,
        log_in,
        record_guest_message,
        lookup,
        record_answer,
        list_conversations,
        list_messages,
        list_reservations,
        cancel_reservation,
        desk_conversations.list_conversations,
        desk_conversations.read_conversation,
        failed_questions,
        list_faq,
    )
}
SCRATCH_ROWS = 5000


async def _count(runtime: Runtime) -> tuple[int, int]:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages)"
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def _profile(runtime: Runtime, *, large_rows: int = 1000, reservations: int = 0) -> Profile:
    return await profile_database(
        url=runtime.database_url,
        settings=runtime.settings,
        embedder=runtime.embedder,
        tenant=DEMO_SLUG,
        large_rows=large_rows,
        reservations=reservations,
    )


async def test_the_front_desk_s_list_uses_its_indexes_at_a_large_hotel_s_size(
    runtime: Runtime,
) -> None:
    async def stays() -> int:
        async with runtime.pool.connection() as conn:
            row = await (await conn.execute("SELECT count(*) FROM reservations")).fetchone()
        assert row is not None
        return int(row[0])

    before = await stays()
    profile = await _profile(runtime, reservations=100_000)
    assert await stays() == before, "the made-up stays are rolled back"
    desk = [s for s in profile.statements if s.function == function_name(list_reservations)]
    assert {s.case for s in desk} >= {
        "first page", "stays this week", "a guest's name, one stay", "the next page (keyset)",
    }  # fmt: skip
    assert profile.table_rows["reservations"] >= 100_000
    # No statement of the desk's walks the hotel's stays: no seq scan, no filter throwing
    # away more than a thousand rows (a name matched by LIKE, a range by check-out did).
    assert [f for f in profile.flags if f.function == function_name(list_reservations)] == []


async def test_every_hot_function_is_explained_and_nothing_stays_written(
    runtime: Runtime,
) -> None:
    before = await _count(runtime)
    profile = await _profile(runtime)
    assert await _count(runtime) == before

    assert {s.function for s in profile.statements} == HOT
    per_question = (function_name(f) for f in (record_guest_message, lookup, record_answer))
    for name in per_question:
        assert sum(s.function == name for s in profile.statements) == len(QUESTIONS)
    for statement in profile.statements:
        assert statement.plan["Node Type"]
        assert statement.execution_ms >= 0
        assert statement.planning_ms >= 0
        assert statement.shared_hit + statement.shared_read > 0
    # The functions got their real results: the conversation read back holds each question
    # and its answer once, so the EXPLAINs' own writes were undone before each statement ran.
    (history,) = (s for s in profile.statements if s.function == function_name(list_messages))
    assert history.plan["Actual Rows"] == 2 * len(QUESTIONS)
    assert profile.table_rows["messages"] >= 0
    assert profile.guest.tenant_slug == DEMO_SLUG


@pytest.fixture
async def scratch_table(runtime: Runtime) -> AsyncIterator[str]:
    """A table of SCRATCH_ROWS rows without an index, in a schema of its own."""
    schema = f"profile_test_{uuid.uuid4().hex[:8]}"
    async with runtime.pool.connection() as conn:
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        await conn.execute(
            sql.SQL(
                "CREATE TABLE {}.stays AS SELECT g AS id, 'guest ' || g AS guest "
                "FROM generate_series(1, %s) g"
            ).format(sql.Identifier(schema)),
            (SCRATCH_ROWS,),
        )
        await conn.execute(sql.SQL("ANALYZE {}.stays").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        async with runtime.pool.connection() as conn:
            await conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


async def find_stay(conn: AsyncConn, *, guest: str) -> int | None:
    """What a service function looks like to the profiler: it runs one statement."""
    cur = await conn.execute("SELECT id FROM stays WHERE guest = %s", (guest,))
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def test_a_seq_scan_on_a_large_table_is_flagged_and_an_index_clears_it(
    runtime: Runtime, scratch_table: str
) -> None:
    found: list[int | None] = []

    async def work(conn: AsyncConn, capture: Capture) -> None:
        # Not explainable, so not captured; the lookup below resolves `stays` through it.
        await conn.execute(
            sql.SQL("SET LOCAL search_path = {}, public").format(sql.Identifier(scratch_table))
        )
        with capture.calling(find_stay, "by name"):
            found.append(await find_stay(conn, guest="guest 4321"))

    async with runtime.pool.connection() as conn:
        (statement,), table_rows = await capture_plans(conn, work=work)
    assert found == [4321], "the function still got its result"
    assert statement.function == function_name(find_stay)
    assert table_rows == {"stays": SCRATCH_ROWS}
    assert [n["Node Type"] for _, n in walk(statement.plan)] == ["Seq Scan"]

    flags = plan_flags(statement, table_rows=table_rows, large_rows=1000, slow_ms=500)
    assert sorted(f.kind for f in flags) == ["index-miss", "seq-scan"]
    seq = next(f for f in flags if f.kind == "seq-scan")
    assert "Seq Scan on stays" in seq.detail
    assert f"~{SCRATCH_ROWS} rows" in seq.detail
    miss = next(f for f in flags if f.kind == "index-miss")
    assert f"removed {SCRATCH_ROWS - 1} rows" in miss.detail
    assert plan_flags(statement, table_rows=table_rows, large_rows=SCRATCH_ROWS, slow_ms=500) == []
    slow = plan_flags(statement, table_rows=table_rows, large_rows=SCRATCH_ROWS, slow_ms=0)
    assert [f.kind for f in slow] == ["slow"]

    async with runtime.pool.connection() as conn:
        await conn.execute(
            sql.SQL("CREATE INDEX ON {}.stays (guest)").format(sql.Identifier(scratch_table))
        )
        (indexed,), table_rows = await capture_plans(conn, work=work)
    assert "Index" in indexed.plan["Node Type"]
    assert plan_flags(indexed, table_rows=table_rows, large_rows=1000, slow_ms=500) == []


async def _select_from_a_temp_table(conn: psycopg.AsyncConnection[Any], name: str) -> None:
    table = sql.Identifier(name)
    await conn.execute(sql.SQL("CREATE TEMP TABLE {} (x int)").format(table))
    await conn.execute(sql.SQL("SELECT x FROM {}").format(table))
    await conn.execute(sql.SQL("DROP TABLE {}").format(table))


async def test_pg_stat_statements_lists_this_databases_statements(runtime: Runtime) -> None:
    # pg_stat_statements keys a statement by its shape (constants and column names aside),
    # keeping the first text seen; a table of its own gives the marker a shape of its own.
    marker = f"profile_marker_{uuid.uuid4().hex[:8]}"
    admin = make_conninfo(runtime.database_url, dbname="postgres")
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as other:
        await _select_from_a_temp_table(other, f"elsewhere_{marker}")
    async with runtime.pool.connection() as conn:
        await _select_from_a_temp_table(conn, f"here_{marker}")

    profile = await _profile(runtime)
    assert profile.stat_statements_missing is None
    assert profile.top, "the top statements are listed"
    assert all(t.calls >= 1 and t.total_ms >= 0 for t in profile.top)
    totals = [t.total_ms for t in profile.top]
    assert totals == sorted(totals, reverse=True)
    report = render_report(profile)
    assert "| calls | total ms | mean ms | rows | query |" in report
    assert report.count("\n| ") >= len(profile.top)

    async with runtime.pool.connection() as conn:
        everything = await top_statements(conn, limit=100_000)
    queries = [t.query for t in everything]
    assert any(q.startswith("SELECT x FROM") and f"here_{marker}" in q for q in queries)
    assert not any(f"elsewhere_{marker}" in q for q in queries), "another database's"
    assert not any(q.startswith("EXPLAIN") for q in queries), "the profiler's EXPLAINs"
    assert any("INSERT INTO messages" in q for q in queries), "the profiled statements"


@pytest.fixture
def env(runtime: Runtime) -> dict[str, str]:
    """A CLI process pointed at the test database."""
    return {
        **os.environ,
        "POSADA_DATABASE_URL": runtime.database_url,
        "POSADA_DATA_DIR": str(runtime.settings.data_dir),
    }


def run(env: dict[str, str], *args: str, cwd: Path | None = None) -> CliResult:
    return run_cli(env, "db", "profile", *args, cwd=cwd)


async def test_cli_writes_the_markdown_report(
    runtime: Runtime, env: dict[str, str], tmp_path: Path
) -> None:
    before = await _count(runtime)
    output = tmp_path / "report.md"
    # On a thread: the command runs its own event loop.
    done = await asyncio.to_thread(
        run, env, "--tenant", DEMO_SLUG, "--output", str(output), "--large-rows", "0"
    )
    assert done.returncode == 0, done.stderr
    assert await _count(runtime) == before
    report = output.read_text(encoding="utf-8")
    assert report.startswith("# posada database profile")
    assert f"hotel `{DEMO_SLUG}`" in report
    for name in HOT:
        assert f"### `{name}`" in report
    assert "## pg_stat_statements" in report
    assert "| calls | total ms |" in report
    assert f"report: {output.resolve()}" in done.stdout
    # The guest's visit (a conversation read back once) and the desk's: at least five
    # filters, one unit and a cancellation of stays; three filters, one unit and one
    # conversation, the report and the FAQ (the next pages depend on what is stored).
    guest = 7 + 3 * (len(QUESTIONS) - 1)
    said = re.search(rf"profiled {DEMO_SLUG}: (\d+) statements", done.stdout)
    assert said is not None, done.stdout
    assert int(said.group(1)) >= guest + 7 + 7

    default = await asyncio.to_thread(run, env, cwd=tmp_path)
    assert default.returncode == 0, default.stderr
    assert (tmp_path / "profile-report.md").is_file()


def test_cli_unknown_hotel_and_unreachable_database(env: dict[str, str], tmp_path: Path) -> None:
    unknown = run(env, "--tenant", "nowhere", "--output", str(tmp_path / "r.md"))
    assert unknown.returncode == 1
    assert "error: unknown hotel 'nowhere'" in unknown.stderr
    assert not (tmp_path / "r.md").exists()
    down = {**env, "POSADA_DATABASE_URL": "postgresql://posada@127.0.0.1:1/posada"}
    unreachable = run(down, "--output", str(tmp_path / "r.md"))
    assert unreachable.returncode == 1
    assert "error: cannot reach the database" in unreachable.stderr


async def test_the_index_the_corpus_profile_asked_for_exists(runtime: Runtime) -> None:
    # retrieve's max(idf) read all of lexeme_idf on the corpus (docs/profiling.md).
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'lexeme_idf_idf_idx'"
        )
        row = await cur.fetchone()
    assert row is not None
    assert row[0].endswith("ON public.lexeme_idf USING btree (idf)")
