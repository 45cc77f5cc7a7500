"""`posada db ...`. (`posada db profile` comes with the benchmark package.)"""

from __future__ import annotations

import typer

from posada.cli._common import console, load_settings
from posada.cli.plugins import DbGroup
from posada.core.errors import PosadaError
from posada.db.migrate import migrate as apply_migrations
from posada.db.pool import resolve_database_url

app = typer.Typer(help="Database maintenance.", no_args_is_help=True, cls=DbGroup)


@app.command("migrate")
def migrate() -> None:
    """Apply pending migrations (posada also does this on every start)."""
    settings = load_settings()
    try:
        applied = apply_migrations(
            resolve_database_url(settings), embedding_dim=settings.embedding_dim
        )
    except PosadaError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    typer.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")
