"""End to end over real HTTP: `posada serve` (uvicorn) on the session's database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from posada.runtime import Runtime
from tests.conftest import StayFinder, free_port


@pytest.fixture(scope="module")
def server(runtime: Runtime) -> Iterator[str]:
    """A real `posada serve` process with two workers; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "POSADA_DATABASE_URL": runtime.database_url,
        "POSADA_JWT_SECRET": "server-test-secret-0123456789-0123456789",
        "POSADA_DATA_DIR": str(runtime.settings.data_dir),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "posada", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"server exited: {process.stdout.read() if process.stdout else ''}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("server never became ready")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)


async def test_login_and_chat_over_real_http(server: str, current_stay: StayFinder) -> None:
    stay = await current_stay("manglar")
    async with httpx.AsyncClient(base_url=server, timeout=30) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        login = await http.post(
            "/api/guest/login",
            json={
                "tenant": stay.tenant,
                "check_in": stay.check_in.isoformat(),
                "phone_last4": stay.phone_last4,
            },
        )
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['token']}"}
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
