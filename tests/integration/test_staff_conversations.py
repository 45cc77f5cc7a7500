"""The staff's conversations: keyset pages (boundaries, a conversation active meanwhile),
what needs attention, the filters, one conversation read page by page, the guest's thumbs,
and nothing of another hotel or another guest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from psycopg.types.json import Jsonb

from posada.runtime import Runtime
from tests.support.abuse import Hotel, app_client, make_hotel
from tests.support.staff_login import ask, guest_login, staff_login

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SOURCE = [{"title": "FAQ", "heading": "Pool", "source": "faq.md", "scope": "hotel"}]


async def _reservation(runtime: Runtime, hotel: Hotel, ref: str) -> int:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id FROM reservations WHERE tenant_id = %s AND external_ref = %s",
            (hotel.tenant.id, ref),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _conversation(
    runtime: Runtime,
    hotel: Hotel,
    ref: str,
    updated_at: datetime,
    messages: list[dict[str, Any]],
    handoff: str | None = None,
) -> int:
    """A conversation of stay `ref` last active at `updated_at`, with `messages` (role,
    content and any other columns) in order."""
    reservation = await _reservation(runtime, hotel, ref)
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """INSERT INTO conversations (tenant_id, reservation_id, created_at, updated_at,
                                          handoff)
               VALUES (%s, %s, %s, %s, %s) RETURNING id""",
            (hotel.tenant.id, reservation, updated_at - timedelta(hours=1), updated_at, handoff),
        )
        row = await cur.fetchone()
        assert row is not None
        for message in messages:
            columns = {"conversation_id": row[0], "tenant_id": hotel.tenant.id, **message}
            if "sources" in columns:
                columns["sources"] = Jsonb(columns["sources"])
            names = ", ".join(columns)
            marks = ", ".join(["%s"] * len(columns))
            await conn.execute(
                f"INSERT INTO messages ({names}) VALUES ({marks})",  # noqa: S608 (test names)
                tuple(columns.values()),
            )
    return int(row[0])


def _q(text: str) -> dict[str, Any]:
    return {"role": "guest", "content": text}


def _a(text: str, *, sources: list[Any] | None = None, **more: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": text, "layer": "extractive",
            "sources": SOURCE if sources is None else sources, **more}  # fmt: skip


async def _ids(http: httpx.AsyncClient, **query: str) -> list[int]:
    response = await http.get("/api/staff/conversations", params={"limit": "100", **query})
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["conversations"]]


async def _pages(http: httpx.AsyncClient, limit: int) -> list[list[int]]:
    pages: list[list[int]] = []
    before: str | None = None
    while True:
        params = {"limit": str(limit), **({"before": before} if before else {})}
        response = await http.get("/api/staff/conversations", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([c["id"] for c in body["conversations"]])
        before = body["next_before"]
        if before is None:
            return pages


async def test_pages_cover_every_conversation_once_most_recent_first(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "1001", 1), ("S2", "b", "1002", 1)])
    # Seven conversations; three share one activity time (their ids break the tie).
    tied = T0 + timedelta(minutes=5)
    times = [T0, tied, tied, tied, T0 + timedelta(hours=2), T0 + timedelta(microseconds=1),
             T0 - timedelta(days=3)]  # fmt: skip
    made = [
        await _conversation(runtime, hotel, "S1" if n % 2 else "S2", at, [_q(f"q{n}"), _a("a")])
        for n, at in enumerate(times)
    ]
    expected = [i for _, i in sorted(zip(times, made, strict=True), reverse=True)]
    async with app_client(runtime) as http:
        await staff_login(runtime, hotel, http, "reception")
        for limit in (1, 2, 3, 6, 7, 100):
            pages = await _pages(http, limit)
            assert [i for page in pages for i in page] == expected, limit
            assert all(len(page) == limit for page in pages[:-1])
        assert len(await _pages(http, 7)) == 1  # exactly one full page: no empty one after it


async def test_a_conversation_active_meanwhile_moves_up_and_nothing_repeats(
    runtime: Runtime,
) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "1101", 1)])
    made = [
        await _conversation(runtime, hotel, "S1", T0 + timedelta(minutes=n), [_q(f"q{n}")])
        for n in range(6)
    ]
    newest_first = made[::-1]
    async with app_client(runtime) as http:
        await staff_login(runtime, hotel, http, "reception")
        guest = await guest_login(http, hotel, 1, "1101")
        first = (await http.get("/api/staff/conversations", params={"limit": 2})).json()
        assert [c["id"] for c in first["conversations"]] == newest_first[:2]
        # The guest writes in a conversation the next pages would show (it becomes the
        # hotel's most recent), and starts a new one.
        moved = newest_first[3]
        await ask(http, guest, "hola", moved)
        started = (await ask(http, guest, "otra pregunta"))["conversation_id"]
        rest: list[int] = []
        before = first["next_before"]
        while before:
            page = await http.get("/api/staff/conversations", params={"limit": 2, "before": before})
            rest += [c["id"] for c in page.json()["conversations"]]
            before = page.json()["next_before"]
        assert rest == [i for i in newest_first[2:] if i != moved]
        fresh = await _ids(http)
        assert fresh[:2] == [started, moved]
        assert sorted(fresh) == sorted([*made, started])


async def test_items_say_what_needs_attention_and_filters_narrow(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "1201", 1), ("S2", "b", "1202", 1)])
    long_question = "¿" + "muy " * 40 + "larga?"
    at = [T0 + timedelta(minutes=n) for n in range(6)]
    answered = await _conversation(
        runtime, hotel, "S1", at[0], [_q(long_question), _a("x" * 300, layer="faq")]
    )
    declined = await _conversation(
        runtime, hotel, "S1", at[1], [_q("helipad?"), _a("No", sources=[])]
    )
    unhelpful = await _conversation(
        runtime, hotel, "S2", at[2], [_q("pool?"), _a("9 to 5", feedback=-1)]
    )
    notice = {"role": "notice", "content": "A person will answer you here.", "layer": "handoff"}
    waiting = await _conversation(
        runtime, hotel, "S2", at[3], [_q("a person please"), notice], "waiting"
    )
    better_later = await _conversation(
        runtime, hotel, "S1", at[4],
        [_q("gym?"), _a("No", sources=[]), _q("gimnasio?"), _a("Floor 2", feedback=1)],
    )  # fmt: skip
    async with app_client(runtime) as http:
        await staff_login(runtime, hotel, http, "reception")
        body = (await http.get("/api/staff/conversations")).json()
        items = {c["id"]: c for c in body["conversations"]}
        first = items[answered]
        assert first["title"] == long_question[:80]
        assert first["last_message"]["content"] == "x" * 200
        assert first["last_message"]["role"] == "assistant"
        assert first["last_message"]["layer"] == "faq"
        assert first["messages"] == 2
        assert first["unit"] == "a"
        assert first["guest_name"] == "Guest S1"
        assert first["reservation_id"] == await _reservation(runtime, hotel, "S1")
        assert items[waiting]["handoff"] == "waiting"
        assert items[better_later]["messages"] == 4
        needing = {i for i, c in items.items() if c["needs_attention"]}
        assert needing == {declined, unhelpful, waiting}
        assert set(await _ids(http, attention="true")) == {declined, unhelpful, waiting}
        assert set(await _ids(http, attention="false")) == {answered, better_later}
        assert await _ids(http, layer="faq") == [answered]
        assert await _ids(http, layer="handoff") == [waiting]
        assert set(await _ids(http, unit="b")) == {unhelpful, waiting}
        assert await _ids(http, unit="b", attention="true", layer="extractive") == [unhelpful]
        assert await _ids(http, unit="nowhere") == []


async def test_one_conversation_reads_newest_page_first_oldest_first_within(
    runtime: Runtime,
) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "1301", 1)])
    async with app_client(runtime) as http:
        await staff_login(runtime, hotel, http, "reception")
        async with runtime.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT id FROM staff WHERE tenant_id = %s", (hotel.tenant.id,)
            )
            member = await cur.fetchone()
        assert member is not None
        messages = [_q("m1"), _a("m2", feedback=-1, model="gpt-x"), _q("m3"),
                    {"role": "staff", "content": "m4", "staff_id": member[0]},
                    _q("m5"), _a("m6", sources=[], incomplete=True), _q("m7")]  # fmt: skip
        conversation = await _conversation(runtime, hotel, "S1", T0, messages)
        seen: list[str] = []
        before: int | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 3, **({"before": before} if before else {})}
            response = await http.get(f"/api/staff/conversations/{conversation}", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            page = [m["content"] for m in body["messages"]]
            seen = page + seen
            assert [m["id"] for m in body["messages"]] == sorted(m["id"] for m in body["messages"])
            pages += 1
            before = body["next_before"]
            if before is None:
                break
            assert before == body["messages"][0]["id"]
        assert seen == [f"m{n}" for n in range(1, 8)]
        assert pages == 3
        whole = (await http.get(f"/api/staff/conversations/{conversation}")).json()
        assert whole["unit"] == "a"
        assert whole["guest_name"] == "Guest S1"
        assert whole["handoff"] is None
        assert whole["next_before"] is None
        by = {m["content"]: m for m in whole["messages"]}
        assert by["m2"]["feedback"] == -1
        assert by["m2"]["model"] == "gpt-x"
        assert by["m2"]["sources"] == SOURCE
        assert by["m4"]["role"] == "staff"
        assert by["m4"]["staff_email"] == f"reception@{hotel.tenant.slug}.example"
        assert by["m6"]["incomplete"] is True
        assert by["m6"]["sources"] == []
        assert by["m1"]["staff_email"] is None
        assert by["m1"]["feedback"] is None


async def test_another_hotel_sees_nothing_and_roles_are_checked(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "1401", 1)])
    other = await make_hotel(runtime, [("S1", "a", "1401", 1)])
    mine = await _conversation(runtime, hotel, "S1", T0, [_q("secret plans"), _a("ok")])
    theirs = await _conversation(runtime, other, "S1", T0, [_q("their question"), _a("ok")])
    async with app_client(runtime) as http:
        assert (await http.get("/api/staff/conversations")).status_code == 401
        assert (await http.get(f"/api/staff/conversations/{mine}")).status_code == 401
        for role in ("reception", "manager", "owner"):
            await staff_login(runtime, other, http, role)
            assert await _ids(http) == [theirs]
            assert await _ids(http, unit="a", attention="false") == [theirs]
            response = await http.get(f"/api/staff/conversations/{mine}")
            assert response.status_code == 404, role
            assert "secret" not in response.text
        await staff_login(runtime, hotel, http, "reception")
        assert await _ids(http) == [mine]
        reply = await http.get(f"/api/staff/conversations/{theirs}")
        assert reply.status_code == 404


async def test_bad_queries_are_422(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "1501", 1)])
    conversation = await _conversation(runtime, hotel, "S1", T0, [_q("q")])
    async with app_client(runtime) as http:
        await staff_login(runtime, hotel, http, "reception")
        for query in (
            {"before": "yesterday"},
            {"before": "12.x"},
            {"before": "99999999999999999999999.1"},
            {"limit": "0"},
            {"limit": "101"},
            {"layer": "magic"},
            {"unit": "Not A Slug"},
            {"attention": "maybe"},
        ):
            response = await http.get("/api/staff/conversations", params=query)
            assert response.status_code == 422, (query, response.text)
        for path, query in (
            ("0", {}),
            ("x", {}),
            (str(conversation), {"before": "0"}),
            (str(conversation), {"limit": "201"}),
        ):
            response = await http.get(f"/api/staff/conversations/{path}", params=query)
            assert response.status_code == 422, (path, query)


async def _answer_ids(runtime: Runtime, conversation: int) -> dict[str, int]:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT role, id FROM messages WHERE conversation_id = %s ORDER BY id",
            (conversation,),
        )
        return {str(role): int(i) for role, i in await cur.fetchall()}


async def _feedback(runtime: Runtime, message: int) -> int | None:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute("SELECT feedback FROM messages WHERE id = %s", (message,))
        row = await cur.fetchone()
    assert row is not None
    return None if row[0] is None else int(row[0])


async def test_the_guest_marks_only_their_own_answers(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "1601", 1), ("S2", "b", "1602", 1)])
    other = await make_hotel(runtime, [("S1", "a", "1601", 1)])
    async with app_client(runtime) as http:
        mine = await guest_login(http, hotel, 1, "1601")
        neighbour = await guest_login(http, hotel, 1, "1602")
        stranger = await guest_login(http, other, 1, "1601")
        conversation = (await ask(http, mine, "Is there a helipad for my helicopter?"))[
            "conversation_id"
        ]
        ids = await _answer_ids(runtime, conversation)
        answer, question = ids["assistant"], ids["guest"]

        async def mark(auth: dict[str, str], message: int, body: Any) -> int:
            path = f"/api/guest/messages/{message}/feedback"
            return (await http.post(path, json=body, headers=auth)).status_code

        assert await mark(neighbour, answer, {"helpful": False}) == 404
        assert await mark(stranger, answer, {"helpful": False}) == 404
        assert await mark(mine, question, {"helpful": False}) == 404  # not an answer
        assert await mark(mine, 2**62, {"helpful": False}) == 404
        for bad in ({"helpful": "maybe"}, {"helpful": 1}, {}, {"helpful": None}):
            assert await mark(mine, answer, bad) == 422, bad
        assert (await http.post("/api/guest/messages/0/feedback", json={"helpful": True},
                                headers=mine)).status_code == 422  # fmt: skip
        assert await mark({}, answer, {"helpful": False}) == 401
        assert await _feedback(runtime, answer) is None, "nothing changed"
        assert await mark(mine, answer, {"helpful": False}) == 204
        assert await _feedback(runtime, answer) == -1
        assert await mark(mine, answer, {"helpful": True}) == 204
        assert await _feedback(runtime, answer) == 1
        async with runtime.pool.connection() as conn:
            await conn.execute(
                "UPDATE reservations SET status = 'cancelled' WHERE tenant_id = %s"
                " AND external_ref = 'S1'",
                (hotel.tenant.id,),
            )
        assert await mark(mine, answer, {"helpful": False}) == 401
        assert await _feedback(runtime, answer) == 1
