"""Guest login: success, and every failure looking the same."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx
import jwt

from posada.runtime import Runtime
from tests.support.helpers import JWT_SECRET, StayFinder

FAILURE = "no current reservation matches that check-in date and phone number"


async def _login(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await client.post("/api/guest/login", json=body)


async def test_login_returns_a_token_naming_tenant_reservation_and_unit(
    client: httpx.AsyncClient, current_stay: StayFinder
) -> None:
    stay = await current_stay("coral")
    response = await _login(
        client,
        tenant=stay.tenant,
        check_in=stay.check_in.isoformat(),
        phone_last4=stay.phone_last4,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    claims = jwt.decode(body["token"], JWT_SECRET, algorithms=["HS256"], audience="posada-guest")
    assert claims["tenant"] == "casa-azul"
    assert int(claims["sub"]) == stay.reservation_id
    assert claims["unit_id"] == stay.unit_id
    assert body["unit"] == "Coral"
    assert datetime.fromisoformat(body["expires_at"]) > datetime.now(UTC)


async def test_every_wrong_combination_gets_the_same_401(
    client: httpx.AsyncClient, current_stay: StayFinder, runtime: Runtime
) -> None:
    stay = await current_stay("coral")
    wrong_phone = f"{(int(stay.phone_last4) + 1) % 10000:04d}"
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT status, check_in, phone_last4 FROM reservations r
               JOIN tenants t ON t.id = r.tenant_id WHERE t.slug = 'casa-azul'
               AND (status = 'cancelled' OR check_out < current_date
                    OR check_in > current_date + 30)""",
        )
        not_current = await cur.fetchall()
    statuses = {row[0] for row in not_current}
    assert "cancelled" in statuses, not_current
    assert "checked_out" in statuses, not_current
    attempts = [
        {"check_in": stay.check_in.isoformat(), "phone_last4": wrong_phone},
        {
            "check_in": (stay.check_in - timedelta(days=1)).isoformat(),
            "phone_last4": stay.phone_last4,
        },
        *({"check_in": row[1].isoformat(), "phone_last4": row[2]} for row in not_current),
    ]
    for attempt in attempts:
        response = await _login(client, tenant="casa-azul", **attempt)
        assert response.status_code == 401, attempt
        assert response.json() == {"detail": FAILURE}


async def test_login_window_opens_days_before_check_in(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    days = runtime.settings.login_days_before
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT r.check_in, r.phone_last4 FROM reservations r
               JOIN tenants t ON t.id = r.tenant_id WHERE t.slug = 'casa-azul'
               AND r.status = 'confirmed' AND r.check_in > current_date ORDER BY r.check_in""",
        )
        future = await cur.fetchall()
    soon = [r for r in future if r[0] <= date.today() + timedelta(days=days)]
    later = [r for r in future if r[0] > date.today() + timedelta(days=days)]
    assert soon, "the demo has a reservation starting within the login window"
    assert later, "the demo has a reservation starting after the login window"
    ok = await _login(
        client, tenant="casa-azul", check_in=soon[0][0].isoformat(), phone_last4=soon[0][1]
    )
    assert ok.status_code == 200
    early = await _login(
        client, tenant="casa-azul", check_in=later[0][0].isoformat(), phone_last4=later[0][1]
    )
    assert early.status_code == 401


async def test_unknown_hotel_is_404(client: httpx.AsyncClient) -> None:
    response = await _login(
        client, tenant="no-such-hotel", check_in="2026-01-01", phone_last4="1234"
    )
    assert response.status_code == 404


async def test_malformed_login_names_the_field(client: httpx.AsyncClient) -> None:
    response = await _login(client, tenant="casa-azul", check_in="yesterday", phone_last4="12a4")
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"check_in", "phone_last4"}
    missing = await _login(client, tenant="casa-azul")
    assert {e["field"] for e in missing.json()["errors"]} == {"check_in", "phone_last4"}
    broken = await client.post(
        "/api/guest/login", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422
