"""What posada shows the world: security headers, docs, staff checks, timings, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from posada.api.app import create_app
from posada.api.surface import PAGE_POLICY
from posada.core.config import Settings
from posada.runtime import Runtime
from tests.support.helpers import JWT_SECRET, StayFinder, log_in, serve_posada

ADMIN = "admin-token-for-the-surface-tests"
SECURITY = {
    "content-security-policy": PAGE_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _settings(runtime: Runtime, **changes: object) -> Settings:
    """The session's settings as production would have them, with these changes."""
    base = runtime.settings.model_dump()
    base |= {
        "env": "prod",
        "jwt_secret": SecretStr(JWT_SECRET),
        "database_url": SecretStr(runtime.database_url),
        "admin_token": SecretStr(ADMIN),
    }
    return Settings(_env_file=None, **(base | changes))


async def _client(
    app: FastAPI, client: tuple[str, int] = ("127.0.0.1", 5555)
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url="http://posada.test") as http:
        yield http


@pytest.fixture
async def prod(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app as in production (docs off, timings hidden), on the session's runtime."""
    app = create_app(_settings(runtime), runtime=runtime)
    async for http in _client(app):
        yield http


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/static/app.js", 200),
        ("GET", "/healthz", 200),
        ("GET", "/api/public/casa-azul/info", 200),
        ("GET", "/api/public/nowhere/info", 404),
        ("GET", "/no/such/route", 404),
        ("POST", "/api/guest/chat", 401),
        ("POST", "/api/guest/login", 422),
    ],
)
async def test_every_page_and_answer_carries_the_security_headers(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path, json={})
    assert response.status_code == status
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value, name


