"""Finding the database and opening the async connection pool."""

from __future__ import annotations

import contextlib
import logging
import time
import weakref

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from posada.core import context
from posada.core.config import Settings
from posada.core.errors import ConfigurationError
from posada.db.counting import CountingConnection
from posada.db.embedded import start_embedded

log = logging.getLogger(__name__)

AsyncConn = psycopg.AsyncConnection[TupleRow]
# The pool every part shares (the runtime opens it).
Pool = AsyncConnectionPool[AsyncConn]


def resolve_database_url(settings: Settings) -> str:
    """The configured database, or posada's database on the embedded server (started if needed)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    admin = start_embedded(settings.data_dir)
    ensure_database(admin, settings.database_name)
    return make_conninfo(admin, dbname=settings.database_name)


def resolve_direct_url(settings: Settings) -> str:
    """The server itself, past any pooler: for LISTEN, migrations and session locks.

    On the embedded server (no `POSADA_DATABASE_URL`) there is no pooler: its address is
    both, whatever `POSADA_DATABASE_DIRECT_URL` says (every process agrees on that).
    """
    if settings.database_url is None:
        return resolve_database_url(settings)
    if settings.database_direct_url is not None:
        return settings.database_direct_url.get_secret_value()
    if settings.database_pooler == "transaction":
        # LISTEN through the pooler would hear nothing, and a migration's session lock
        # would guard nothing: refuse rather than fail quietly.
        raise ConfigurationError(
            "POSADA_DATABASE_POOLER=transaction needs POSADA_DATABASE_DIRECT_URL: the "
            "server itself (past the pooler), for LISTEN and migrations"
        )
    return resolve_database_url(settings)


def ensure_database(admin_url: str, name: str) -> None:
    """Create database `name` on the server at `admin_url` unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            # Several processes starting on a fresh data dir may race to create it.
            with contextlib.suppress(
                psycopg.errors.UniqueViolation, psycopg.errors.DuplicateDatabase
            ):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


class IdleCheck:
    """Ping a pooled connection before handing it out, if it was idle for a while.

    Under traffic a connection goes back and out again within milliseconds and has just
    worked: pinging it would add a round trip to every request. One idle for over
    `idle_s` may have died with a restarted server; the empty statement that finds out is
    the pool's upkeep, left out of the request's counted round trips.
    """

    def __init__(self, *, idle_s: float = 1.0) -> None:
        self._idle_s = idle_s
        self._returned: weakref.WeakKeyDictionary[AsyncConn, float] = weakref.WeakKeyDictionary()

    async def returned(self, conn: AsyncConn) -> None:
        """The pool took `conn` back: note when."""
        self._returned[conn] = time.monotonic()

    async def check(self, conn: AsyncConn) -> None:
        """Raise if `conn` was idle and no longer answers (the pool then replaces it)."""
        since = self._returned.get(conn)
        if since is not None and time.monotonic() - since < self._idle_s:
            return
        with context.unmeasured():
            await AsyncConnectionPool.check_connection(conn)


async def _configure(conn: AsyncConn) -> None:
    await register_vector_async(conn)
    # A filtered HNSW scan (one tenant, one unit) would otherwise stop short of k rows.
    # Migration 0015 makes it the database's default too (for a role that may).
    await conn.execute("SET hnsw.iterative_scan = relaxed_order")


async def _configure_pooled(conn: AsyncConn) -> None:
    # Behind a transaction pooler a SET lands on whichever server connection ran it and
    # stays there; the database's default (migration 0015) holds on every one instead.
    await register_vector_async(conn)


async def _check_scan_default(pool: AsyncConnectionPool[AsyncConn]) -> None:
    """Warn when the database's default does not make filtered HNSW scans iterative."""
    async with pool.connection() as conn:
        with context.unmeasured():
            cur = await conn.execute("SELECT current_setting('hnsw.iterative_scan', true)")
            row = await cur.fetchone()
    if row is None or row[0] != "relaxed_order":
        log.warning(
            "hnsw.iterative_scan is %r behind the pooler: a hotel among many may get fewer "
            "passages. Run ALTER DATABASE <db> SET hnsw.iterative_scan = relaxed_order as "
            "its owner (migration 0015 could not)",
            row[0] if row else None,
        )


async def open_pool(
    url: str,
    *,
    min_size: int,
    max_size: int,
    timeout_s: float = 3.0,
    counting: bool = True,
    pooled: bool = False,
) -> AsyncConnectionPool[AsyncConn]:
    """An open pool whose connections know the `vector` type (and count round trips).

    A request waits at most `timeout_s` for a connection (then a 503 with Retry-After,
    never the library's 30 s), and a connection that sat idle is checked as it leaves the
    pool (`IdleCheck`): after the server restarts, the dead ones are replaced instead of
    handed out.

    `pooled`: `url` is a transaction pooler (PgBouncer, Supabase's port 6543), where a
    connection's statements may run on different server connections: no prepared
    statements and no session settings.
    """
    idle = IdleCheck()
    # psycopg prepares a statement from its sixth run; the next server connection would
    # not know it.
    options: dict[str, object] = {"autocommit": True}
    if pooled:
        options["prepare_threshold"] = None
    pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout_s,
        check=idle.check,
        reset=idle.returned,
        connection_class=CountingConnection if counting else psycopg.AsyncConnection,
        # One statement, one round trip: no COMMIT after every read. Writes that must
        # go together open a transaction explicitly.
        kwargs=options,
        configure=_configure_pooled if pooled else _configure,
        open=False,
    )
    await pool.open(wait=True, timeout=30)
    if pooled:
        await _check_scan_default(pool)
    return pool
