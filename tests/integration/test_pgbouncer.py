"""posada behind a real PgBouncer in transaction mode, in front of the session's PostgreSQL.

A transaction pooler lends a server connection for one transaction at a time: what a
session keeps (prepared statements, SET, LISTEN, session locks) does not follow the
client. POSADA_DATABASE_POOLER=transaction turns off prepared statements and per
connection settings; LISTEN and the migrations go to POSADA_DATABASE_DIRECT_URL.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
from pydantic import SecretStr

from posada.core.config import Settings
from posada.core.errors import ConfigurationError
from posada.db.pool import open_pool, resolve_direct_url
from posada.knowledge.retrieval import Visibility, retrieve
from posada.runtime import Runtime
from posada.tenants.service import ensure_tenant
from posada_bench.scale.pgbouncer import PgBouncer, pgbouncer_binary, run_pgbouncer
from tests.support.abuse import Hotel, make_hotel
from tests.support.crowd import crowd_index
from tests.support.helpers import posada_process, run_cli, write_docs
from tests.support.live import PATIENCE_S, chat, guest, staff, stream

BAR = "¿A qué hora abre el bar?"


@pytest.fixture(scope="module")
def bouncer(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgBouncer]:
    """A PgBouncer in transaction mode in front of the session's database."""
    if pgbouncer_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pgbouncer is required in CI (.ci/run installs it)")
        pytest.skip("no pgbouncer on this machine (Debian: apt-get install pgbouncer)")
    folder = tmp_path_factory.mktemp("pgbouncer")
    with run_pgbouncer(server_url=runtime.database_url, folder=folder, pool_size=10) as running:
        yield running


def pooled(runtime: Runtime, bouncer: PgBouncer) -> dict[str, str]:
    """The environment of a posada behind the pooler."""
    return {
        "POSADA_DATABASE_URL": bouncer.url,
        "POSADA_DATABASE_DIRECT_URL": runtime.database_url,
        "POSADA_DATABASE_POOLER": "transaction",
    }


def test_a_transaction_pooler_without_a_direct_url_is_refused() -> None:
    settings = Settings(
        _env_file=None,
        database_url=SecretStr("host=127.0.0.1 port=6543 dbname=posada"),
        database_pooler="transaction",
    )
    with pytest.raises(ConfigurationError, match="POSADA_DATABASE_DIRECT_URL"):
        resolve_direct_url(settings)
    direct = settings.model_copy(update={"database_direct_url": SecretStr("dbname=direct")})
    assert resolve_direct_url(direct) == "dbname=direct"


async def test_prepared_statements_break_behind_the_pooler_unless_pooled(
    bouncer: PgBouncer,
) -> None:
    """psycopg prepares a statement on its 6th run, on the server connection the pooler
    lent for it; the pooler lends the same one (the last freed) to the next client, which
    prepares its own under the same name. `pooled` (POSADA_DATABASE_POOLER=transaction)
    prepares none."""

    async def run(*, pooled: bool) -> None:
        pool = await open_pool(bouncer.url, min_size=2, max_size=2, pooled=pooled)
        try:
            async with pool.connection() as one, pool.connection() as two:
                for n in range(8):
                    for conn in (one, two):
                        await (await conn.execute("SELECT %s::int + 1", (n,))).fetchone()
        finally:
            await pool.close()

    with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
        await run(pooled=False)
    await run(pooled=True)


async def test_listen_hears_only_on_the_direct_connection(
    runtime: Runtime, bouncer: PgBouncer
) -> None:
    """Why the listeners take the direct URL; a NOTIFY sent through the pooler is delivered."""
    through = await psycopg.AsyncConnection.connect(bouncer.url, autocommit=True)
    direct = await psycopg.AsyncConnection.connect(runtime.database_url, autocommit=True)
    try:
        for conn in (through, direct):
            await conn.execute("LISTEN posada_pool_test")
        async with await psycopg.AsyncConnection.connect(bouncer.url, autocommit=True) as sender:
            await sender.execute("SELECT pg_notify('posada_pool_test', 'hello')")
        heard = [n.payload async for n in direct.notifies(timeout=PATIENCE_S, stop_after=1)]
        assert heard == ["hello"]
        # Delivered to the direct listener by now; the pooled one's LISTEN went with the
        # server connection it borrowed for one statement.
        assert [n.payload async for n in through.notifies(timeout=1)] == []
    finally:
        await through.close()
        await direct.close()


