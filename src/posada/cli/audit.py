"""`posada audit ...`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from posada.cli._common import run_with_runtime
from posada.observe.audit import EmbeddingAudit, audit_embeddings
from posada.runtime import Runtime
from posada.tenants.service import get_tenant

app = typer.Typer(help="Usage and cost audits.", no_args_is_help=True)
out = Console()  # reports go to stdout; errors to stderr


@app.command("embeddings")
def embeddings(
    days: Annotated[int, typer.Option(min=1, max=3660, help="how many days back")] = 30,
    tenant: Annotated[str | None, typer.Option(help="one hotel's slug")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Embedding calls, tokens, cost, projected monthly cost, repeats and cache hit rate."""

    async def work(runtime: Runtime) -> EmbeddingAudit:
        if runtime.ledger is not None:
            await runtime.ledger.flush()
        async with runtime.pool.connection() as conn:
            tenant_id = (await get_tenant(conn, slug=tenant)).id if tenant else None
            return await audit_embeddings(conn, days=days, tenant_id=tenant_id, tenant=tenant)

    audit = run_with_runtime(work)
    if as_json:
        typer.echo(json.dumps(audit.as_dict(), indent=2))
        return
    print_audit(audit)


def print_audit(audit: EmbeddingAudit) -> None:
    """The audit as two tables."""
    scope = f"hotel {audit.tenant}" if audit.tenant else "all hotels"
    table = Table(title=f"embeddings, last {audit.days} days, {scope}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for label, value in (
        ("calls (batches computed)", f"{audit.calls:,}"),
        ("API calls", f"{audit.api_calls:,}"),
        ("texts embedded", f"{audit.texts:,}"),
        ("texts from cache", f"{audit.cached:,}"),
        ("cache hit rate", f"{audit.hit_rate:.1%}"),
        ("tokens", f"{audit.tokens:,}"),
        ("cost", f"${audit.cost_usd:,.6f}"),
        ("projected monthly cost", f"${audit.projected_monthly_usd:,.4f}"),
        ("texts embedded more than once", f"{audit.repeated_texts:,}"),
        ("embeddings a cache would have saved", f"{audit.wasted_embeddings:,}"),
    ):
        table.add_row(label, value)
    out.print(table)
    if audit.providers:
        by = Table(title="by provider")
        for column in ("provider", "model", "calls", "texts", "tokens", "cost"):
            by.add_column(column, justify="left" if column in ("provider", "model") else "right")
        for p in audit.providers:
            by.add_row(
                p.provider, p.model, f"{p.calls:,}", f"{p.texts:,}", f"{p.tokens:,}",
                f"${p.cost_usd:,.6f}",
            )  # fmt: skip
        out.print(by)
