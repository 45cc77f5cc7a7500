"""`posada costs report`: what each hotel's month cost, day by day, and where it is heading."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from posada.cli._common import console, run_with_runtime
from posada.core.errors import InvalidInput
from posada.observe.costs import Costs, MonthCosts, costs_report
from posada.observe.figures import REUSE_LAYERS
from posada.runtime import Runtime
from posada.tenants.budgets import Clock, Month, utc_now

app = typer.Typer(
    help="What the LLMs and embeddings cost, per hotel and day.", no_args_is_help=True
)
# The report's "now" (the projection, today's row); tests fix it.
clock: Clock = utc_now


@app.command("report")
def report(
    tenant: Annotated[
        str | None, typer.Option(help="one hotel's slug; every hotel if absent")
    ] = None,
    month: Annotated[str | None, typer.Option(help="YYYY-MM; the current month if absent")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="write a row per hotel and day to this file")
    ] = None,
) -> None:
    """Per day of the month: LLM and embedding spend, calls and tokens per model, answers by
    layer, the cache-and-FAQ share; and the month's projection."""
    if as_json and csv_file is not None:
        console.print("[red]error:[/red] give --json or --csv, not both")
        raise typer.Exit(2)
    now = clock()
    try:
        chosen = Month.of(now) if month is None else Month.parse(month)
    except InvalidInput as exc:
        console.print(f"[red]error:[/red] --month: {exc}")
        raise typer.Exit(2) from exc

    async def work(runtime: Runtime) -> tuple[list[MonthCosts], MonthCosts]:
        async with runtime.pool.connection() as conn:
            return await costs_report(conn, month=chosen, now=now, slug=tenant)

    hotels, total = run_with_runtime(work)
    if as_json:
        hotels_out = [h.as_dict() for h in hotels]
        typer.echo(
            json.dumps({"month": str(chosen), "hotels": hotels_out, "total": total.as_dict()})
        )
    elif csv_file is not None:
        rows = _csv_rows([*hotels, total])
        _write_csv(csv_file, rows)
        typer.echo(f"wrote {len(rows)} rows to {csv_file}")
    else:
        # The report is the output (stdout); piped, a width a row fits in.
        out = Console()
        if not out.is_terminal:
            out.width = 200
        for hotel in hotels:
            out.print(_table(hotel))
        if len(hotels) != 1:
            out.print(_table(total))


def _money(usd: float) -> str:
    return f"${usd:.4f}"


def _share(costs: Costs) -> str:
    share = costs.cache_faq_share
    return "-" if share is None else f"{share:.0%}"


def _line(label: str, costs: Costs) -> list[str]:
    models = "; ".join(
        f"{name} {use.calls}× {use.input_tokens}/{use.output_tokens}"
        for name, use in sorted(costs.models.items())
    )
    layers = " ".join(f"{layer} {n}" for layer, n in sorted(costs.answers.items()))
    calls = sum(use.calls for use in costs.models.values())
    return [
        label, _money(costs.llm_usd), _money(costs.embedding_usd), _money(costs.spend_usd),
        str(calls), models or "-", layers or "-", _share(costs),
    ]  # fmt: skip


def _table(month: MonthCosts) -> Table:
    """One hotel's (or every hotel's) month: a row a day, the month, the projection."""
    name = "all hotels" if month.tenant is None else f"{month.name} ({month.tenant})"
    table = Table(
        title=f"{name}, {month.month}",
        caption=(
            f"projected {_money(month.projected_usd)} this month: spent "
            f"{_money(month.totals.spend_usd)} in {month.elapsed:.1%} of it"
        ),
    )
    headers = ("day", "LLM", "embeddings", "spend", "LLM calls", "per model: calls in/out tokens")
    for header in (*headers, "answers by layer", f"{'+'.join(REUSE_LAYERS)} share"):
        table.add_column(header, no_wrap=header == "day")
    for day, costs in month.days.items():
        table.add_row(*_line(day.isoformat(), costs))
    table.add_section()
    table.add_row(*_line("month", month.totals))
    return table


def _csv_rows(months: list[MonthCosts]) -> list[dict[str, Any]]:
    """A row per hotel and day (`all` is every hotel together); a column per model's calls
    and tokens and per layer's answers, for whichever appear."""
    rows = []
    for month in months:
        for day, costs in month.days.items():
            figures = costs.as_dict()
            row: dict[str, Any] = {"tenant": month.tenant or "all", "day": day.isoformat()}
            for key in ("llm_usd", "embedding_usd", "spend_usd", "llm_calls"):
                row[key] = figures[key]
            row["input_tokens"], row["output_tokens"] = (
                figures["input_tokens"],
                figures["output_tokens"],
            )
            for use in figures["models"]:
                for key in ("calls", "input_tokens", "output_tokens", "cost_usd"):
                    row[f"{use['model']}:{key}"] = use[key]
            for layer, count in figures["answers"].items():
                row[f"answers:{layer}"] = count
            row["answers_total"] = figures["answers_total"]
            row["cache_faq_share"] = figures["cache_faq_share"]
            row["projected_usd"] = round(month.projected_usd, 6)
            rows.append(row)
    return rows


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    try:
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=list(columns), restval=0)
            writer.writeheader()
            writer.writerows(rows)
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot write {path}: {exc}")
        raise typer.Exit(1) from exc