async def test_a_hotel_among_many_fills_k_behind_the_pooler(
    runtime: Runtime, bouncer: PgBouncer
) -> None:
    """No SET per connection behind the pooler: the database's default (migration 0015)
    makes a filtered HNSW scan iterative on every server connection."""
    rng = np.random.default_rng(17)
    pool = await open_pool(bouncer.url, min_size=1, max_size=2, pooled=True)
    async with pool.connection() as conn:
        crowd = await ensure_tenant(conn, slug="pooled-crowd")
        small = await ensure_tenant(conn, slug="pooled-small")
    try:
        async with pool.connection() as conn:
            probe = await crowd_index(
                conn, rng=rng, counts={crowd.id: 2000, small.id: 6}, model=runtime.embedder.model
            )

        async def vector_hits(*, scan: str | None) -> int:
            async with pool.connection() as conn, conn.transaction():
                # This transaction only: the HNSW index, as the planner takes it for a
                # hotel with many passages (with 6 it sorts them all, exactly).
                await conn.execute("SET LOCAL enable_seqscan = off")
                await conn.execute("SET LOCAL enable_bitmapscan = off")
                if scan is not None:  # the control
                    await conn.execute(f"SET LOCAL hnsw.iterative_scan = {scan}")
                found = await retrieve(
                    conn, visibility=Visibility(small.id, None), text="qqq", embedding=probe,
                    k=40, candidates=40, weights=(1.0, 0.0),
                )  # fmt: skip
            assert all(h.tenant_id in (small.id, None) for h in found.chunks)
            return len([h for h in found.chunks if h.vector_rank is not None])

        assert await vector_hits(scan=None) == 40
        assert await vector_hits(scan="off") < 40, "the control: a plain scan stops short"
    finally:
        async with pool.connection() as conn:
            await conn.execute(
                "DELETE FROM documents WHERE tenant_id = ANY(%s)", ([crowd.id, small.id],)
            )
        await pool.close()


def _ingest(env: dict[str, str], folder: Path, hotel: Hotel, bar_opens: str) -> None:
    """`posada ingest` through the pooler: the FAQ says when the bar opens."""
    write_docs(folder, {"faq.md": f"# FAQ\n\n## {BAR}\nEl bar abre a las {bar_opens}.\n"})
    done = run_cli(env, "ingest", str(folder), "--tenant", hotel.tenant.slug)
    assert done.returncode == 0, done.stderr


async def _usage_rows(runtime: Runtime, hotel: Hotel) -> int:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM embedding_usage WHERE tenant_id = %s", (hotel.tenant.id,)
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def _samples(text: str, name: str) -> list[tuple[str, float]]:
    """The (labels, value) of every sample of `name` in an exposition."""
    found = re.findall(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, flags=re.MULTILINE)
    return [(labels, float(value)) for labels, value in found]


