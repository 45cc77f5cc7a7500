"""A migration runner small enough to read at a glance.

Migrations are the numbered `.sql` files in `posada/db/migrations`, applied in order,
each in its own transaction, under an advisory lock so that several processes starting
together apply each one once. `{embedding_dim}` in a file is replaced by the configured
embedding size, which is then recorded: a database built for one size refuses another.

Before applying anything, `plan` reads what would be done (the pending migrations, the
extensions they create, the embedding size) and what would stop it: the same reading is
`posada db migrate --dry-run`, and `migrate` refuses with its messages rather than fail
half-way with a traceback.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from importlib import resources

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from posada.core.config import LOCAL_EMBEDDING_MODELS
from posada.core.errors import ConfigurationError

Conn = psycopg.Connection[TupleRow]

_LOCK_ID = 727_0001  # any constant shared by every posada process
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_CREATE_EXTENSION = re.compile(
    r"CREATE\s+EXTENSION\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?(\w+)\"?", re.IGNORECASE
)


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    version: int
    name: str
    sql: str

    @property
    def summary(self) -> str:
        """The first sentence of the file's leading comment (what it is for)."""
        lines = []
        for line in self.sql.splitlines():
            if not line.startswith("--"):
                break
            lines.append(line.removeprefix("--").strip())
        text = " ".join(lines)
        sentence = re.split(r"(?<=\.)\s", text, maxsplit=1)[0]
        return sentence if len(sentence) <= 80 else sentence[:79].rstrip() + "…"

    @property
    def extensions(self) -> list[str]:
        """The extensions the file creates."""
        return [m[1].lower() for m in _CREATE_EXTENSION.finditer(self.sql)]


@dataclass(frozen=True)
class Extension:
    """An extension pending migrations create, and whether this role can."""

    name: str
    status: str  # "installed", "will be created", "needs a superuser", "not available"
    trusted: bool = False  # a role with CREATE on the database may create it
    reason: str = ""  # the server's words when it cannot be created


@dataclass
class Plan:
    """What `migrate` would do to one database, read without changing it."""

    database: str
    role: str
    server: str
    embedding_dim: int  # the configured size
    stored_dim: int | None = None  # the size the database recorded, if any
    pending: list[Migration] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # each stops `migrate`


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


def plan(url: str, *, embedding_dim: int) -> Plan:
    """What `migrate(url)` would do and what would stop it; changes nothing."""
    with psycopg.connect(url, autocommit=True) as conn:
        return read_plan(conn, embedding_dim=embedding_dim)


def migrate(url: str, *, embedding_dim: int) -> list[str]:
    """Apply pending migrations to the database at `url`; return the names applied."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            # Read under the lock: another process may have applied some meanwhile.
            found = read_plan(conn, embedding_dim=embedding_dim)
            if found.problems:
                raise ConfigurationError("\n".join(found.problems))
            return _apply(conn, found)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))


def read_plan(conn: Conn, *, embedding_dim: int) -> Plan:
    """The plan for the database `conn` is connected to (nothing is left changed)."""
    row = conn.execute(
        "SELECT current_database(), current_user, current_setting('server_version')"
    ).fetchone()
    assert row is not None
    found = Plan(database=row[0], role=row[1], server=row[2], embedding_dim=embedding_dim)
    done: set[int] = set()
    if _exists(conn, "schema_migrations"):
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    found.pending = [m for m in load_migrations() if m.version not in done]
    if _exists(conn, "posada_meta"):
        stored = conn.execute(
            "SELECT value FROM posada_meta WHERE key = 'embedding_dim'"
        ).fetchone()
        found.stored_dim = None if stored is None else int(stored[0])
    if found.stored_dim is not None and found.stored_dim != embedding_dim:
        found.problems.append(_size_message(conn, found.stored_dim, embedding_dim))
    names = list(dict.fromkeys(n for m in found.pending for n in m.extensions))
    found.extensions = [_check_extension(conn, name) for name in names]
    found.problems += _extension_problems(conn, found)
    if found.pending and not _can_create_tables(conn):
        found.problems.append(_schema_message(conn, found))
    return found


def _exists(conn: Conn, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    return bool(row and row[0])


def _check_extension(conn: Conn, name: str) -> Extension:
    """Whether `name` is there, or can be made by this role: tried in a rolled-back
    transaction, as a managed server's own rules (Supabase's, RDS's) may allow what a
    plain server's catalog would refuse."""
    row = conn.execute(
        """SELECT a.installed_version IS NOT NULL, coalesce(v.trusted, false)
           FROM pg_available_extensions a
           LEFT JOIN pg_available_extension_versions v
             ON v.name = a.name AND v.version = a.default_version
           WHERE a.name = %s""",
        (name,),
    ).fetchone()
    if row is None:
        return Extension(name, "not available")
    installed, trusted = bool(row[0]), bool(row[1])
    if installed:
        return Extension(name, "installed", trusted)
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(name)))
    except psycopg.errors.InsufficientPrivilege as exc:
        return Extension(name, "needs a superuser", trusted, _reason(exc))
    except psycopg.Error as exc:
        return Extension(name, "not available", trusted, _reason(exc))
    return Extension(name, "will be created", trusted)


def _reason(exc: psycopg.Error) -> str:
    return " ".join(str(exc.diag.message_primary or exc).split())


def _extension_problems(conn: Conn, found: Plan) -> list[str]:
    problems = []
    for ext in found.extensions:
        if ext.status != "not available":
            continue
        if ext.name == "vector":
            problems.append(_MISSING_VECTOR)
        else:
            problems.append(
                f"the server offers no `{ext.name}` extension ({ext.reason or 'not installed'}); "
                "it ships with PostgreSQL's contrib modules: install them on that server."
            )
    refused = [ext for ext in found.extensions if ext.status == "needs a superuser"]
    if refused:
        problems.append(_privilege_message(conn, found, refused))
    return problems


