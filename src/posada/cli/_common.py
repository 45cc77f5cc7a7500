"""What every command shares: settings, the runtime, the console, error reporting."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from posada.core.config import Settings
from posada.core.errors import PosadaError
from posada.runtime import Runtime

console = Console(stderr=True)
T = TypeVar("T")


def load_settings() -> Settings:
    """Settings from the environment, or a clear message and exit 2."""
    try:
        return Settings()
    except ValidationError as exc:
        console.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc


def run_with_runtime(
    work: Callable[[Runtime], Awaitable[T]], *, check_embeddings: bool = True
) -> T:
    """Open the runtime, run `work`, close it; PosadaError becomes a message and exit 1.

    So does a database that cannot be reached. `check_embeddings`: `Runtime.open`'s.
    """
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = load_settings()

    async def main() -> T:
        runtime = await Runtime.open(settings, check_embeddings=check_embeddings)
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    with reported_errors():
        return asyncio.run(main())


@contextmanager
def reported_errors() -> Iterator[None]:
    """PosadaError, or a database that cannot be reached, becomes a message and exit 1."""
    try:
        yield
    except PosadaError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())
        console.print(f"[red]error:[/red] cannot reach the database: {reason}")
        raise typer.Exit(1) from exc


@contextmanager
def embedding_progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar fed by (done, total) callbacks."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
