"""Reads follow the stay; tokens are shortened to it and revocable."""

from __future__ import annotations

import asyncio
import os
import sys
from asyncio.subprocess import PIPE
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from posada.core.errors import NotAuthorized
from posada.guests.conversations import record_exchange
from posada.guests.tokens import GuestClaims, issue_token, verify_token
from posada.runtime import Runtime
from tests.support.abuse import Hotel, app_client, import_stays, login_body, make_hotel
from tests.support.helpers import CliResult

GONE = "this reservation is no longer valid; please log in again"


@pytest.fixture
async def hotel(runtime: Runtime) -> Hotel:
    """Two current guests: A in unit a, B in unit b."""
    return await make_hotel(runtime, [("A", "a", "1111", 0), ("B", "b", "2222", 0)])


async def _login(http: httpx.AsyncClient, hotel: Hotel, phone: str) -> dict[str, str]:
    response = await http.post("/api/guest/login", json=login_body(hotel, 0, phone))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def _conversation(http: httpx.AsyncClient, auth: dict[str, str]) -> int:
    response = await http.post("/api/guest/chat", json={"message": "door code?"}, headers=auth)
    assert response.status_code == 200, response.text
    return int(response.json()["conversation_id"])


async def _reads(http: httpx.AsyncClient, auth: dict[str, str], conversation: int) -> list[int]:
    listed = await http.get("/api/guest/conversations", headers=auth)
    one = await http.get(f"/api/guest/conversations/{conversation}", headers=auth)
    for response in (listed, one):
        if response.status_code == 401:
            assert response.json() == {"detail": GONE}
    return [listed.status_code, one.status_code]


@pytest.mark.parametrize(
    ("change", "row"),
    [
        ("cancelled", ("A", "a", "1111", 0)),
        ("moved", ("A", "b", "1111", 0)),
        ("over", ("A", "a", "1111", 6)),  # checked in 6 days ago, out 2 days ago
    ],
)
async def test_reads_are_refused_once_the_stay_is_cancelled_moved_or_over(
    runtime: Runtime, hotel: Hotel, change: str, row: tuple[str, str, str, int]
) -> None:
    async with app_client(runtime) as http:
        auth = await _login(http, hotel, "1111")
        other = await _login(http, hotel, "2222")
        mine, theirs = await _conversation(http, auth), await _conversation(http, other)
        assert await _reads(http, auth, mine) == [200, 200]
        assert (
            await http.get(f"/api/guest/conversations/{theirs}", headers=auth)
        ).status_code == 404
        status = "cancelled" if change == "cancelled" else "checked_in"
        await import_stays(runtime, hotel, [row], status=status)
        assert await _reads(http, auth, mine) == [401, 401]
        chat = await http.post("/api/guest/chat", json={"message": "hi"}, headers=auth)
        assert chat.status_code == 401
        # The other guest still reads their own, and still not this one's.
        assert await _reads(http, other, theirs) == [200, 200]
        assert (
            await http.get(f"/api/guest/conversations/{mine}", headers=other)
        ).status_code == 404


async def test_logout_revokes_every_token_of_the_stay_and_a_new_login_works_at_once(
    runtime: Runtime, hotel: Hotel
) -> None:
    async with app_client(runtime) as http:
        first, second = await _login(http, hotel, "1111"), await _login(http, hotel, "1111")
        other = await _login(http, hotel, "2222")
        mine = await _conversation(http, first)
        assert (await http.post("/api/guest/logout", headers=first)).status_code == 204
        for auth in (first, second):
            assert await _reads(http, auth, mine) == [401, 401]
            for path in ("/api/guest/chat", "/api/guest/chat/stream"):
                response = await http.post(path, json={"message": "hi"}, headers=auth)
                assert response.status_code == 401, path
            assert (await http.post("/api/guest/logout", headers=auth)).status_code == 401
        again = await _login(http, hotel, "1111")  # within the same second as the logout
        assert await _reads(http, again, mine) == [200, 200]
        assert await _reads(http, other, await _conversation(http, other)) == [200, 200]


async def test_the_exact_cache_path_checks_the_revocation_too(
    runtime: Runtime, hotel: Hotel
) -> None:
    async with app_client(runtime) as http:
        auth = await _login(http, hotel, "1111")
        claims = verify_token(auth["Authorization"][7:], secret=runtime.settings.signing_secret)
        assert (await http.post("/api/guest/logout", headers=auth)).status_code == 204
    async with runtime.pool.connection() as conn:
        with pytest.raises(NotAuthorized):
            await record_exchange(
                conn,
                guest=claims,
                conversation_id=None,
                question="q",
                answer="a",
                layer="exact",
                sources=[],
                timings={},
            )


async def test_cli_revokes_a_stays_tokens(runtime: Runtime, hotel: Hotel) -> None:
    async with app_client(runtime) as http:
        auth = await _login(http, hotel, "1111")
        mine = await _conversation(http, auth)
        env = {
            **os.environ,
            "POSADA_DATABASE_URL": runtime.database_url,
            "POSADA_DATA_DIR": str(runtime.settings.data_dir),
        }
        args = ("reservations", "revoke", "--tenant", hotel.tenant.slug, "--ref")
        done = await _posada(env, *args, "A")
        assert done.returncode == 0, done.stderr
        assert await _reads(http, auth, mine) == [401, 401]
        missing = await _posada(env, *args, "Z")
        assert missing.returncode == 1, missing.stderr
        assert "has no reservation" in missing.stderr, missing.stderr


async def _posada(env: dict[str, str], *args: str) -> CliResult:
    """`posada ARGS` as a real process (it must also end: at most two minutes)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "posada", *args, env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return CliResult(process.returncode, out.decode(), err.decode())


def test_a_token_is_not_valid_before_the_login_window() -> None:
    claims = GuestClaims(1, "x", 2, 3, issued_at=datetime.now(UTC).timestamp() + 3600)
    token = issue_token(
        claims,
        secret="s" * 40,
        expires_at=datetime.now(UTC) + timedelta(days=3),
        not_before=datetime.now(UTC) + timedelta(days=1),
    )
    with pytest.raises(NotAuthorized):
        verify_token(token, secret="s" * 40)
