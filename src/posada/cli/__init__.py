"""The `posada` command: one module per command group, registered here."""

from __future__ import annotations

import typer

from posada.cli import (
    ask,
    audit,
    cache,
    costs,
    dashboard,
    db,
    demo,
    ingest,
    metrics,
    model,
    reembed,
    reservations,
    serve,
    staff,
)
from posada.cli.plugins import DbGroup, PluginGroup

app = typer.Typer(
    name="posada",
    help="posada: a fast, low-cost AI concierge for hotels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=PluginGroup,  # and the benchmark's commands, when it is installed
)
app.command("serve")(serve.serve)
app.command("ingest")(ingest.ingest)
app.command("reembed")(reembed.reembed)
app.command("ask")(ask.ask)
app.command("demo")(demo.demo)
app.add_typer(db.app, name="db", cls=DbGroup)
app.add_typer(reservations.app, name="reservations")
app.add_typer(staff.app, name="staff")
app.add_typer(audit.app, name="audit")
app.add_typer(cache.app, name="cache")
app.add_typer(costs.app, name="costs")
app.add_typer(metrics.app, name="metrics")
app.add_typer(model.app, name="model")
app.command("dashboard")(dashboard.dashboard)


def main() -> None:
    """Console-script entry point."""
    app()
