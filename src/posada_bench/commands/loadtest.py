"""`posada loadtest`: concurrent guests through Locust; P50/P95/P99 per request type."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from posada.cli._common import console
from posada.core.errors import ConfigurationError, InvalidInput, PosadaError
from posada_bench.commands._common import JsonOption, write_results
from posada_bench.loadtest import parse_duration, run_loadtest

out = Console()  # the report goes to stdout; progress and errors to stderr


def loadtest(
    users: Annotated[int, typer.Option(min=1, max=1000, help="concurrent guests")] = 100,
    spawn_rate: Annotated[float, typer.Option(min=0.1, help="guests started per second")] = 10.0,
    duration: Annotated[str, typer.Option(help="how long: 60, 60s, 2m")] = "60s",
    host: Annotated[
        str | None,
        typer.Option(help="a running posada on loopback (default: start one of its own)"),
    ] = None,
    seed: Annotated[int, typer.Option(help="the guests' seed")] = 42,
    as_json: JsonOption = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="where the run keeps its database, logs and CSV (default: a temp folder)"
        ),
    ] = None,
) -> None:
    """Load-test posada with Locust (headless, loopback only); exit 1 if any request failed."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        results = asyncio.run(
            run_loadtest(
                users=users,
                spawn_rate=spawn_rate,
                duration_s=parse_duration(duration),
                host=host,
                folder=data_dir,
                seed=seed,
                say=lambda line: console.print(line, highlight=False),
            )
        )
    except (InvalidInput, ConfigurationError) as exc:
        console.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(2) from exc
    except PosadaError as exc:
        console.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(1) from exc
    write_results(as_json, results)
    figures = results["loadtest"]
    print_results(figures)
    if figures["failures"]:
        raise typer.Exit(1)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def _row(name: str, figures: dict[str, Any]) -> list[str]:
    return [
        name.replace(" /api/guest/", " "),  # every path is under it; the table fits 80 columns
        f"{figures['requests']:,}",
        f"{figures['failures']:,}",
        *(_ms(figures[key]) for key in ("p50_ms", "p95_ms", "p99_ms")),
    ]


def print_results(figures: dict[str, Any]) -> None:
    """Requests, failures and raw-time percentiles per request type, then the failures."""
    table = Table(title=f"posada loadtest: {figures['users']} users, {figures['duration_s']} s")
    table.add_column("type (/api/guest/...)", no_wrap=True)
    for column in ("requests", "failures", "P50 ms", "P95 ms", "P99 ms"):
        table.add_column(column, justify="right")
    for name, by_type in figures["by_type"].items():
        table.add_row(*_row(name, by_type))
    table.add_section()
    table.add_row(*_row("all", figures))
    out.print(table)
    out.print(f"failures: {figures['failures']:,}", highlight=False)
    for name, by_type in figures["by_type"].items():
        for error in by_type["error_samples"]:
            out.print(f"{name} failed: {error}", markup=False, highlight=False)
    out.print(f"Locust CSV: {figures['csv']}_stats.csv", highlight=False)
