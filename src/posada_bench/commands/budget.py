"""`posada budget ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from posada.cli._common import console
from posada.core.errors import InvalidInput
from posada_bench.budget import Check, check_budget, format_number, load_budget, load_results

app = typer.Typer(help="Performance budgets.", no_args_is_help=True)
out = Console()  # reports go to stdout; errors to stderr


@app.command("check")
def check(
    results: Annotated[
        Path, typer.Argument(help="results of `posada bench --json` or `posada loadtest --json`")
    ],
    budget: Annotated[Path, typer.Option(help="the budget file")] = Path("performance-budget.json"),
) -> None:
    """Check results against the budget: exit 1 on any breach, 2 on a file that cannot be used."""
    try:
        checks = check_budget(results=load_results(path=results), budget=load_budget(path=budget))
    except InvalidInput as exc:
        console.print(f"[red]error:[/red] {escape(exc.message)}", soft_wrap=True)
        raise typer.Exit(2) from exc
    print_checks(checks, title=f"{results} against {budget}")
    breaches = [c for c in checks if not c.ok]
    # One plain line per breach, so CI logs and grep show exactly what broke.
    for breach in breaches:
        out.print(f"BREACH {breach.message}", markup=False, highlight=False, soft_wrap=True)
    if breaches:
        out.print(f"{len(breaches)} of {len(checks)} checks breached the budget", highlight=False)
        raise typer.Exit(1)
    out.print(f"all {len(checks)} checks within the budget", highlight=False)


def print_checks(checks: list[Check], *, title: str) -> None:
    """Every check as a table row."""
    table = Table(title=escape(title))
    for column in ("section", "figure", "measured", "limit", "result"):
        table.add_column(column, justify="right" if column in ("measured", "limit") else "left")
    for c in checks:
        measured = "not measured" if c.measured is None else format_number(c.measured)
        result = "ok" if c.ok else "[bold red]BREACH[/bold red]"
        table.add_row(c.section, c.figure, measured, f"{c.kind} {format_number(c.limit)}", result)
    out.print(table)
