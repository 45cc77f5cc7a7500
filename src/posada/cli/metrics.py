"""`posada metrics ...`: the persisted figures (posada.observe.rollup), by hand.

Neither command loads the embedding model: each needs the database alone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from posada.cli._common import load_settings, reported_errors
from posada.db.migrate import migrate
from posada.db.pool import AsyncConn, resolve_direct_url
from posada.observe.figures import RouteFigures, route_figures
from posada.observe.rollup import Retention, roll_up
from posada.tenants.service import get_tenant

app = typer.Typer(help="The persisted figures: roll-ups and reads.", no_args_is_help=True)
out = Console()  # reports go to stdout; errors to stderr
T = TypeVar("T")


def _on_database(work: Callable[[AsyncConn], Awaitable[T]]) -> T:
    """Run `work` on one connection to the configured (or embedded) database, migrated.

    The server itself, past any pooler: the migrations hold a session lock, and one
    connection of a command needs no pooling.
    """
    settings = load_settings()

    async def main(url: str) -> T:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await work(conn)

    with reported_errors():
        url = resolve_direct_url(settings)
        migrate(url, embedding_dim=settings.embedding_dim)
        return asyncio.run(main(url))


@app.command("rollup")
def rollup(
    now: Annotated[
        datetime | None, typer.Option(help="the clock to roll up at (UTC; default: now)")
    ] = None,
) -> None:
    """Roll old minutes into hours and old hours into days; delete days past retention.

    Every replica does this in the background (POSADA_METRICS_ROLLUP_S); one at a time.
    """
    metrics = load_settings().metrics
    retention = Retention(metrics.minute_hours, metrics.hour_days, metrics.day_days)
    clock = now.replace(tzinfo=UTC) if now else datetime.now(UTC)

    async def work(conn: AsyncConn) -> str:
        report = await roll_up(conn, now=clock, retention=retention)
        if report is None:
            return "another process is rolling up now; nothing done"
        return (
            f"rolled up at {clock:%Y-%m-%d %H:%M} UTC: {report.hours} hour rows and "
            f"{report.days} day rows written, {report.deleted} day rows deleted"
        )

    typer.echo(_on_database(work))


@app.command("routes")
def routes(
    hours: Annotated[float, typer.Option(min=0.01, max=24 * 400, help="the last N hours")] = 1,
    tenant: Annotated[str | None, typer.Option(help="one hotel's slug (default: all)")] = None,
    replica: Annotated[
        list[str] | None, typer.Option(help="only this replica (repeatable; default: all)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Requests, errors and P50/P95/P99 per route over the last hours, every replica merged."""
    until = datetime.now(UTC)

    async def work(conn: AsyncConn) -> list[RouteFigures]:
        tenant_id = (await get_tenant(conn, slug=tenant)).id if tenant else None
        return await route_figures(
            conn,
            tenant_id=tenant_id,
            since=until - timedelta(hours=hours),
            until=until,
            replicas=replica or None,
        )

    figures = _on_database(work)
    if as_json:
        typer.echo(json.dumps([f.as_dict() for f in figures], indent=2))
        return
    scope = f"hotel {tenant}" if tenant else "all hotels"
    table = Table(title=f"routes, last {hours:g} h, {scope}")
    for column in ("route", "requests", "errors", "slow", "P50 ms", "P95 ms", "P99 ms"):
        table.add_column(column, justify="left" if column == "route" else "right")
    for f in figures:
        table.add_row(f.route, f"{f.requests:,}", f"{f.errors:,}", f"{f.slow:,}",
                      f"{f.p50_ms:,.1f}", f"{f.p95_ms:,.1f}", f"{f.p99_ms:,.1f}")  # fmt: skip
    out.print(table)
