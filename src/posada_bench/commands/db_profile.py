"""`posada db profile`: EXPLAIN ANALYZE a guest's visit (registered under `posada db`)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Annotated

import psycopg
import typer

from posada.cli._common import console, load_settings
from posada.core.errors import PosadaError
from posada.db.pool import resolve_database_url
from posada.providers.embeddings import build_embedders
from posada_bench.profile import Profile, grouped_flags, profile_database, render_report

_FLAGS_SHOWN = 10


def profile(
    tenant: Annotated[
        str | None,
        typer.Option(help="the hotel whose guest to play (default: the first with reservations)"),
    ] = None,
    output: Annotated[Path, typer.Option(help="the Markdown report")] = Path("profile-report.md"),
    large_rows: Annotated[
        int,
        typer.Option(min=0, help="flag seq scans of tables, and filters removing, over N rows"),
    ] = 1000,
    slow_ms: Annotated[
        float, typer.Option(min=0, help="flag statements executing longer than this many ms")
    ] = 500.0,
    reservations: Annotated[
        int,
        typer.Option(min=0, help="add N made-up stays first (rolled back): plans at that size"),
    ] = 0,
) -> None:
    """EXPLAIN ANALYZE the queries of a guest's visit and report what to fix; nothing is written."""
    settings = load_settings()

    async def work() -> Profile:
        url = await asyncio.to_thread(resolve_database_url, settings)
        return await profile_database(
            url=url,
            settings=settings,
            embedder=build_embedders(settings)[1],  # it embeds a guest's questions
            tenant=tenant,
            large_rows=large_rows,
            slow_ms=slow_ms,
            reservations=reservations,
        )

    try:
        result = asyncio.run(work())
    except PosadaError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    except psycopg.Error as exc:
        console.print(f"[red]error:[/red] profiling failed: {exc}")
        raise typer.Exit(1) from exc
    try:
        output.write_text(render_report(result), encoding="utf-8")
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot write {output}: {exc}")
        raise typer.Exit(1) from exc
    _print_summary(result, output)


def _print_summary(result: Profile, output: Path) -> None:
    kinds = Counter(flag.kind for flag in result.flags)
    counts = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
    typer.echo(
        f"profiled {result.guest.tenant_slug}: {len(result.statements)} statements from "
        f"{len({s.function for s in result.statements})} functions, "
        f"{len(result.flags)} flags" + (f" ({counts})" if counts else "")
    )
    distinct = grouped_flags(result.flags)
    for flag, runs in distinct[:_FLAGS_SHOWN]:
        typer.echo(f"  {flag.kind} ({runs}x) {flag.function}: {flag.detail}")
    if len(distinct) > _FLAGS_SHOWN:
        typer.echo(f"  ... {len(distinct) - _FLAGS_SHOWN} more in the report")
    if result.stat_statements_missing:
        console.print(f"[yellow]warning:[/yellow] {result.stat_statements_missing}")
    typer.echo(f"report: {output.resolve()}")
