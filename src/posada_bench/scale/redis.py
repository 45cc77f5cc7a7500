"""The replicas' one Redis: a `redis-server` child on a free loopback port, nothing on disk."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from posada_bench.servers import ServerFailed, free_port, stop, wait_ready


@dataclass(frozen=True)
class Redis:
    """A running Redis."""

    url: str
    port: int
    pid: int


def redis_binary() -> str | None:
    """`redis-server`, if installed."""
    return shutil.which("redis-server")


def ping(port: int) -> bool:
    """Whether a Redis on this loopback port answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def run_redis(*, folder: Path, timeout_s: float = 20) -> Iterator[Redis]:
    """Start `redis-server` (no snapshots, no append-only file); stop it at the end."""
    binary = redis_binary()
    if binary is None:
        raise ServerFailed("the scale test needs redis-server (apt-get install redis-server)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    args += ["no", "--dir", str(folder), "--logfile", str(folder / "redis.log")]
    # The system's redis-server, with arguments built here.
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        wait_ready(
            lambda: ping(port),
            process=process,
            name="redis-server",
            log=folder / "redis.log",
            timeout_s=timeout_s,
            interval_s=0.1,
        )
        yield Redis(url=f"redis://127.0.0.1:{port}/0", port=port, pid=process.pid)
    finally:
        stop(process, timeout_s=20)