def _privilege_message(conn: Conn, found: Plan, refused: list[Extension]) -> str:
    database = sql.Identifier(found.database).as_string(conn)
    role = sql.Identifier(found.role).as_string(conn)
    names = ", ".join(ext.name for ext in refused)
    statements = "\n".join(f"    CREATE EXTENSION {ext.name};" for ext in refused)
    message = (
        f"the role {role} cannot create the extension(s) {names} in database {database} "
        f"({refused[0].reason}). A superuser (on a managed server, its admin role) must run, "
        f"connected to database {database}:\n{statements}\n"
        f"for example: psql -d {shlex.quote(found.database)} "
        f"-c 'CREATE EXTENSION {refused[0].name};'. "
        "Then run `posada db migrate` again."
    )
    trusted = [ext.name for ext in refused if ext.trusted]
    if trusted:
        message += (
            f" ({', '.join(trusted)}: trusted, so `GRANT CREATE ON DATABASE {database} "
            f"TO {role};` would also let the role create them itself.)"
        )
    return message


def _can_create_tables(conn: Conn) -> bool:
    # No schema on the search path at all: current_schema() is NULL, and so is the answer.
    row = conn.execute("SELECT has_schema_privilege(current_schema(), 'CREATE')").fetchone()
    return bool(row and row[0])


def _schema_message(conn: Conn, found: Plan) -> str:
    row = conn.execute("SELECT coalesce(current_schema(), 'public')").fetchone()
    schema = sql.Identifier(row[0] if row else "public").as_string(conn)
    database = sql.Identifier(found.database).as_string(conn)
    role = sql.Identifier(found.role).as_string(conn)
    return (
        f"the role {role} cannot create tables in schema {schema} of database {database}. "
        f"Its owner or a superuser must run `GRANT CREATE ON SCHEMA {schema} TO {role};` "
        f"(or make the role the database's owner: `ALTER DATABASE {database} OWNER TO "
        f"{role};`), then run `posada db migrate` again."
    )


def _size_message(conn: Conn, stored: int, configured: int) -> str:
    """The refusal of a database made for another embedding size, and what mends it.

    `posada reembed` cannot: the vector columns and their indexes are of the stored size.
    """
    models = _stored_models(conn)
    if len(models) == 1:
        provider = "local" if models[0] in LOCAL_EMBEDDING_MODELS else "openai"
        matching = (
            f"POSADA_EMBEDDING_PROVIDER={provider} POSADA_EMBEDDING_MODEL={models[0]} "
            f"POSADA_EMBEDDING_DIM={stored}"
        )
    else:
        local = " (the local models do)" if stored == 384 else ""
        matching = (
            f"POSADA_EMBEDDING_DIM={stored} with a model that gives {stored} dimensions{local}"
        )
    by = f" (by {', '.join(models)})" if models else ""
    return (
        f"this database stores {stored}-dimension embeddings{by} but the configuration "
        f"gives {configured} (POSADA_EMBEDDING_DIM={configured}). `posada reembed` cannot "
        f"change the size: the database's vector columns are built for {stored}. Either "
        f"serve this database with the settings it was made with: {matching}; or point "
        "POSADA_DATABASE_URL and POSADA_DATABASE_DIRECT_URL (embedded server: "
        "POSADA_DATABASE_NAME) at a new, empty database, run `posada db migrate`, and "
        "ingest the documents again (`posada ingest DIR --tenant SLUG`, `posada ingest DIR "
        "--tourism`). A new database starts without this one's reservations, staff "
        "accounts and conversations."
    )


def _stored_models(conn: Conn) -> list[str]:
    """The models that embedded the stored passages (migration 0008 records them).

    Every hotel's rows, on purpose: the vector columns are the database's, one size for
    all, so the operator's check is of the whole database, and only model names leave it.
    """
    row = conn.execute(
        """SELECT count(*) = 2 FROM information_schema.columns
           WHERE table_schema = current_schema() AND column_name = 'embedding_model'
             AND table_name IN ('chunks', 'faq')"""
    ).fetchone()
    if not (row and row[0]):
        return []
    rows = conn.execute(
        """SELECT embedding_model FROM chunks UNION SELECT embedding_model FROM faq
           ORDER BY 1 LIMIT 5"""
    ).fetchall()
    return [str(r[0]) for r in rows]


def _apply(conn: Conn, found: Plan) -> list[str]:
    """Apply the plan's pending migrations and record the embedding size."""
    applied: list[str] = []
    if not found.pending:
        return applied  # nothing to write: a role with no CREATE on the schema is fine
    step = "creating posada's bookkeeping tables"
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS posada_meta (key text PRIMARY KEY, value text NOT NULL)"
        )
        for migration in found.pending:
            step = migration.name
            _apply_one(conn, migration, embedding_dim=found.embedding_dim)
            applied.append(migration.name)
    except psycopg.errors.InsufficientPrivilege as exc:
        role = sql.Identifier(found.role).as_string(conn)
        done = f" (applied before it: {', '.join(applied)})" if applied else ""
        raise ConfigurationError(
            f"{step} was refused to the role {role}: {_reason(exc)}{done}. posada's tables "
            "must be owned by the role that migrates: run `posada db migrate` as the role "
            "that created them, or have their owner or a superuser transfer them to it."
        ) from exc
    return applied


def _apply_one(conn: Conn, migration: Migration, *, embedding_dim: int) -> None:
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
