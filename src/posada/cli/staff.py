"""`posada staff ...`: a hotel's staff accounts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from posada.cli._common import console, run_with_runtime
from posada.runtime import Runtime
from posada.staff.accounts import ROLES, Member, add_member, list_members, remove_member
from posada.tenants.service import get_tenant

app = typer.Typer(help="The hotel's staff accounts.", no_args_is_help=True)


def _password(file: Path | None) -> str:
    """From the file (its first line), else asked twice without echo."""
    if file is None:
        entered: str = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        return entered
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        console.print(f"[red]error:[/red] cannot read {file}: {exc}")
        raise typer.Exit(1) from exc
    return lines[0] if lines else ""


@app.command("add")
def add(
    tenant: Annotated[str, typer.Option(help="the hotel's slug")],
    email: Annotated[str, typer.Option(help="the member's e-mail, their login")],
    role: Annotated[str, typer.Option(help="reception, manager or owner")],
    password_file: Annotated[
        Path | None, typer.Option(help="read the password from this file's first line")
    ] = None,
) -> None:
    """Add a member to a hotel's staff."""
    if role not in ROLES:
        console.print(f"[red]error:[/red] --role must be one of {', '.join(ROLES)}")
        raise typer.Exit(1)
    password = _password(password_file)

    async def work(runtime: Runtime) -> Member:
        async with runtime.pool.connection() as conn:
            hotel = await get_tenant(conn, slug=tenant)
            return await add_member(
                conn,
                tenant_id=hotel.id,
                email=email,
                role=role,  # one of ROLES (checked above)
                password=password,
                min_length=runtime.settings.staff.password_min_length,
            )

    member = run_with_runtime(work)
    typer.echo(f"added {member.email} ({member.role}) to {tenant}")


@app.command("list")
def list_(tenant: Annotated[str, typer.Option(help="the hotel's slug")]) -> None:
    """A hotel's staff, one member a line: e-mail and role."""

    async def work(runtime: Runtime) -> list[Member]:
        async with runtime.pool.connection() as conn:
            hotel = await get_tenant(conn, slug=tenant)
            return await list_members(conn, tenant_id=hotel.id)

    for member in run_with_runtime(work):
        typer.echo(f"{member.email}\t{member.role}")


@app.command("remove")
def remove(
    tenant: Annotated[str, typer.Option(help="the hotel's slug")],
    email: Annotated[str, typer.Option(help="the member's e-mail")],
) -> None:
    """Remove a member from a hotel's staff; their sessions end at once."""

    async def work(runtime: Runtime) -> None:
        async with runtime.pool.connection() as conn:
            hotel = await get_tenant(conn, slug=tenant)
            await remove_member(conn, tenant_id=hotel.id, email=email)

    run_with_runtime(work)
    typer.echo(f"removed {email} from {tenant}")
