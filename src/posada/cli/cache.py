"""`posada cache ...`."""

from __future__ import annotations

from typing import Annotated

import typer

from posada.api.warm import WarmReport, warm_embeddings
from posada.cli._common import run_with_runtime
from posada.knowledge.ingest import bump_knowledge_version
from posada.runtime import Runtime
from posada.tenants.service import get_tenant

app = typer.Typer(help="Caches.", no_args_is_help=True)


@app.command("warm")
def warm(
    days: Annotated[int, typer.Option(min=1, max=365, help="questions of the last N days")] = 7,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="the N most asked")] = 200,
) -> None:
    """Embed the most asked questions of the last days into the embedding cache (Redis)."""

    async def work(runtime: Runtime) -> WarmReport:
        if not runtime.settings.embedding_cache:
            raise typer.BadParameter("the embedding cache is off (POSADA_EMBEDDING_CACHE)")
        return await warm_embeddings(runtime, days=days, limit=limit)

    report = run_with_runtime(work)
    typer.echo(
        f"warmed {report.questions} questions: {report.computed} embedded now, "
        f"{report.questions - report.computed} already cached"
    )


@app.command("purge")
def purge(tenant: Annotated[str, typer.Option(help="the hotel's slug")]) -> None:
    """Forget every cached answer of a hotel, in every process (a wrong answer being served).

    The hotel's knowledge version moves on, as after an ingest: the exact answers (memory
    and Redis) become unreachable, the semantic cache's rows are deleted, and every running
    posada is told at commit.
    """

    async def work(runtime: Runtime) -> int | None:
        async with runtime.pool.connection() as conn, conn.transaction():
            found = await get_tenant(conn, slug=tenant)
            return await bump_knowledge_version(conn, tenant_id=found.id)

    version = run_with_runtime(work)
    typer.echo(f"cached answers of {tenant} purged; knowledge version is now {version}")
