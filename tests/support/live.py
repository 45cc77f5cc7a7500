"""What the handoff tests share: guests and staff logged in on real HTTP, and a reader of
Server-Sent Events streams."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from posada.runtime import Runtime
from posada.staff.accounts import Role, add_member
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


@dataclass
class Event:
    name: str
    data: Any
    id: int | None


class Events:
    """A Server-Sent Events stream, read one event (or keep-alive comment) at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def rest(self) -> list[str]:
        """Every line the stream still sends, until the server ends it."""
        return await asyncio.wait_for(self._rest(), timeout=PATIENCE_S)

    async def _rest(self) -> list[str]:
        return [line async for line in self._lines]

    async def next(self, *, comments: bool = False) -> Event:
        """The next event (with `comments`, a keep-alive comment counts as one)."""
        return await asyncio.wait_for(self._next(comments), timeout=PATIENCE_S)

    async def _next(self, comments: bool) -> Event:
        fields: dict[str, str] = {}
        async for line in self._lines:
            if line.startswith(":"):
                if comments:
                    return Event("comment", line[1:].strip(), None)
                continue
            if not line:
                if fields:
                    given = fields.get("id")
                    return Event(
                        fields["event"], json.loads(fields["data"]), int(given) if given else None
                    )
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        raise AssertionError("the stream ended")

    async def until(self, name: str, **data: Any) -> Event:
        """Read on to the next `name` event whose data holds `data`'s items."""
        while True:
            event = await self.next()
            if event.name == name and all(_value(event.data, k) == v for k, v in data.items()):
                return event


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
