"""A migration runner small enough to read at a glance.

Migrations are the numbered `.sql` files in `posada/db/migrations`, applied in order,
each in its own transaction, under an advisory lock so that several processes starting
together apply each one once. `{embedding_dim}` in a file is replaced by the configured
embedding size, which is then recorded: a database built for one size refuses another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg.rows import TupleRow

from posada.core.errors import ConfigurationError

_LOCK_ID = 727_0001  # any constant shared by every posada process
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """Every migration shipped with posada, in order."""
    folder = resources.files("posada.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), entry.name, entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


_MISSING_VECTOR = (
    "the database has no `vector` extension available. Install pgvector on that server "
    "(https://github.com/pgvector/pgvector#installation; Debian: postgresql-NN-pgvector), "
    "use a managed PostgreSQL that offers it (Supabase, RDS, Cloud SQL), or leave "
    "POSADA_DATABASE_URL unset to use the embedded server, which ships it."
)


def migrate(url: str, *, embedding_dim: int) -> list[str]:
    """Apply pending migrations to the database at `url`; return the names applied."""
    with psycopg.connect(url, autocommit=True) as conn:
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
        ).fetchone()
        if available is None:
            raise ConfigurationError(_MISSING_VECTOR)
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            return _apply_pending(conn, embedding_dim=embedding_dim)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))


def _apply_pending(conn: psycopg.Connection[TupleRow], *, embedding_dim: int) -> list[str]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS posada_meta (key text PRIMARY KEY, value text NOT NULL)"
    )
    row = conn.execute("SELECT value FROM posada_meta WHERE key = 'embedding_dim'").fetchone()
    if row is not None and int(row[0]) != embedding_dim:
        raise ConfigurationError(
            f"this database stores {row[0]}-dimension embeddings but the configured model "
            f"gives {embedding_dim}; use the same model, or a new database and re-ingest"
        )
    done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for migration in load_migrations():
        if migration.version in done:
            continue
        with conn.transaction():
            conn.execute(migration.sql.replace("{embedding_dim}", str(int(embedding_dim))))
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            conn.execute(
                "INSERT INTO posada_meta VALUES ('embedding_dim', %s) ON CONFLICT DO NOTHING",
                (str(embedding_dim),),
            )
        applied.append(migration.name)
    return applied
