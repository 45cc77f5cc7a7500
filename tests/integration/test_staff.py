"""Staff accounts: argon2 passwords, a session cookie with its CSRF token, roles, the login
throttle, and nothing of another hotel reachable from one hotel's session."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from posada.core.groups import StaffSettings
from posada.runtime import Runtime
from posada.staff.accounts import Role, add_member, list_members
from posada.tenants.service import Tenant, ensure_tenant
from tests.support.abuse import app_client
from tests.support.helpers import run_cli

PASSWORD = "correct horse battery"


async def _hotel(runtime: Runtime) -> Tenant:
    async with runtime.pool.connection() as conn:
        return await ensure_tenant(conn, slug=f"s-{uuid.uuid4().hex[:10]}", name="Hotel Staff")


async def _member(runtime: Runtime, hotel: Tenant, role: Role) -> str:
    email = f"{role}-{uuid.uuid4().hex[:6]}@Example.org"
    async with runtime.pool.connection() as conn:
        await add_member(
            conn, tenant_id=hotel.id, email=email, role=role, password=PASSWORD, min_length=10
        )
    return email.lower()


async def _log_in(http: httpx.AsyncClient, hotel: Tenant, email: str) -> dict[str, str]:
    """Log in (the client keeps the cookie); the CSRF header its changes must carry."""
    response = await http.post(
        "/api/staff/login", json={"tenant": hotel.slug, "email": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


async def test_a_login_sets_a_strict_http_only_cookie_and_says_who(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    hotel = await _hotel(runtime)
    email = await _member(runtime, hotel, "manager")
    response = await client.post(
        "/api/staff/login",
        json={"tenant": hotel.slug, "email": email.upper(), "password": PASSWORD},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["email"], body["role"], body["tenant"]) == (email, "manager", hotel.slug)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("posada_staff=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie  # dev (the session's settings) serves plain HTTP
    me = await client.get("/api/staff/me")
    assert me.status_code == 200
    assert me.json()["csrf_token"] == body["csrf_token"]
    assert PASSWORD not in response.text


async def test_a_wrong_password_email_or_hotel_says_nothing_of_which(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    hotel = await _hotel(runtime)
    email = await _member(runtime, hotel, "reception")
    attempts = [
        {"tenant": hotel.slug, "email": email, "password": "wrong password!"},
        {"tenant": hotel.slug, "email": "nobody@example.org", "password": PASSWORD},
        {"tenant": "no-such-hotel", "email": email, "password": PASSWORD},
        {"tenant": hotel.slug, "email": "not an address", "password": PASSWORD},
    ]
    for attempt in attempts:
        response = await client.post("/api/staff/login", json=attempt)
        assert response.status_code == 401, attempt
        assert response.json() == {"detail": "wrong e-mail or password"}
        assert "set-cookie" not in response.headers
    assert (await client.get("/api/staff/me")).status_code == 401


async def test_a_change_needs_the_csrf_token_and_logout_ends_the_session(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    hotel = await _hotel(runtime)
    csrf = await _log_in(client, hotel, await _member(runtime, hotel, "reception"))
    assert (await client.post("/api/staff/logout")).status_code == 403
    wrong = await client.post("/api/staff/logout", headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    assert wrong.json()["detail"] == "missing or wrong X-CSRF-Token"
    assert (await client.get("/api/staff/me")).status_code == 200, "still logged in"
    out = await client.post("/api/staff/logout", headers=csrf)
    assert out.status_code == 204
    assert 'posada_staff=""' in out.headers["set-cookie"]
    client.cookies.clear()
    assert (await client.get("/api/staff/me")).status_code == 401


async def test_the_old_cookie_is_refused_after_logout(runtime: Runtime) -> None:
    hotel = await _hotel(runtime)
    email = await _member(runtime, hotel, "reception")
    async with app_client(runtime) as http:
        csrf = await _log_in(http, hotel, email)
        kept = http.cookies["posada_staff"]
        assert (await http.post("/api/staff/logout", headers=csrf)).status_code == 204
        http.cookies.set("posada_staff", kept)  # as a copied cookie would be sent again
        assert (await http.get("/api/staff/me")).status_code == 401


@pytest.mark.parametrize(
    ("role", "allowed"), [("reception", False), ("manager", False), ("owner", True)]
)
async def test_only_an_owner_reads_the_staff_accounts(
    runtime: Runtime, role: Role, allowed: bool
) -> None:
    hotel = await _hotel(runtime)
    email = await _member(runtime, hotel, role)
    async with app_client(runtime) as http:
        csrf = await _log_in(http, hotel, email)
        listed = await http.get("/api/staff/accounts")
        added = await http.post(
            "/api/staff/accounts",
            json={"email": "new@example.org", "role": "reception", "password": PASSWORD},
            headers=csrf,
        )
    assert listed.status_code == (200 if allowed else 403)
    assert added.status_code == (201 if allowed else 403)
    if not allowed:
        assert listed.json()["detail"] == "this needs the owner role"


async def test_an_owner_manages_their_own_hotel_s_staff_and_no_other(runtime: Runtime) -> None:
    mine, theirs = await _hotel(runtime), await _hotel(runtime)
    owner = await _member(runtime, mine, "owner")
    colleague = await _member(runtime, mine, "reception")
    stranger = await _member(runtime, theirs, "owner")
    async with app_client(runtime) as http:
        csrf = await _log_in(http, mine, owner)
        listed = (await http.get("/api/staff/accounts")).json()
        assert {m["email"] for m in listed} == {owner, colleague}
        new = {"email": "Desk@Example.org", "role": "reception", "password": PASSWORD}
        created = await http.post("/api/staff/accounts", json=new, headers=csrf)
        assert created.json() == {"email": "desk@example.org", "role": "reception"}
        again = await http.post("/api/staff/accounts", json=new, headers=csrf)
        assert again.status_code == 422
        short = {**new, "email": "other@example.org", "password": "short"}
        assert (await http.post("/api/staff/accounts", json=short, headers=csrf)).status_code == 422
        # Another hotel's member is not found from here, and stays.
        gone = await http.delete(f"/api/staff/accounts/{stranger}", headers=csrf)
        assert gone.status_code == 404
        assert (await http.delete(f"/api/staff/accounts/{owner}", headers=csrf)).status_code == 422
        removed = await http.delete(f"/api/staff/accounts/{colleague}", headers=csrf)
        assert removed.status_code == 204
    async with runtime.pool.connection() as conn:
        assert [m.email for m in await list_members(conn, tenant_id=theirs.id)] == [stranger]
        left = {m.email for m in await list_members(conn, tenant_id=mine.id)}
    assert left == {owner, "desk@example.org"}


async def test_a_removed_member_s_session_ends_at_once(runtime: Runtime) -> None:
    hotel = await _hotel(runtime)
    owner = await _member(runtime, hotel, "owner")
    desk = await _member(runtime, hotel, "reception")
    async with app_client(runtime) as owner_http, app_client(runtime) as desk_http:
        csrf = await _log_in(owner_http, hotel, owner)
        await _log_in(desk_http, hotel, desk)
        assert (await desk_http.get("/api/staff/me")).status_code == 200
        removed = await owner_http.delete(f"/api/staff/accounts/{desk}", headers=csrf)
        assert removed.status_code == 204
        assert (await desk_http.get("/api/staff/me")).status_code == 401


async def test_password_guessing_is_throttled_per_account(runtime: Runtime) -> None:
    hotel = await _hotel(runtime)
    email = await _member(runtime, hotel, "owner")
    staff = StaffSettings(login_burst=3, login_per_hour=1, login_free=1000)
    async with app_client(runtime, staff=staff) as http:
        wrong = {"tenant": hotel.slug, "email": email, "password": "wrong password!"}
        codes = [(await http.post("/api/staff/login", json=wrong)).status_code for _ in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        right = await http.post("/api/staff/login", json={**wrong, "password": PASSWORD})
        assert right.status_code == 429, "the account is locked for everyone, for now"
        assert int(right.headers["Retry-After"]) > 0
        other = await _member(runtime, hotel, "reception")
        await _log_in(http, hotel, other)  # another account is not locked: it logs in


def test_the_staff_commands_add_list_and_remove(
    runtime: Runtime, tmp_path: Path, demo_tenant: Tenant
) -> None:
    env = {"POSADA_DATABASE_URL": runtime.database_url, "POSADA_DATA_DIR": str(tmp_path)}
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    email = f"cli-{uuid.uuid4().hex[:6]}@example.org"
    base = ("--tenant", demo_tenant.slug, "--email", email)
    added = run_cli(env, "staff", "add", *base, "--role", "manager", "--password-file", str(secret))
    assert added.returncode == 0, added.stderr
    listed = run_cli(env, "staff", "list", "--tenant", demo_tenant.slug)
    assert f"{email}\tmanager" in listed.stdout.splitlines()
    twice = run_cli(env, "staff", "add", *base, "--role", "manager", "--password-file", str(secret))
    assert twice.returncode == 1
    assert "already on" in twice.stderr + twice.stdout
    bad_role = run_cli(
        env, "staff", "add", *base, "--role", "admin", "--password-file", str(secret)
    )
    assert bad_role.returncode == 1
    removed = run_cli(env, "staff", "remove", "--tenant", demo_tenant.slug, "--email", email)
    assert removed.returncode == 0, removed.stderr
    assert email not in run_cli(env, "staff", "list", "--tenant", demo_tenant.slug).stdout
    missing = run_cli(env, "staff", "remove", "--tenant", demo_tenant.slug, "--email", email)
    assert missing.returncode == 1


async def test_an_owner_reads_the_request_window_of_their_own_hotel_only(
    runtime: Runtime,
) -> None:
    ours, theirs = await _hotel(runtime), await _hotel(runtime)
    owner, desk = await _member(runtime, ours, "owner"), await _member(runtime, ours, "reception")
    other = await _member(runtime, theirs, "owner")
    async with app_client(runtime, admin_token=SecretStr("t" * 32)) as http:
        await _log_in(http, theirs, other)
        assert (await http.get("/api/staff/me")).status_code == 200
        http.cookies.clear()
        await _log_in(http, ours, owner)
        assert (await http.get("/api/staff/me")).status_code == 200
        body = (await http.get("/api/performance/metrics", params={"format": "full"})).json()
        tenants = {r["tenant"] for r in body["recent"]}
        assert tenants == {ours.slug}, tenants
        assert "GET /api/staff/me" in {r["route"] for r in body["routes"]}
        # The operators' token still sees every hotel; Prometheus stays theirs.
        admin = {"Authorization": "Bearer " + "t" * 32}
        everyone = await http.get("/api/performance/metrics?format=full", headers=admin)
        assert {ours.slug, theirs.slug} <= {r["tenant"] for r in everyone.json()["recent"]}
        assert (await http.get("/metrics")).status_code == 401
        http.cookies.clear()
        await _log_in(http, ours, desk)
        assert (await http.get("/api/performance/metrics")).status_code == 403
