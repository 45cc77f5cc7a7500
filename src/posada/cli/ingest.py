"""`posada ingest`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from posada.cli._common import console, embedding_progress, run_with_runtime
from posada.knowledge.ingest import IngestReport, ingest_folder
from posada.runtime import Runtime
from posada.tenants.service import ensure_tenant


def ingest(
    path: Annotated[Path, typer.Argument(help="a Markdown file or a folder of them")],
    tenant: Annotated[str | None, typer.Option(help="the hotel's slug (created if new)")] = None,
    name: Annotated[str | None, typer.Option(help="the hotel's display name")] = None,
    tourism: Annotated[
        bool, typer.Option(help="shared tourism content, seen by every hotel")
    ] = False,
    unit: Annotated[
        str | None, typer.Option(help="make every document private to this unit")
    ] = None,
    prune: Annotated[
        bool, typer.Option(help="delete stored documents no longer under PATH")
    ] = False,
) -> None:
    """Ingest Markdown documents with YAML front matter."""
    if tourism == (tenant is not None):
        console.print("[red]error:[/red] give exactly one of --tenant SLUG or --tourism")
        raise typer.Exit(2)

    async def work(runtime: Runtime) -> IngestReport:
        target = None
        if tenant is not None:
            async with runtime.pool.connection() as conn:
                target = await ensure_tenant(conn, slug=tenant, name=name)
        with embedding_progress("embedding") as progress:
            return await ingest_folder(
                pool=runtime.pool,
                embedder=runtime.embedder,
                faq_embedder=runtime.query_embedder,
                root=path,
                tenant=target,
                unit_slug=unit,
                prune=prune,
                progress=progress,
            )

    report = run_with_runtime(work)
    print_report(report)
    if report.failed:
        raise typer.Exit(1)


def print_report(report: IngestReport) -> None:
    """A summary table, then every warning and failure by file and line."""
    table = Table(title="ingest")
    for column in (
        "added",
        "updated",
        "unchanged",
        "deleted",
        "failed",
        "chunks",
        "faq",
        "units",
        "seconds",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        *(
            str(len(x))
            for x in (report.added, report.updated, report.unchanged, report.deleted, report.failed)
        ),
        str(report.chunks),
        str(report.faqs),
        str(len(report.units)),
        f"{report.seconds:.1f}",
    )
    console.print(table)
    if report.knowledge_version is not None:
        console.print(f"knowledge version is now {report.knowledge_version}")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    for failure in report.failed:
        console.print(f"[red]failed:[/red] {failure.message}")
