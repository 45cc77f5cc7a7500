"""`posada demo`."""

from __future__ import annotations

import typer

from posada.cli._common import console, embedding_progress, run_with_runtime
from posada.cli.ingest import print_report
from posada.demo import DEMO_SLUG, DemoReport, load_demo
from posada.runtime import Runtime


def demo() -> None:
    """Load the demo hotel (Hotel Casa Azul), its tourism listings and reservations; idempotent."""

    async def work(runtime: Runtime) -> DemoReport:
        with embedding_progress("embedding") as progress:
            return await load_demo(runtime, progress=progress)

    report = run_with_runtime(work)
    print_report(report.hotel)
    print_report(report.tourism)
    console.print(
        f"reservations: {report.reservations.inserted} new, {report.reservations.updated} updated"
    )
    typer.echo(f"demo hotel ready: ?hotel={DEMO_SLUG}")
