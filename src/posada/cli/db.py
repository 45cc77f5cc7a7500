"""`posada db ...`. (`posada db profile` comes with the benchmark package.)"""

from __future__ import annotations

from typing import Annotated, NoReturn

import psycopg
import typer
from psycopg.conninfo import make_conninfo
from rich.text import Text

from posada.cli._common import console, load_settings, reported_errors
from posada.cli.plugins import DbGroup
from posada.core.config import Settings
from posada.core.errors import PosadaError
from posada.db.embedded import start_embedded
from posada.db.migrate import Plan, plan
from posada.db.migrate import migrate as apply_migrations
from posada.db.pool import resolve_direct_url

app = typer.Typer(help="Database maintenance.", no_args_is_help=True, cls=DbGroup)


@app.command("migrate")
def migrate(
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="list what would be done and what would stop it"),
    ] = False,
) -> None:
    """Apply pending migrations (posada also does this on every start).

    Migrations run on the server itself (POSADA_DATABASE_DIRECT_URL when set), never
    through a transaction pooler: they hold a session's advisory lock.
    """
    settings = load_settings()
    with reported_errors():
        if dry_run:
            _dry_run(settings)
            return
        try:
            applied = apply_migrations(
                resolve_direct_url(settings), embedding_dim=settings.embedding_dim
            )
        except PosadaError as exc:
            _fail(exc.message)
    typer.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


def _dry_run(settings: Settings) -> None:
    url, absent = _planning_url(settings)
    found = plan(url, embedding_dim=settings.embedding_dim)
    if absent is not None:
        found.database = absent
    _print_plan(found, created=absent is not None)
    if found.problems:
        for problem in found.problems[:-1]:
            console.print("[red]error:[/red]", Text(problem), soft_wrap=True)
        _fail(found.problems[-1])
    typer.echo("nothing was changed (dry run)")


def _planning_url(settings: Settings) -> tuple[str, str | None]:
    """Where to read the plan; and the database's name when it does not exist yet.

    On the embedded server a migration would first create posada's database: the dry run
    does not, and reads the server's own (empty of posada's tables) in its place.
    """
    if settings.database_url is not None:  # the direct URL counts only beside it
        return resolve_direct_url(settings), None
    admin = start_embedded(settings.data_dir)
    name = settings.database_name
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    if row is None:
        return admin, name
    return make_conninfo(admin, dbname=name), None


def _print_plan(found: Plan, *, created: bool) -> None:
    new = " (does not exist yet: migrate creates it)" if created else ""
    typer.echo(f"database {found.database}{new}, role {found.role}, PostgreSQL {found.server}")
    if not found.pending:
        typer.echo("pending migrations: none, the database is up to date")
    else:
        typer.echo(f"pending migrations ({len(found.pending)}):")
        for migration in found.pending:
            name = migration.name.removesuffix(".sql").split("_", 1)[1]
            typer.echo(f"  {migration.version:04d} {name}: {migration.summary}")
    if found.extensions:
        listed = ", ".join(f"{ext.name} ({ext.status})" for ext in found.extensions)
        typer.echo(f"extensions: {listed}")
    if found.stored_dim is None:
        typer.echo(f"embedding size: {found.embedding_dim} (would be recorded)")
    elif found.stored_dim == found.embedding_dim:
        typer.echo(f"embedding size: {found.stored_dim} (recorded; the configuration matches)")
    else:
        typer.echo(f"embedding size: {found.stored_dim} recorded, {found.embedding_dim} configured")


def _fail(message: str) -> NoReturn:
    # Text, not markup: a message may hold brackets; soft wrap keeps its SQL on one line.
    console.print("[red]error:[/red]", Text(message), soft_wrap=True)
    raise typer.Exit(1)
