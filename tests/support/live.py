"""What the handoff tests share: guests and staff logged in on real HTTP, and a reader of
Server-Sent Events streams."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from posada.runtime import Runtime
from posada.staff.accounts import Role, add_member
from posada_bench import sse
from posada_bench.sse import Event as Event  # the tests import it from here
from tests.support.abuse import Hotel, login_body

PASSWORD = "correct horse battery"
# How long a test waits for an event before it fails (a guard against a hang, not a bound
# on how fast posada is).
PATIENCE_S = 30


async def guest(http: httpx.AsyncClient, hotel: Hotel, ago: int, phone: str) -> dict[str, str]:
    response = await http.post("/api/guest/login", json=login_body(hotel, ago, phone))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def staff(
    runtime: Runtime, site: str, hotel: Hotel, role: Role = "reception"
) -> tuple[httpx.AsyncClient, dict[str, str]]:
    """A client logged in as a new member of `hotel` (it keeps the cookie), and the CSRF header."""
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.org"
    async with runtime.pool.connection() as conn:
        await add_member(
            conn, tenant_id=hotel.tenant.id, email=email, role=role, password=PASSWORD,
            min_length=10,
        )  # fmt: skip
    client = httpx.AsyncClient(base_url=site, timeout=PATIENCE_S)
    body = {"tenant": hotel.tenant.slug, "email": email, "password": PASSWORD}
    response = await client.post("/api/staff/login", json=body)
    assert response.status_code == 200, response.text
    return client, {"X-CSRF-Token": response.json()["csrf_token"]}


class Events(sse.Events):
    """A Server-Sent Events stream; its end, or a hang, fails the test."""

    patience_s = PATIENCE_S
    ended = AssertionError

    async def until(self, name: str, **data: Any) -> Event:
        """Read on to the next `name` event whose data holds `data`'s items."""
        return await self.first(
            lambda event: (
                event.name == name and all(_value(event.data, k) == v for k, v in data.items())
            )
        )


def _value(data: dict[str, Any], key: str) -> Any:
    """`data[key]`, where `message_role` reads `data['message']['role']`."""
    if key.startswith("message_"):
        return data["message"][key.removeprefix("message_")]
    return data[key]


@asynccontextmanager
async def stream(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None
) -> AsyncIterator[Events]:
    async with client.stream("GET", path, headers=headers or {}) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Events(response)


async def chat(
    http: httpx.AsyncClient, auth: dict[str, str], message: str, conversation: int | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "conversation_id": conversation}
    response = await http.post("/api/guest/chat", json=body, headers=auth)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def messages(
    http: httpx.AsyncClient, auth: dict[str, str], conversation: int
) -> list[dict[str, Any]]:
    response = await http.get(f"/api/guest/conversations/{conversation}?limit=200", headers=auth)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["messages"]
    return found
