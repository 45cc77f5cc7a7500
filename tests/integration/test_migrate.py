"""`posada db migrate` on an existing database: the dry run, a role that may not create
extensions, and a database made for another embedding size.

Each test makes its own throwaway database (and role) on the session's embedded server,
as an operator's existing server would have them, and drops them after.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from posada.core.config import Settings
from posada.core.errors import ConfigurationError
from posada.db.embedded import start_embedded
from posada.db.migrate import load_migrations, migrate
from posada_bench.servers import free_port

MIGRATIONS = load_migrations()


@dataclass(frozen=True)
class Scratch:
    """A throwaway database, and a plain role (no superuser, no CREATEDB) beside it."""

    admin: str  # the server's superuser, connected to the scratch database
    role: str
    database: str

    def url(self, *, as_role: bool) -> str:
        """The scratch database as the superuser or as the plain role."""
        return make_conninfo(self.admin, user=self.role) if as_role else self.admin


@pytest.fixture(scope="module")
def server(settings: Settings) -> str:
    """The admin URL of the session's embedded server (no model loaded for it)."""
    return start_embedded(settings.data_dir)


def _scratch(server: str, *, owned: bool) -> Iterator[Scratch]:
    suffix = uuid.uuid4().hex[:10]
    role, database = f"mig_role_{suffix}", f"mig_db_{suffix}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        owner = sql.SQL(" OWNER {}").format(sql.Identifier(role)) if owned else sql.SQL("")
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)) + owner)
    try:
        yield Scratch(make_conninfo(server, dbname=database), role, database)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def owned(server: str) -> Iterator[Scratch]:
    """A database whose owner is the plain role (a managed server's usual app role)."""
    yield from _scratch(server, owned=True)


@pytest.fixture
def foreign(server: str) -> Iterator[Scratch]:
    """A database the plain role may only connect to (no CREATE on it or its schema)."""
    yield from _scratch(server, owned=False)


