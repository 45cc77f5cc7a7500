"""Helpers the tests share: logging in, running `posada` commands and servers, Redis."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from posada.cli import app as cli_app
from posada.runtime import Runtime
from posada_bench.servers import UNLIMITED, free_port, run_server

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


@dataclass(frozen=True)
class CliResult:
    """What a `posada` command did: its exit code and its two streams."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> CliResult:
    """Run `posada ARGS` in this process with the environment `env` (and folder `cwd`).

    The same Typer app the console script runs, without starting a Python and loading
    torch again for each command: the model is already loaded in the test process.
    """
    overrides: dict[str, str | None] = {k: v for k, v in env.items() if os.environ.get(k) != v}
    overrides |= {k: None for k in os.environ if k not in env}
    runner = CliRunner()
    with contextlib.chdir(cwd or Path.cwd()):
        result = runner.invoke(cli_app, list(args), env=overrides)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return CliResult(result.exit_code, result.stdout, stderr)


@dataclass(frozen=True)
class Stay:
    """A current demo reservation: how its guest logs in."""

    tenant: str
    unit: str
    unit_id: int
    reservation_id: int
    check_in: date
    phone_last4: str


StayFinder = Callable[[str], Awaitable[Stay]]


async def log_in(http: httpx.AsyncClient, stay: Stay) -> dict[str, str]:
    """Log in as the guest of `stay` through any client; returns the Authorization header."""
    response = await http.post(
        "/api/guest/login",
        json={
            "tenant": stay.tenant,
            "check_in": stay.check_in.isoformat(),
            "phone_last4": stay.phone_last4,
        },
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


LoginAs = Callable[[str], Awaitable[dict[str, str]]]


def write_docs(root: Path, files: dict[str, str]) -> Path:
    """Write a folder of documents for a test to ingest."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def log_file(name: str) -> Path:
    handle, path = tempfile.mkstemp(prefix=f"posada-test-{name}-", suffix=".log")
    os.close(handle)
    return Path(path)


def serve_fake_llm(*flags: str) -> Iterator[str]:
    """Run `posada fake-llm` with these flags; yield its /v1 base URL."""
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    args = ["fake-llm", "--port", str(port), *flags]
    with run_server(args, env=dict(os.environ), ready=f"{root}/stats", log=log_file("llm")):
        yield f"{root}/v1"


def posada_env(runtime: Runtime, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a `posada serve` on the session's database."""
    return {
        **os.environ,
        "POSADA_DATABASE_URL": runtime.database_url,
        "POSADA_JWT_SECRET": "server-test-secret-0123456789-0123456789",
        "POSADA_DATA_DIR": str(runtime.settings.data_dir),
        # As in the session's runtime: off, unless the test is about them (`env`).
        "POSADA_EMBEDDING_CACHE": "false",
        "POSADA_ANSWER_CACHE": "false",
        "POSADA_SEMANTIC_CACHE": "false",
        **UNLIMITED,
        **(env or {}),
    }


@contextlib.contextmanager
def posada_process(
    runtime: Runtime, *flags: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run `posada serve` on the session's database; its base URL and process once ready."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["serve", "--port", str(port), *flags]
    # /readyz answers 503 until the database and the model are ready.
    with run_server(
        args, env=posada_env(runtime, env), ready=f"{base}/readyz", log=log_file("serve")
    ) as process:
        yield base, process


def serve_posada(runtime: Runtime, *flags: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `posada serve` on the session's database; yield its base URL once ready."""
    with posada_process(runtime, *flags, env=env) as (base, _):
        yield base


class RedisServer:
    """A `redis-server` of the test's own, which a test may stop and start again."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it (nothing kept on disk) and wait until it answers."""
        flags = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self._process = subprocess.Popen(
            [self.binary, "--port", str(self.port), *flags, "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        pytest.fail("redis-server did not start")

    def stop(self) -> None:
        """Stop it."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=20)
            self._process = None


def redis_binary() -> str | None:
    binary = shutil.which("redis-server")
    if binary is None and os.environ.get("CI"):
        pytest.fail("redis-server is required in CI (.ci/run installs it)")
    return binary
