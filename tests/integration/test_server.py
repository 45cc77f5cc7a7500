"""End to end over real HTTP: `posada serve` (uvicorn) on the session's database."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from posada.runtime import Runtime
from tests.support.helpers import StayFinder, log_in, serve_posada


@pytest.fixture(scope="module")
def server(runtime: Runtime) -> Iterator[str]:
    """A real `posada serve` process with two workers; yields its base URL."""
    yield from serve_posada(runtime, "--workers", "2")


async def test_login_and_chat_over_real_http(server: str, current_stay: StayFinder) -> None:
    stay = await current_stay("manglar")
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        auth = await log_in(http, stay)
        # Both workers must answer; several requests reach both.
        for _ in range(4):
            chat = await http.post(
                "/api/guest/chat",
                json={"message": "¿Cuál es el código de la puerta?"},
                headers=auth,
            )
            assert chat.status_code == 200, chat.text
            assert "9370" in chat.json()["answer"]
        bad = await http.post(
            "/api/guest/chat", content=b"{", headers={**auth, "Content-Type": "application/json"}
        )
        assert bad.status_code == 422
        forged = await http.post(
            "/api/guest/chat", json={"message": "hola"}, headers={"Authorization": "Bearer x.y.z"}
        )
        assert forged.status_code == 401
