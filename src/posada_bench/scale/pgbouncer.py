"""A real PgBouncer in front of a PostgreSQL server, run as a child process on loopback.

The pooling tests and the scale test put posada behind it. Its ini and userlist go
under a folder of the caller's; it listens on a free loopback port, answers once
`run_pgbouncer` yields, and is stopped when the block ends.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from posada_bench.servers import ServerFailed, free_port, stop, wait_ready

# Debian installs it outside a normal user's PATH.
_KNOWN = ("/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer", "/usr/local/bin/pgbouncer")


@dataclass(frozen=True)
class PgBouncer:
    """A started PgBouncer."""

    url: str  # conninfo clients use (same dbname and user as the server)
    admin_url: str  # conninfo of its `pgbouncer` console (SHOW POOLS, SHOW STATS)
    port: int
    pid: int


def pgbouncer_binary() -> str | None:
    """The pgbouncer executable, if this machine has one."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((path for path in _KNOWN if os.access(path, os.X_OK)), None)


def pgbouncer_version(binary: str) -> tuple[int, int]:
    """The (major, minor) version `binary --version` names ((0, 0) if unreadable)."""
    # The binary found by pgbouncer_binary, asked only for its version.
    shown = subprocess.run(  # noqa: S603
        [binary, "--version"], capture_output=True, text=True, check=False
    ).stdout
    found = re.search(r"PgBouncer (\d+)\.(\d+)", shown)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def _run_as(host: str) -> str | None:
    """The user to drop to: pgbouncer refuses to run as root.

    Behind a unix socket, the owner of the socket's folder (the embedded server keeps
    it private to its own system user); otherwise `nobody`.
    """
    if os.geteuid() != 0:
        return None
    if host.startswith("/"):
        return pwd.getpwuid(Path(host).stat().st_uid).pw_name
    return "nobody"


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def write_config(
    *,
    server_url: str,
    folder: Path,
    port: int,
    pool_size: int,
    max_client_conn: int,
    mode: str,
    version: tuple[int, int] = (1, 18),
) -> Path:
    """Write pgbouncer.ini and its userlist under `folder`; returns the ini's path."""
    server = conninfo_to_dict(server_url)
    host = str(server.get("host") or "/var/run/postgresql")
    user = str(server.get("user") or pwd.getpwuid(os.getuid()).pw_name)
    password = str(server.get("password") or "")
    target = f"host={host} port={server.get('port') or 5432}"
    folder.mkdir(parents=True, exist_ok=True)
    userlist = folder / "userlist.txt"
    userlist.write_text(f"{_quote(user)} {_quote(password)}\n")
    # A password is checked (and used to log in to the server); none means trust,
    # as the server behind it does.
    auth = "scram-sha-256" if password else "trust"
    ini = folder / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        # Any database name the client asks for, on the same server.
        f"* = {target}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        f"auth_type = {auth}\n"
        f"auth_file = {userlist}\n"
        f"admin_users = {user}\n"
        f"stats_users = {user}\n"
        f"pool_mode = {mode}\n"
        f"default_pool_size = {pool_size}\n"
        f"max_client_conn = {max_client_conn}\n"
        "ignore_startup_parameters = extra_float_digits\n"
        # 1.21 and later can carry prepared statements (on by default since 1.24): off,
        # so any version behaves as the one posada's pooled mode is written for.
        + ("max_prepared_statements = 0\n" if version >= (1, 21) else "")
    )
    return ini


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


@contextmanager
def run_pgbouncer(
    *,
    server_url: str,
    folder: Path,
    pool_size: int = 20,
    max_client_conn: int = 1000,
    mode: str = "transaction",
    timeout_s: float = 30,
) -> Iterator[PgBouncer]:
    """A PgBouncer in `mode` in front of `server_url`; yields once it answers."""
    binary = pgbouncer_binary()
    if binary is None:
        raise ServerFailed("no pgbouncer on this machine (Debian: apt-get install pgbouncer)")
    port = free_port()
    ini = write_config(
        server_url=server_url,
        folder=folder,
        port=port,
        pool_size=pool_size,
        max_client_conn=max_client_conn,
        mode=mode,
        version=pgbouncer_version(binary),
    )
    host = str(conninfo_to_dict(server_url).get("host") or "/var/run/postgresql")
    user = _run_as(host)
    args = [binary, *(["-u", user] if user else []), str(ini)]
    url = make_conninfo(server_url, host="127.0.0.1", port=str(port))
    admin_url = make_conninfo(url, dbname="pgbouncer")
    log = folder / "pgbouncer.log"
    with log.open("wb") as out:
        # The binary found above, with arguments built here.
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            wait_ready(
                lambda: _answers(url),
                process=process,
                name="pgbouncer",
                log=log,
                timeout_s=timeout_s,
                interval_s=0.1,
            )
            yield PgBouncer(url=url, admin_url=admin_url, port=port, pid=process.pid)
        finally:
            stop(process, timeout_s=10)
