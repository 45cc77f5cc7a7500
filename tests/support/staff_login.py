"""Staff members and guests of a test hotel, logged in on a client."""

from __future__ import annotations

from typing import Any

import httpx

from posada.runtime import Runtime
from posada.staff.accounts import Role, add_member
from tests.support.abuse import Hotel, login_body

PASSWORD = "correct horse battery"


async def staff_login(
    runtime: Runtime, hotel: Hotel, http: httpx.AsyncClient, role: Role
) -> dict[str, str]:
    """Add a member of `hotel` with `role` and log them in on `http` (the session cookie
    stays on it); the CSRF header their changes must carry."""
    email = f"{role}@{hotel.tenant.slug}.example"
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT 1 FROM staff WHERE tenant_id = %s AND email = %s", (hotel.tenant.id, email)
        )
        if await cur.fetchone() is None:
            await add_member(
                conn, tenant_id=hotel.tenant.id, email=email, role=role, password=PASSWORD,
                min_length=10,
            )  # fmt: skip
    body = {"tenant": hotel.tenant.slug, "email": email, "password": PASSWORD}
    response = await http.post("/api/staff/login", json=body)
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


async def guest_login(
    http: httpx.AsyncClient, hotel: Hotel, ago: int, phone: str
) -> dict[str, str]:
    """The Authorization header of the guest of the stay that checked in `ago` days ago."""
    response = await http.post("/api/guest/login", json=login_body(hotel, ago, phone))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def ask(
    http: httpx.AsyncClient, auth: dict[str, str], message: str, conversation: int | None = None
) -> dict[str, Any]:
    """A guest's question through the chat; the response's body."""
    body: dict[str, Any] = {"message": message}
    if conversation is not None:
        body["conversation_id"] = conversation
    response = await http.post("/api/guest/chat", json=body, headers=auth)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer
