"""`posada reembed`."""

from __future__ import annotations

from typing import Annotated

import typer

from posada.cli._common import console, embedding_progress, run_with_runtime
from posada.knowledge.reembed import BATCH, ReembedReport
from posada.knowledge.reembed import reembed as reembed_rows
from posada.runtime import Runtime
from posada.tenants.service import get_tenant


def reembed(
    tenant: Annotated[
        str | None,
        typer.Option(help="this hotel's rows only (default: every hotel's and tourism's)"),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="rows per committed batch")] = BATCH,
    batches: Annotated[
        int | None,
        typer.Option(min=1, help="stop after this many batches; run again to continue"),
    ] = None,
) -> None:
    """Embed every chunk and FAQ entry again with the configured model (POSADA_EMBEDDING_MODEL).

    Rows already embedded by it are skipped, so a run that was stopped continues where it
    stopped. When the last row is done, the hotels' cached answers are dropped.
    """

    async def work(runtime: Runtime) -> ReembedReport:
        target = None
        if tenant is not None:
            async with runtime.pool.connection() as conn:
                target = await get_tenant(conn, slug=tenant)
        with embedding_progress(f"embedding with {runtime.embedder.model}") as progress:
            return await reembed_rows(
                pool=runtime.pool,
                embedder=runtime.embedder,
                faq_embedder=runtime.query_embedder,
                tenant=target,
                batch_size=batch_size,
                max_batches=batches,
                progress=progress,
            )

    # This command is what mends a database of another model: it must open on one.
    report = run_with_runtime(work, check_embeddings=False)
    _print_report(report, tenant)


def _print_report(report: ReembedReport, tenant: str | None) -> None:
    where = f"hotel {tenant!r}" if tenant else "this database"
    if report.batches == 0 and report.finished:
        typer.echo(f"nothing to re-embed: every vector of {where} is from {report.model}")
        return
    typer.echo(
        f"re-embedded {report.chunks} chunks and {report.faqs} FAQ entries with "
        f"{report.model} in {report.batches} batches ({report.seconds:.1f} s)"
    )
    if not report.finished:
        console.print(
            f"[yellow]stopped:[/yellow] {report.left} rows of {where} are still of another "
            "model; run `posada reembed` again to continue"
        )
        return
    hotels = ", ".join(report.bumped) if report.bumped else "none"
    typer.echo(
        f"done: dropped {report.dropped_answers} cached answers; knowledge version bumped "
        f"for {len(report.bumped)} hotels ({hotels})"
    )
