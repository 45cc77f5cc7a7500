"""`posada serve`."""

from __future__ import annotations

import os
import shutil
from typing import Annotated

import typer
import uvicorn

from posada.cli._common import load_settings


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
    uvicorn.run(
        "posada.app:create_app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level,
        # Forwarded headers only from the configured proxies (uvicorn trusts 127.0.0.1
        # by default): posada.limits.addresses.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or "",
    )
