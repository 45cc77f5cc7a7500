"""`posada serve`."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from types import FrameType
from typing import Annotated

import psycopg
import typer
import uvicorn

from posada.api.http_limits import uvicorn_options
from posada.cli._common import load_settings, reported_errors
from posada.core.config import Settings
from posada.db.migrate import migrate
from posada.db.pool import resolve_direct_url
from posada.knowledge.reembed import require_embedding_model
from posada.providers.embeddings import build_embedders


def serve(
    host: Annotated[str | None, typer.Option(help="interface to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
) -> None:
    """Serve the guest API on the configured or embedded database."""
    settings = load_settings()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its metrics to files here and /metrics merges them. Set
        # before the workers start (prometheus-client reads it at import); emptied so a
        # previous run's counts do not linger.
        folder = settings.data_dir.resolve() / "prometheus"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    # With the embedded server, this process holds it too: it stops it (at exit) once the
    # workers have gone, and the workers join a server (and a database) already there.
    # Past any pooler: the migrations hold a session lock.
    with reported_errors():
        _check_database(resolve_direct_url(settings), settings)
    _exit_quietly_after_shutdown()
    uvicorn.run(
        "posada.api.app:create_app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level,
        # SIGTERM: stop accepting, let requests in flight finish for this long, then cut
        # what still runs (a streamed answer is stored as incomplete) and close the runtime.
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        # Forwarded headers only from the configured proxies (uvicorn trusts 127.0.0.1
        # by default): posada.limits.addresses.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or "",
        **uvicorn_options(settings),
    )


def _check_database(url: str, settings: Settings) -> None:
    """Migrate, and refuse vectors of another model, before any worker starts.

    Each worker's `Runtime.open` checks too; here the operator reads one clear message and
    `posada serve` exits 1, rather than a traceback from every worker.
    """
    migrate(url, embedding_dim=settings.embedding_dim)
    model = build_embedders(settings)[0].model

    async def check() -> None:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await require_embedding_model(conn, model=model)

    asyncio.run(check())


def _exit_quietly_after_shutdown() -> None:
    """Make SIGTERM and SIGINT end `posada serve` with status 0 once uvicorn has shut down.

    uvicorn handles them itself, then raises the signal again under the handler that was
    there before it: the default one would kill the process (143) before `atexit` runs,
    leaving the embedded PostgreSQL behind. Under this one the process returns normally.
    """

    def after_shutdown(signum: int, _: FrameType | None) -> None:
        return None

    signal.signal(signal.SIGTERM, after_shutdown)
    signal.signal(signal.SIGINT, after_shutdown)