def run_posada(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m posada ARGS` as its own process, as an operator runs it."""
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("POSADA_")},
        "POSADA_DATABASE_URL": url,
        "POSADA_JWT_SECRET": "migrate-test-secret-0123456789-0123456789",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "posada", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _joined(text: str) -> str:
    return " ".join(text.split())


def _catalog(url: str) -> tuple[list[str], list[str]]:
    """The relations in schema public and the extensions: what a migration would change."""
    with psycopg.connect(url) as conn:
        relations = conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1"
        ).fetchall()
        extensions = conn.execute("SELECT extname FROM pg_extension ORDER BY 1").fetchall()
    return [r[0] for r in relations], [e[0] for e in extensions]


def _applied(url: str) -> int | None:
    """Rows in schema_migrations, or None when there is no such table."""
    with psycopg.connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
        if exists is None or exists[0] is None:
            return None
        row = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
    return None if row is None else int(row[0])


def test_the_dry_run_lists_the_work_and_changes_nothing(owned: Scratch) -> None:
    before = _catalog(owned.admin)
    dry = run_posada(owned.admin, "db", "migrate", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    out = dry.stdout
    assert f"database {owned.database}, role " in out
    assert f"pending migrations ({len(MIGRATIONS)}):" in out
    assert "0001 init: posada's first schema: tenants, units, reservations" in out
    assert "0014 rollups: Figures that outlive the process" in out
    assert "extensions: vector (will be created), unaccent (will be created)" in out
    assert "pg_trgm (will be created)" in out
    assert "embedding size: 384 (would be recorded)" in out
    assert "nothing was changed (dry run)" in out
    assert _catalog(owned.admin) == before, "the dry run changed the schema"
    assert _applied(owned.admin) is None

    done = run_posada(owned.admin, "db", "migrate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("applied: 0001_init.sql, 0002_retrieval_tuning.sql")
    assert _applied(owned.admin) == len(MIGRATIONS)
    assert _scan_defaults(owned) == {"database": [SCAN], "role": []}, "the superuser's migrate"
    again = run_posada(owned.admin, "db", "migrate", "--dry-run")
    assert again.returncode == 0, again.stderr
    assert "pending migrations: none, the database is up to date" in again.stdout
    assert "extensions:" not in again.stdout
    assert "embedding size: 384 (recorded; the configuration matches)" in again.stdout


def test_a_role_that_may_not_create_vector_is_told_the_sql(owned: Scratch) -> None:
    url = owned.url(as_role=True)
    before = _catalog(owned.admin)
    refused = run_posada(url, "db", "migrate")
    message = _joined(refused.stderr)
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert (
        f'the role "{owned.role}" cannot create the extension(s) vector in database '
        f'"{owned.database}" (permission denied to create extension "vector")'
    ) in message
    assert "\n    CREATE EXTENSION vector;\n" in refused.stderr, "the SQL on a line of its own"
    assert "CREATE EXTENSION unaccent;" not in message, "trusted: the owner creates it"
    assert f"psql -d {owned.database} -c 'CREATE EXTENSION vector;'" in message
    assert _catalog(owned.admin) == before, "nothing applied, no extension left created"
    assert _applied(owned.admin) is None

    dry = run_posada(url, "db", "migrate", "--dry-run")
    assert dry.returncode == 1
    assert "extensions: vector (needs a superuser), unaccent (will be created)" in dry.stdout
    assert "CREATE EXTENSION vector;" in dry.stderr
    assert "nothing was changed" not in dry.stdout
    assert _catalog(owned.admin) == before


def test_a_role_with_no_create_anywhere_is_told_each_extension(foreign: Scratch) -> None:
    with pytest.raises(ConfigurationError) as refused:
        migrate(foreign.url(as_role=True), embedding_dim=384)
    message = refused.value.message
    assert (
        f'cannot create the extension(s) vector, unaccent, pg_trgm in database "{foreign.database}"'
    ) in message
    for name in ("vector", "unaccent", "pg_trgm"):
        assert f"\n    CREATE EXTENSION {name};" in message
    assert (
        f'(unaccent, pg_trgm: trusted, so `GRANT CREATE ON DATABASE "{foreign.database}" '
        f'TO "{foreign.role}";` would also let the role create them itself.)'
    ) in message
    assert f'cannot create tables in schema "public" of database "{foreign.database}"' in message
    assert f'`GRANT CREATE ON SCHEMA "public" TO "{foreign.role}";`' in message
    assert _applied(foreign.admin) is None


def test_extensions_made_by_a_superuser_let_the_role_migrate(foreign: Scratch) -> None:
    with psycopg.connect(foreign.admin, autocommit=True) as conn:
        for name in ("vector", "unaccent", "pg_trgm"):
            conn.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(name)))
        role = sql.Identifier(foreign.role)
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(role))
    url = foreign.url(as_role=True)
    dry = run_posada(url, "db", "migrate", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "extensions: vector (installed), unaccent (installed), pg_trgm (installed)" in dry.stdout

    applied = migrate(url, embedding_dim=384)
    assert applied == [m.name for m in MIGRATIONS]
    with psycopg.connect(foreign.admin) as conn:
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'chunks'"
        ).fetchone()
    assert owner == (foreign.role,)
    assert migrate(url, embedding_dim=384) == []
    # Not the database's owner: 0015 set relaxed_order for the role itself.
    assert _scan_defaults(foreign) == {"database": [], "role": [SCAN]}
    assert _fresh_scan(url) == "relaxed_order"
    assert _fresh_scan(foreign.admin) == "off", "only the role's sessions"


SCAN = "hnsw.iterative_scan=relaxed_order"


def _scan_defaults(scratch: Scratch) -> dict[str, list[str]]:
    """The defaults stored for the scratch database (setrole 0) and for its role
    (setdatabase 0), as pg_db_role_setting holds them."""
    with psycopg.connect(scratch.admin) as conn:
        rows = conn.execute(
            """SELECT CASE WHEN s.setrole = 0 THEN 'database' ELSE 'role' END, s.setconfig
               FROM pg_db_role_setting s
               LEFT JOIN pg_database d ON d.oid = s.setdatabase
               LEFT JOIN pg_roles r ON r.oid = s.setrole
               WHERE (s.setrole = 0 AND d.datname = %s)
                  OR (s.setdatabase = 0 AND r.rolname = %s)""",
            (scratch.database, scratch.role),
        ).fetchall()
    found: dict[str, list[str]] = {"database": [], "role": []}
    for kind, config in rows:
        found[kind] += list(config)
    return found


