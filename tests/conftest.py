"""One embedded PostgreSQL and one loaded model per test session, with the demo hotel in it."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from posada.api.app import create_app
from posada.cli import app as cli_app
from posada.core.config import Settings
from posada.demo import DEMO_SLUG, load_demo
from posada.runtime import Runtime
from posada.tenants.service import Tenant, ensure_tenant
from posada_bench.servers import UNLIMITED, free_port, run_server

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
_UNLIMITED_SETTINGS: dict[str, Any] = {
    k.removeprefix("POSADA_").lower(): int(v) for k, v in UNLIMITED.items()
}


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for the session's own embedded server; nothing read from the environment."""
    return Settings(
        _env_file=None,
        data_dir=tmp_path_factory.mktemp("posada-data"),
        jwt_secret=SecretStr(JWT_SECRET),
        database_url=None,
        # The caches would make one test's answer depend on the questions asked before it;
        # tests/test_caches.py turns them on where they are what is tested.
        embedding_cache=False,
        answer_cache=False,
        semantic_cache=False,
        # The abuse limits would make a test's answers depend on the requests before it;
        # tests/test_abuse.py sets its own.
        **_UNLIMITED_SETTINGS,
    )


@pytest.fixture(scope="session")
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """The real thing: embedded PostgreSQL with pgvector, migrations, the local model, the demo."""
    opened = await Runtime.open(settings)
    await load_demo(opened, today=date.today())
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(scope="session")
async def demo_tenant(runtime: Runtime) -> Tenant:
    """The demo hotel, Hotel Casa Azul."""
    async with runtime.pool.connection() as conn:
        return await ensure_tenant(conn, slug=DEMO_SLUG)


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the app in process."""
    app = create_app(runtime=runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://posada.test") as http:
        yield http


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


@pytest.fixture
def current_stay(runtime: Runtime) -> StayFinder:
    """Find the current stay in a demo unit (by slug)."""

    async def find(unit: str, tenant: str = DEMO_SLUG) -> Stay:
        async with runtime.pool.connection() as conn:
            cur = await conn.execute(
                """SELECT u.id, r.id, r.check_in, r.phone_last4
                   FROM reservations r JOIN units u ON u.id = r.unit_id
                   JOIN tenants t ON t.id = r.tenant_id
                   WHERE t.slug = %s AND u.slug = %s AND r.status <> 'cancelled'
                     AND r.check_in <= current_date AND current_date < r.check_out
                   ORDER BY r.id LIMIT 1""",
                (tenant, unit),
            )
            row = await cur.fetchone()
        assert row is not None, f"the demo has no current stay in {unit}"
        return Stay(tenant, unit, row[0], row[1], row[2], row[3])

    return find


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


@pytest.fixture
def login_as(client: httpx.AsyncClient, current_stay: StayFinder) -> LoginAs:
    """Log in as the current guest of a unit; returns the Authorization header."""

    async def login(unit: str) -> dict[str, str]:
        return await log_in(client, await current_stay(unit))

    return login


@pytest.fixture
async def new_tenant(runtime: Runtime) -> Tenant:
    """A fresh tenant of its own for a test that writes."""
    async with runtime.pool.connection() as conn:
        return await ensure_tenant(conn, slug=f"t-{uuid.uuid4().hex[:10]}", name="Test Hotel")


def write_docs(root: Path, files: dict[str, str]) -> Path:
    """Write a folder of documents for a test to ingest."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _log_file(name: str) -> Path:
    handle, path = tempfile.mkstemp(prefix=f"posada-test-{name}-", suffix=".log")
    os.close(handle)
    return Path(path)


def serve_fake_llm(*flags: str) -> Iterator[str]:
    """Run `posada fake-llm` with these flags; yield its /v1 base URL."""
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    args = ["fake-llm", "--port", str(port), *flags]
    with run_server(args, env=dict(os.environ), ready=f"{root}/stats", log=_log_file("llm")):
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
        args, env=posada_env(runtime, env), ready=f"{base}/readyz", log=_log_file("serve")
    ) as process:
        yield base, process


def serve_posada(runtime: Runtime, *flags: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `posada serve` on the session's database; yield its base URL once ready."""
    with posada_process(runtime, *flags, env=env) as (base, _):
        yield base


@pytest.fixture(scope="session")
def quick_llm() -> Iterator[str]:
    """One quick simulated upstream (chat and embeddings) shared by the session's tests."""
    yield from serve_fake_llm("--ttft-ms", "10", "--tokens-per-s", "1000", "--embed-ms", "1")


@pytest.fixture(scope="session")
def failing_llm() -> Iterator[str]:
    """A simulated upstream answering every request with a 500."""
    yield from serve_fake_llm("--error-rate", "1", "--ttft-ms", "0")


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


def _redis_binary() -> str | None:
    binary = shutil.which("redis-server")
    if binary is None and os.environ.get("CI"):
        pytest.fail("redis-server is required in CI (.ci/run installs it)")
    return binary


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis for the session: POSADA_TEST_REDIS_URL, else a `redis-server` from PATH."""
    given = os.environ.get("POSADA_TEST_REDIS_URL")
    if given:
        yield given
        return
    binary = _redis_binary()
    if binary is None:
        pytest.skip("no POSADA_TEST_REDIS_URL and no redis-server on PATH")
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis this test may stop and start (needs `redis-server` on PATH)."""
    binary = _redis_binary()
    if binary is None:
        pytest.skip("no redis-server on PATH to stop and start")
    server = RedisServer(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
