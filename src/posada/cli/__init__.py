"""The `posada` command: one module per command group, registered here."""

from __future__ import annotations

import typer

from posada.cli import (
    ask,
    audit,
    bench,
    budget,
    cache,
    dashboard,
    db,
    demo,
    fake_llm,
    ingest,
    loadtest,
    reembed,
    reservations,
    serve,
)

app = typer.Typer(
    name="posada",
    help="posada: a fast, low-cost AI concierge for hotels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.command("ingest")(ingest.ingest)
app.command("reembed")(reembed.reembed)
app.command("ask")(ask.ask)
app.command("demo")(demo.demo)
app.command("fake-llm")(fake_llm.fake_llm)
app.add_typer(db.app, name="db")
app.add_typer(reservations.app, name="reservations")
app.add_typer(audit.app, name="audit")
app.add_typer(budget.app, name="budget")
app.add_typer(cache.app, name="cache")
app.command("dashboard")(dashboard.dashboard)
app.command("bench")(bench.bench)
app.command("loadtest")(loadtest.loadtest)


def main() -> None:
    """Console-script entry point."""
    app()