async def test_a_body_over_the_limit_carries_them_too(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/guest/chat", content=b"x" * (64 * 1024 + 1))
    assert response.status_code == 413
    assert response.headers["connection"] == "close"
    assert response.headers["x-frame-options"] == "DENY"


async def test_headers_over_the_limit_are_431_in_the_app_too(client: httpx.AsyncClient) -> None:
    """Behind a server other than `posada serve`, the middleware still counts them."""
    many = {f"X-Many-{i}": "v" for i in range(101)}
    assert (await client.get("/healthz", headers=many)).status_code == 431
    big = {"X-Big": "a" * 17 * 1024}
    response = await client.get("/healthz", headers=big)
    assert response.status_code == 431
    assert response.json() == {"detail": "request headers over 16384 bytes"}


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
async def test_api_docs_are_off_in_production_unless_enabled(
    prod: httpx.AsyncClient, runtime: Runtime, client: httpx.AsyncClient, path: str
) -> None:
    assert (await prod.get(path)).status_code == 404
    assert (await client.get(path)).status_code == 200, "on in dev"
    enabled = create_app(_settings(runtime, api_docs=True), runtime=runtime)
    async for http in _client(enabled):
        assert (await http.get(path)).status_code == 200


@pytest.mark.parametrize(
    ("peer", "headers", "status"),
    [
        ("127.0.0.1", {}, 200),
        ("::1", {}, 200),
        ("localhost", {}, 403),  # a name a proxy header put there, not a socket address
        ("203.0.113.5", {}, 403),
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.5, localhost"}, 403),
        ("127.0.0.1", {"Forwarded": "for=203.0.113.5"}, 403),
    ],
)
async def test_without_an_admin_token_only_a_direct_loopback_client_is_staff(
    runtime: Runtime, peer: str, headers: dict[str, str], status: int
) -> None:
    app = create_app(runtime.settings, runtime=runtime)
    async for http in _client(app, client=(peer, 5555)):
        response = await http.get("/api/performance/metrics", headers=headers)
        assert response.status_code == status, response.text


@pytest.fixture(scope="module")
def proxied(runtime: Runtime) -> Iterator[str]:
    """A real `posada serve` with no admin token, for what uvicorn does with proxy headers."""
    yield from serve_posada(runtime)


def test_a_forwarded_localhost_does_not_read_metrics(proxied: str) -> None:
    """The issue's probe, over real uvicorn, which trusts X-Forwarded-For from 127.0.0.1."""
    forwarded = {"X-Forwarded-For": "203.0.113.5, localhost"}
    assert httpx.get(f"{proxied}/metrics", headers=forwarded).status_code == 403
    assert httpx.get(f"{proxied}/api/performance/metrics", headers=forwarded).status_code == 403
    assert httpx.get(f"{proxied}/metrics").status_code == 200, "a direct loopback client is"


async def test_guests_do_not_see_how_an_answer_was_made_in_production(
    prod: httpx.AsyncClient, current_stay: StayFinder
) -> None:
    auth = await log_in(prod, await current_stay("caracola"))
    question = {"message": "¿A qué hora es el check-out?"}
    response = await prod.post("/api/guest/chat", json=question, headers=auth)
    assert response.status_code == 200
    assert set(response.json()) == {
        "answer", "conversation_id", "sources", "incomplete", "handoff", "message_id"
    }  # fmt: skip
    assert response.json()["handoff"] is None
    assert "server-timing" not in response.headers
    assert "x-response-time" not in response.headers

    streamed = await prod.post("/api/guest/chat/stream", json=question, headers=auth)
    events = _events(streamed.text)
    assert set(events["meta"]) == {"conversation_id"}
    assert set(events["done"]) == {
        "conversation_id", "sources", "incomplete", "handoff", "message_id"
    }  # fmt: skip
    assert "server-timing" not in streamed.headers
    # Each names the answer stored, which the guest may rate.
    ids = {response.json()["message_id"], events["done"]["message_id"]}
    assert len(ids) == 2
    for message_id in ids:
        rated = await prod.post(
            f"/api/guest/messages/{message_id}/feedback", json={"helpful": True}, headers=auth
        )
        assert rated.status_code == 204, rated.text

    staff = {**auth, "X-Posada-Admin": ADMIN}
    seen = await prod.post("/api/guest/chat", json=question, headers=staff)
    assert {"layer", "timings", "counters", "model", "cost_usd"} <= set(seen.json())
    assert "total;dur=" in seen.headers["server-timing"]
    wrong = await prod.post(
        "/api/guest/chat", json=question, headers={**auth, "X-Posada-Admin": "guess"}
    )
    assert "layer" not in wrong.json()


async def test_timings_can_be_exposed_in_production(
    runtime: Runtime, current_stay: StayFinder
) -> None:
    app = create_app(_settings(runtime, expose_timings=True), runtime=runtime)
    async for http in _client(app):
        auth = await log_in(http, await current_stay("caracola"))
        response = await http.post("/api/guest/chat", json={"message": "wifi"}, headers=auth)
        assert "layer" in response.json()
        assert "server-timing" in response.headers


async def test_in_dev_the_guest_sees_them(
    client: httpx.AsyncClient, current_stay: StayFinder
) -> None:
    auth = await log_in(client, await current_stay("caracola"))
    response = await client.post("/api/guest/chat", json={"message": "wifi"}, headers=auth)
    assert {"layer", "timings", "counters"} <= set(response.json())
    assert "server-timing" in response.headers


def _events(text: str) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for block in text.strip().split("\n\n"):
        name = block.split("\n", 1)[0].removeprefix("event: ")
        found[name] = json.loads(block.split("data: ", 1)[1])
    return found


@pytest.mark.parametrize(
    "slug", ["ca%00sa", "Casa-Azul", "-casa", "casa azul", "c" * 64, "%27%3B--"]
)
@pytest.mark.parametrize("route", ["info", "units"])
async def test_public_slugs_are_checked_before_any_query(
    client: httpx.AsyncClient, slug: str, route: str
) -> None:
    response = await client.get(f"/api/public/{slug}/{route}")
    assert response.status_code == 422
    body = response.json()
    assert [e["field"] for e in body["errors"]] == ["path.slug"]
    assert "\x00" not in response.text
    assert "Casa-Azul" not in response.text


async def test_errors_never_echo_the_database(runtime: Runtime) -> None:
    """A value the database refuses: 422, and its message (which quotes it) only logged."""
    app = create_app(runtime.settings, runtime=runtime)

    async def refused() -> None:
        async with runtime.pool.connection() as conn:
            await conn.execute("SELECT %s::int", ("not-a-number-4217",))

    app.add_api_route("/test-only/refused", refused)
    async for http in _client(app):
        response = await http.get("/test-only/refused")
    assert response.status_code == 422
    assert "not-a-number-4217" not in response.text
    assert "syntax" not in response.text
    assert response.json()["errors"] == [
        {"field": "body", "error": "a value is out of range or not usable"}
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"{",  # not JSON
        b'{"message": "\xff\xfe"}',  # not UTF-8
        b"[" * 50_000,  # nested deeper than the parser goes
        b'{"message": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
    ],
    ids=["truncated", "invalid-utf8", "deep-open", "deep-closed"],
)
async def test_malformed_bodies_get_the_readmes_422(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/api/guest/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert errors
    assert all(set(e) == {"field", "error"} for e in errors)