async def test_posada_serves_through_pgbouncer_in_transaction_mode(
    runtime: Runtime, bouncer: PgBouncer, quick_llm: str, tmp_path: Path
) -> None:
    hotel = await make_hotel(runtime, [("p1", "a", "4321", 1)])
    env = {
        **os.environ,
        **pooled(runtime, bouncer),
        "POSADA_DATA_DIR": str(runtime.settings.data_dir),
    }
    await asyncio.to_thread(_ingest, env, tmp_path / "docs", hotel, "18:00")
    serving = {
        **pooled(runtime, bouncer),
        "POSADA_LLM_BASE_URL": quick_llm,
        "POSADA_LLM_API_KEY": "test",
        "POSADA_ANSWER_CACHE": "true",
        "POSADA_POOL_MAX_SIZE": "4",
        "POSADA_LEDGER_FLUSH_S": "0.2",
    }
    ingested = await _usage_rows(runtime, hotel)
    with posada_process(runtime, env=serving) as (base, _):
        async with httpx.AsyncClient(base_url=base, timeout=PATIENCE_S) as http:
            auth = await guest(http, hotel, 1, "4321")
            # The same statements, over and over, four at a time over the pool's
            # connections: psycopg would have prepared them by the sixth.
            for round_ in range(3):
                answers = await asyncio.gather(
                    *(chat(http, auth, f"¿Qué me recomiendas para el día {round_}{n}?")
                      for n in range(4))
                )  # fmt: skip
                assert all(a["answer"] for a in answers)
            # The questions' embeddings reach the usage ledger (a COPY, through the pooler).
            deadline = asyncio.get_running_loop().time() + PATIENCE_S
            while await _usage_rows(runtime, hotel) < ingested + 12:
                assert asyncio.get_running_loop().time() < deadline, "the ledger never wrote"
                await asyncio.sleep(0.1)

            assert (await chat(http, auth, BAR))["layer"] == "faq"
            assert (await chat(http, auth, BAR))["layer"] == "exact"
            # An ingest through the pooler: its NOTIFY reaches the server's listener
            # (on the direct connection), which drops the cached answer.
            heard = _notified((await http.get("/metrics")).text)
            await asyncio.to_thread(_ingest, env, tmp_path / "docs", hotel, "20:45")
            deadline = asyncio.get_running_loop().time() + PATIENCE_S
            while (again := await chat(http, auth, BAR))["layer"] == "exact":
                assert "18:00" in again["answer"]
                assert asyncio.get_running_loop().time() < deadline, "the ingest never reached it"
                await asyncio.sleep(0.1)
            assert "20:45" in again["answer"]
            assert _notified((await http.get("/metrics")).text) == heard + 1

            # A handoff reaches the staff's live stream (the process's conversation listener).
            desk, _ = await staff(runtime, base, hotel)
            async with aclosing(desk), stream(desk, "/api/staff/events") as inbox:
                await inbox.next(comments=True)
                asked = await chat(http, auth, "quiero hablar con una persona")
                seen = await inbox.until("conversation", message_role="notice")
                assert seen.data["id"] == asked["conversation_id"]

            text = (await http.get("/metrics")).text
        with psycopg.connect(bouncer.admin_url, autocommit=True) as admin:
            clients = admin.execute("SHOW CLIENTS").fetchall()
    assert _samples(text, "posada_db_pool_max_connections") == [("", 4.0)]
    states = dict(_samples(text, "posada_db_pool_connections"))
    assert set(states) == {'{state="in_use"}', '{state="idle"}'}
    assert 1 <= sum(states.values()) <= 4
    assert _samples(text, "posada_db_pool_requests_total")[0][1] > 12
    assert _samples(text, "posada_db_pool_waiting") == [("", 0.0)]
    assert _samples(text, "posada_db_pool_errors_total") == [("", 0.0)]
    # The server's pool is the pooler's client (the test's own connections go direct).
    assert any(row[2] == "posada" for row in clients), clients


def _notified(text: str) -> float:
    """The knowledge changes the server says it was notified of."""
    return dict(_samples(text, "posada_knowledge_changes_total")).get('{kind="notified"}', 0.0)


async def test_each_worker_reports_its_own_pool(runtime: Runtime, bouncer: PgBouncer) -> None:
    """With several workers, /metrics (served by one) holds every live worker's gauges."""
    env = {**pooled(runtime, bouncer), "POSADA_POOL_MAX_SIZE": "3"}
    with posada_process(runtime, "--workers", "2", env=env) as (base, _):
        async with httpx.AsyncClient(base_url=base, timeout=PATIENCE_S) as http:
            deadline = asyncio.get_running_loop().time() + PATIENCE_S
            while True:
                text = (await http.get("/metrics")).text
                per_worker = _samples(text, "posada_db_pool_max_connections")
                if len(per_worker) == 2:  # the other worker may still be loading its model
                    break
                assert asyncio.get_running_loop().time() < deadline, per_worker
                await asyncio.sleep(0.2)
    assert [value for _, value in per_worker] == [3.0, 3.0]
    assert len({labels for labels, _ in per_worker}) == 2
    assert all('pid="' in labels for labels, _ in per_worker)
