"""One embedded PostgreSQL and one loaded model per test session, with the demo hotel in it.

The fixtures every test folder shares; the helpers they use are in `tests/support`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from posada.api.app import create_app
from posada.core.config import Settings
from posada.demo import DEMO_SLUG, load_demo
from posada.runtime import Runtime
from posada.tenants.service import Tenant, ensure_tenant
from posada_bench.servers import UNLIMITED
from tests.support.helpers import (
    JWT_SECRET,
    LoginAs,
    RedisServer,
    Stay,
    StayFinder,
    log_in,
    redis_binary,
    serve_fake_llm,
)

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
        # tests/integration/test_caches.py turns them on where they are what is tested.
        embedding_cache=False,
        answer_cache=False,
        semantic_cache=False,
        # The abuse limits would make a test's answers depend on the requests before it;
        # tests/integration/test_chat_limits.py and test_login_throttle.py set their own.
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


@pytest.fixture(scope="session")
def quick_llm() -> Iterator[str]:
    """One quick simulated upstream (chat and embeddings) shared by the session's tests."""
    yield from serve_fake_llm("--ttft-ms", "10", "--tokens-per-s", "1000", "--embed-ms", "1")


@pytest.fixture(scope="session")
def failing_llm() -> Iterator[str]:
    """A simulated upstream answering every request with a 500."""
    yield from serve_fake_llm("--error-rate", "1", "--ttft-ms", "0")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis for the session: POSADA_TEST_REDIS_URL, else a `redis-server` from PATH."""
    given = os.environ.get("POSADA_TEST_REDIS_URL")
    if given:
        yield given
        return
    binary = redis_binary()
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
    binary = redis_binary()
    if binary is None:
        pytest.skip("no redis-server on PATH to stop and start")
    server = RedisServer(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