def _fresh_scan(url: str) -> str:
    """hnsw.iterative_scan on a new connection, pgvector loaded (its GUC is then known)."""
    with psycopg.connect(url) as conn:
        conn.execute("SELECT NULL::vector")
        row = conn.execute("SHOW hnsw.iterative_scan").fetchone()
    assert row is not None
    return str(row[0])


def test_the_owner_makes_relaxed_order_the_database_default(owned: Scratch) -> None:
    with psycopg.connect(owned.admin, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
    assert _fresh_scan(owned.admin) == "off", "the server's own default"
    assert migrate(owned.url(as_role=True), embedding_dim=384) == [m.name for m in MIGRATIONS]
    assert _scan_defaults(owned) == {"database": [SCAN], "role": []}
    # The database's default: every role's new sessions, as a transaction pooler's are.
    assert _fresh_scan(owned.url(as_role=True)) == "relaxed_order"
    assert _fresh_scan(owned.admin) == "relaxed_order"


def _store_a_passage(url: str, *, model: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            """WITH t AS (INSERT INTO tenants (slug, name) VALUES ('mig', 'Mig') RETURNING id),
               d AS (INSERT INTO documents (tenant_id, scope, source, title, content_hash)
                     SELECT id, 'hotel', 'a.md', 'A', 'x' FROM t RETURNING id, tenant_id)
               INSERT INTO chunks (document_id, tenant_id, scope, ordinal, heading, content,
                                   embedding, embedding_model)
               SELECT id, tenant_id, 'hotel', 0, 'Wi-Fi', 'La clave es azul.',
                      array_fill(0.1, ARRAY[384])::vector, %s FROM d""",
            (model,),
        )


def test_another_embedding_size_is_refused_with_the_settings_that_fit(owned: Scratch) -> None:
    assert migrate(owned.admin, embedding_dim=384)
    _store_a_passage(owned.admin, model="multilingual-e5-small")
    before = _catalog(owned.admin)
    fit = (
        "serve this database with the settings it was made with: "
        "POSADA_EMBEDDING_PROVIDER=local POSADA_EMBEDDING_MODEL=multilingual-e5-small "
        "POSADA_EMBEDDING_DIM=384"
    )
    for args in (("db", "migrate", "--dry-run"), ("db", "migrate")):
        refused = run_posada(owned.admin, *args, POSADA_EMBEDDING_DIM="1536")
        message = _joined(refused.stderr)
        assert refused.returncode == 1, refused.stdout
        assert "Traceback" not in refused.stderr
        assert (
            "this database stores 384-dimension embeddings (by multilingual-e5-small) but "
            "the configuration gives 1536 (POSADA_EMBEDDING_DIM=1536). `posada reembed` "
            "cannot change the size"
        ) in message
        assert fit in message
        assert "run `posada db migrate`, and ingest the documents again" in message
        if "--dry-run" in args:
            assert "embedding size: 384 recorded, 1536 configured" in refused.stdout
    assert _catalog(owned.admin) == before


def test_migrations_take_the_direct_url_past_the_pooler(owned: Scratch) -> None:
    # Nothing listens on the pooled address: only the direct one can have been used.
    pooled = f"postgresql://posada@127.0.0.1:{free_port()}/{owned.database}"
    done = run_posada(
        pooled,
        "db",
        "migrate",
        POSADA_DATABASE_DIRECT_URL=owned.admin,
        POSADA_DATABASE_POOLER="transaction",
    )
    assert done.returncode == 0, done.stderr
    assert _applied(owned.admin) == len(MIGRATIONS)
    unreachable = run_posada(pooled, "db", "migrate")
    assert unreachable.returncode == 1
    assert "cannot reach the database" in _joined(unreachable.stderr)
