"""Finding the database and opening the async connection pool."""

from __future__ import annotations

import psycopg
from pgvector.psycopg import register_vector_async
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from posada.config import Settings
from posada.db.embedded import start_embedded
from posada.observe.db import CountingConnection

AsyncConn = psycopg.AsyncConnection[TupleRow]


def resolve_database_url(settings: Settings) -> str:
    """The configured database, or posada's database on the embedded server (started if needed)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    admin = start_embedded(settings.data_dir)
    ensure_database(admin, settings.database_name)
    return make_conninfo(admin, dbname=settings.database_name)


def ensure_database(admin_url: str, name: str) -> None:
    """Create database `name` on the server at `admin_url` unless it exists."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


async def _configure(conn: AsyncConn) -> None:
    await register_vector_async(conn)
    # A filtered HNSW scan (one tenant, one unit) would otherwise stop short of k rows.
    await conn.execute("SET hnsw.iterative_scan = relaxed_order")


async def open_pool(
    url: str,
    *,
    min_size: int,
    max_size: int,
    timeout_s: float = 3.0,
    counting: bool = True,
) -> AsyncConnectionPool[AsyncConn]:
    """An open pool whose connections know the `vector` type (and count round trips).

    A request waits at most `timeout_s` for a connection (then a 503 with Retry-After,
    never the library's 30 s), and every connection is checked as it leaves the pool: after
    the server restarts, the dead ones are replaced instead of handed out (one `SELECT 1`'s
    worth of ping, about 0.05 ms on a unix socket).
    """
    pool: AsyncConnectionPool[AsyncConn] = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout_s,
        check=AsyncConnectionPool.check_connection,
        connection_class=CountingConnection if counting else psycopg.AsyncConnection,
        # One statement, one round trip: no COMMIT after every read. Writes that must
        # go together open a transaction explicitly.
        kwargs={"autocommit": True},
        configure=_configure,
        open=False,
    )
    await pool.open(wait=True, timeout=30)
    return pool
