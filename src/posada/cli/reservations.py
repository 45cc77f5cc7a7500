"""`posada reservations ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from posada.cli._common import console, run_with_runtime
from posada.core.errors import InvalidInput
from posada.guests.service import ImportReport, import_reservations, revoke_tokens
from posada.runtime import Runtime
from posada.tenants.service import get_tenant

app = typer.Typer(help="Reservations.", no_args_is_help=True)


@app.command("import")
def import_csv(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: external_ref,unit,guest_name,phone_last4,check_in,check_out,status"
        ),
    ],
    tenant: Annotated[str, typer.Option(help="the hotel's slug")],
) -> None:
    """Upsert reservations from a CSV; a bad row is reported and nothing is written."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        console.print(f"[red]error:[/red] cannot read {file}: {exc}")
        raise typer.Exit(1) from exc

    async def work(runtime: Runtime) -> ImportReport:
        async with runtime.pool.connection() as conn:
            hotel = await get_tenant(conn, slug=tenant)
            try:
                return await import_reservations(conn, tenant=hotel, csv_text=text)
            except InvalidInput as exc:
                raise InvalidInput(f"{file}: {exc.message}") from exc

    report = run_with_runtime(work)
    typer.echo(f"{report.inserted} new, {report.updated} updated")


@app.command("revoke")
def revoke(
    tenant: Annotated[str, typer.Option(help="the hotel's slug")],
    ref: Annotated[str, typer.Option(help="the reservation's external_ref")],
) -> None:
    """Refuse every token issued so far for one stay (the guest may log in again)."""

    async def work(runtime: Runtime) -> bool:
        async with runtime.pool.connection() as conn:
            hotel = await get_tenant(conn, slug=tenant)
            return await revoke_tokens(conn, tenant_id=hotel.id, external_ref=ref)

    if not run_with_runtime(work):
        console.print(f"[red]error:[/red] {tenant} has no reservation {ref!r}")
        raise typer.Exit(1)
    typer.echo(f"revoked the tokens of {ref}")
