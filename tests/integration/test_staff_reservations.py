"""The front desk's reservations: keyset pages (boundaries, rows inserted meanwhile),
filters, cancelling, and nothing of another hotel."""

from __future__ import annotations

from datetime import timedelta

import httpx

from posada.runtime import Runtime
from posada.staff.accounts import add_member
from tests.support.abuse import HEADER, Hotel, app_client, import_stays, login_body, make_hotel

PASSWORD = "correct horse battery"


async def _desk(runtime: Runtime, hotel: Hotel, http: httpx.AsyncClient) -> dict[str, str]:
    """Log a reception member of `hotel` in on `http`; the CSRF header for changes."""
    email = f"desk@{hotel.tenant.slug}.example"
    async with runtime.pool.connection() as conn:
        await add_member(
            conn, tenant_id=hotel.tenant.id, email=email, role="reception", password=PASSWORD,
            min_length=10,
        )  # fmt: skip
    body = {"tenant": hotel.tenant.slug, "email": email, "password": PASSWORD}
    response = await http.post("/api/staff/login", json=body)
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


async def _all_pages(http: httpx.AsyncClient, limit: int, **query: str) -> list[list[str]]:
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        params = {**query, "limit": str(limit), **({"after": after} if after else {})}
        response = await http.get("/api/staff/reservations", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([r["external_ref"] for r in body["reservations"]])
        after = body["next_after"]
        if after is None:
            return pages


async def test_pages_cover_every_stay_once_in_check_in_order(runtime: Runtime) -> None:
    # 21 stays, three on each of seven check-in days (ids break the ties).
    stays = [(f"R{n:02d}", "ab"[n % 2], f"{1000 + n}", n // 3) for n in range(21)]
    hotel = await make_hotel(runtime, stays)
    async with app_client(runtime) as http:
        await _desk(runtime, hotel, http)
        for limit in (1, 5, 7, 21, 200):
            pages = await _all_pages(http, limit)
            seen = [ref for page in pages for ref in page]
            assert sorted(seen) == sorted(ref for ref, *_ in stays), limit
            assert len(seen) == len(set(seen))
            assert all(len(page) == limit for page in pages[:-1])
        # Exactly one full page: no empty page after it.
        assert len(await _all_pages(http, 21)) == 1
        one = (await http.get("/api/staff/reservations", params={"limit": 200})).json()
        days = [r["check_in"] for r in one["reservations"]]
        assert days == sorted(days)


async def test_rows_inserted_between_pages_neither_repeat_nor_vanish(runtime: Runtime) -> None:
    stays = [(f"R{n:02d}", "a", f"{2000 + n}", n) for n in range(10)]  # one a day, 0-9 ago
    hotel = await make_hotel(runtime, stays)
    async with app_client(runtime) as http:
        await _desk(runtime, hotel, http)
        first = (await http.get("/api/staff/reservations", params={"limit": 4})).json()
        shown = [r["external_ref"] for r in first["reservations"]]
        assert shown == ["R09", "R08", "R07", "R06"]  # oldest check-in first
        # One stay before the cursor (it belongs to a page already read), one after it.
        await import_stays(runtime, hotel, [("EARLY", "b", "3001", 20), ("LATE", "b", "3002", -5)])
        after = first["next_after"]
        rest: list[str] = []
        while after:
            page = (
                await http.get("/api/staff/reservations", params={"limit": 4, "after": after})
            ).json()
            rest += [r["external_ref"] for r in page["reservations"]]
            after = page["next_after"]
    assert rest == ["R05", "R04", "R03", "R02", "R01", "R00", "LATE"]
    assert not set(shown) & set(rest)


async def test_filters_by_dates_unit_status_and_name_without_accents(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [])
    today = hotel.today

    def day(offset: int) -> str:
        return (today + timedelta(days=offset)).isoformat()

    rows = [
        f"J1,a,José Núñez,1111,{day(0)},{day(3)},confirmed",
        f"J2,b,JOSEFINA Peña,2222,{day(10)},{day(12)},confirmed",
        f"M1,a,María Gómez,3333,{day(-5)},{day(-2)},checked_out",
        f"M2,b,Marc 100%_Test,4444,{day(0)},{day(1)},cancelled",
        # Sixty nights: the range filter's bound on check-in (the longest stay) must reach it.
        f"L1,a,Long Stay,5555,{day(-40)},{day(20)},confirmed",
    ]
    async with runtime.pool.connection() as conn:
        from posada.guests.service import import_reservations

        await import_reservations(conn, tenant=hotel.tenant, csv_text=HEADER + "\n".join(rows))
    async with app_client(runtime) as http:
        await _desk(runtime, hotel, http)

        async def refs(**query: str) -> list[str]:
            response = await http.get("/api/staff/reservations", params=query)
            assert response.status_code == 200, response.text
            return sorted(r["external_ref"] for r in response.json()["reservations"])

        assert await refs(name="jose") == ["J1", "J2"]
        assert await refs(name="NUNEZ") == ["J1"]
        assert await refs(name="pena") == ["J2"]
        assert await refs(name="100%_") == ["M2"]  # the wildcards are literal
        assert await refs(name="%") == ["M2"]
        assert await refs(unit="a") == ["J1", "L1", "M1"]
        assert await refs(status="cancelled") == ["M2"]
        # A stay matches a range when one of its nights is in it.
        d = today.isoformat
        assert await refs(stay_from=d(), stay_to=d()) == ["J1", "L1", "M2"]
        assert await refs(stay_from=(today - timedelta(days=3)).isoformat(), stay_to=d()) == [
            "J1", "L1", "M1", "M2",
        ]  # fmt: skip
        assert await refs(stay_from=(today + timedelta(days=11)).isoformat()) == ["J2", "L1"]
        assert await refs(stay_from=(today + timedelta(days=20)).isoformat()) == []
        bad = await http.get("/api/staff/reservations", params={"after": "yesterday"})
        assert bad.status_code == 422
        backwards = {"stay_from": d(), "stay_to": (today - timedelta(days=1)).isoformat()}
        assert (await http.get("/api/staff/reservations", params=backwards)).status_code == 422
        assert (
            await http.get("/api/staff/reservations", params={"status": "gone"})
        ).status_code == 422


async def test_a_cancelled_stay_s_guest_is_out_at_once_and_other_hotels_are_untouched(
    runtime: Runtime,
) -> None:
    mine = await make_hotel(runtime, [("C1", "a", "5555", 0)])
    theirs = await make_hotel(runtime, [("T1", "a", "6666", 0)])
    async with app_client(runtime) as guest_http, app_client(runtime) as http:
        login = await guest_http.post("/api/guest/login", json=login_body(mine, 0, "5555"))
        assert login.status_code == 200
        bearer = {"Authorization": f"Bearer {login.json()['token']}"}
        assert (await guest_http.get("/api/guest/conversations", headers=bearer)).status_code == 200
        csrf = await _desk(runtime, mine, http)
        listed = (await http.get("/api/staff/reservations")).json()["reservations"]
        assert [r["external_ref"] for r in listed] == ["C1"], "only this hotel's"
        own_id = listed[0]["id"]
        async with runtime.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM reservations WHERE tenant_id = %s", (theirs.tenant.id,)
            )
            row = await cur.fetchone()
        assert row is not None
        other_id = int(row[0])
        no_csrf = await http.post(f"/api/staff/reservations/{own_id}/cancel")
        assert no_csrf.status_code == 403
        elsewhere = await http.post(f"/api/staff/reservations/{other_id}/cancel", headers=csrf)
        assert elsewhere.status_code == 404
        cancelled = await http.post(f"/api/staff/reservations/{own_id}/cancel", headers=csrf)
        assert cancelled.status_code == 204
        after = await guest_http.get("/api/guest/conversations", headers=bearer)
        assert after.status_code == 401
        status = (await http.get("/api/staff/reservations")).json()["reservations"][0]["status"]
        assert status == "cancelled"
    async with runtime.pool.connection() as conn:
        cur = await conn.execute("SELECT status FROM reservations WHERE id = %s", (other_id,))
        assert await cur.fetchone() == ("checked_in",)


async def test_the_list_needs_a_session(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/staff/reservations")).status_code == 401
    assert (await client.post("/api/staff/reservations/1/cancel")).status_code == 401


async def test_a_stay_is_added_changed_and_imported_with_the_import_s_checks(
    runtime: Runtime,
) -> None:
    hotel = await make_hotel(runtime, [("G1", "a", "7777", 0)])
    other = await make_hotel(runtime, [("O1", "a", "8888", 0)])
    day = hotel.day
    async with app_client(runtime) as guest_http, app_client(runtime) as http:
        login = await guest_http.post("/api/guest/login", json=login_body(hotel, 0, "7777"))
        bearer = {"Authorization": f"Bearer {login.json()['token']}"}
        csrf = await _desk(runtime, hotel, http)
        new = {
            "external_ref": "N1", "unit": "B", "guest_name": "Nuevo Huésped",
            "phone_last4": "1234", "check_in": day(-1).isoformat(),
            "check_out": day(-3).isoformat(),
        }  # fmt: skip
        added = await http.post("/api/staff/reservations", json=new, headers=csrf)
        assert added.status_code == 201, added.text
        again = await http.post("/api/staff/reservations", json=new, headers=csrf)
        assert again.status_code == 422
        assert "already a stay here" in again.text
        wrong = {**new, "external_ref": "N2", "unit": "z", "check_out": day(-1).isoformat()}
        refused = await http.post("/api/staff/reservations", json=wrong, headers=csrf)
        assert refused.status_code == 422
        assert "unknown unit 'z'" in refused.text
        assert "check_out must be after check_in" in refused.text

        stays = (await http.get("/api/staff/reservations")).json()["reservations"]
        by_ref = {r["external_ref"]: r for r in stays}
        assert set(by_ref) == {"G1", "N1"}
        assert (by_ref["N1"]["unit"], by_ref["N1"]["status"]) == ("b", "confirmed")
        g1 = by_ref["G1"]["id"]
        url = f"/api/staff/reservations/{g1}"
        bad = await http.patch(url, json={"check_out": day(0).isoformat()}, headers=csrf)
        assert bad.status_code == 422, "check-out on the check-in day"
        assert (await guest_http.get("/api/guest/conversations", headers=bearer)).status_code == 200
        renamed = await http.patch(url, json={"guest_name": "Ana Ruiz"}, headers=csrf)
        assert renamed.status_code == 204
        assert (await guest_http.get("/api/guest/conversations", headers=bearer)).status_code == 200
        moved = await http.patch(url, json={"unit": "b"}, headers=csrf)
        assert moved.status_code == 204
        out = await guest_http.get("/api/guest/conversations", headers=bearer)
        assert out.status_code == 401, "a stay moved to another unit logs its guest out"
        async with runtime.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM reservations WHERE tenant_id = %s", (other.tenant.id,)
            )
            row = await cur.fetchone()
        assert row is not None
        theirs = await http.patch(
            f"/api/staff/reservations/{row[0]}", json={"guest_name": "X"}, headers=csrf
        )
        assert theirs.status_code == 404

        csv = HEADER + (
            f"I1,a,Uno,1111,{day(0)},{day(-2)},confirmed\n"
            f"I2,nowhere,Dos,22,{day(0)},{day(-2)},confirmed\n"
        )
        broken = await http.post(
            "/api/staff/reservations/import",
            content=csv.encode(),
            headers={**csrf, "Content-Type": "text/csv"},
        )
        assert broken.status_code == 422
        assert "line 3: unknown unit 'nowhere'; phone_last4 must be exactly four digits" in (
            broken.text
        )
        good = csv.splitlines()[0:2]
        imported = await http.post(
            "/api/staff/reservations/import",
            content="\n".join(good).encode(),
            headers={**csrf, "Content-Type": "text/csv"},
        )
        assert imported.json() == {"inserted": 1, "updated": 0}
        refs = {
            r["external_ref"]
            for r in (await http.get("/api/staff/reservations")).json()["reservations"]
        }
        assert refs == {"G1", "N1", "I1"}, "the broken import wrote nothing"
    async with runtime.pool.connection() as conn:
        cur = await conn.execute("SELECT guest_name FROM reservations WHERE id = %s", (row[0],))
        assert await cur.fetchone() == ("Guest O1",)
