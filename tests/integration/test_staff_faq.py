"""FAQ entries from the staff page: "add to FAQ" answers the next guest who asks (and one
who words it another way), a unit's entry only that unit's guests, a change or a deletion
at once; a document's entries are listed but changed in their document; an ingest never
removes the staff's entries; another hotel's staff and reception reach none of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from posada.knowledge.ingest import ingest_folder
from posada.runtime import Runtime
from tests.support.abuse import Hotel, app_client, make_hotel
from tests.support.helpers import write_docs
from tests.support.staff_login import ask, guest_login, staff_login

HELIPAD = "Is there a helipad for my helicopter?"
REWORDED = "Is there a helipad for a helicopter?"
ROOF = "Yes: the helipad is on the roof of building B; book it at reception a day ahead."
BAR_FAQ = "# FAQ\n\n## ¿A qué hora abre el bar?\nEl bar abre a las 17:40.\n"


async def _version(runtime: Runtime, hotel: Hotel) -> int:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT knowledge_version FROM tenants WHERE id = %s", (hotel.tenant.id,)
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _stored(runtime: Runtime, hotel: Hotel) -> list[tuple[Any, ...]]:
    """The hotel's FAQ rows and their passages, as stored."""
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT f.id, f.question, f.answer, f.scope, c.heading, c.content, d.source
               FROM faq f JOIN documents d ON d.id = f.document_id
                    LEFT JOIN chunks c ON c.id = f.chunk_id
               WHERE f.tenant_id = %s ORDER BY f.id""",
            (hotel.tenant.id,),
        )
        return list(await cur.fetchall())


async def _ingest(runtime: Runtime, hotel: Hotel, root: Path, *, prune: bool = False) -> None:
    report = await ingest_folder(
        pool=runtime.pool,
        embedder=runtime.embedder,
        root=root,
        tenant=hotel.tenant,
        prune=prune,
        faq_embedder=runtime.query_embedder,
    )
    assert not report.failed, report.failed


async def test_add_to_faq_then_the_guest_is_answered_from_it(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "2001", 1), ("S2", "b", "2002", 1)])
    async with app_client(runtime) as http:
        guest = await guest_login(http, hotel, 1, "2001")
        declined = await ask(http, guest, HELIPAD)
        assert declined["answer"].startswith("I don't have that information")
        assert declined["sources"] == []

        csrf = await staff_login(runtime, hotel, http, "manager")
        report = (await http.get("/api/staff/reports/unanswered")).json()
        [group] = report["groups"]
        assert group["question"] == HELIPAD
        assert group["reasons"] == ["declined"]
        assert group["conversation_ids"] == [declined["conversation_id"]]

        before = await _version(runtime, hotel)
        body = {"question": group["question"], "answer": ROOF}
        added = await http.post("/api/staff/faq", json=body, headers=csrf)
        assert added.status_code == 201, added.text
        assert await _version(runtime, hotel) == before + 1

        for question in (HELIPAD, REWORDED):
            answer = await ask(http, guest, question, declined["conversation_id"])
            assert answer["layer"] == "faq", (question, answer)
            assert answer["answer"] == ROOF
            assert answer["sources"][0]["source"] == "staff:faq"
        # The other unit's guest too: an entry without a unit is the whole hotel's.
        neighbour = await guest_login(http, hotel, 1, "2002")
        assert (await ask(http, neighbour, HELIPAD))["answer"] == ROOF


async def test_a_units_entry_answers_only_that_units_guests(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "2101", 1), ("S2", "b", "2102", 1)])
    async with app_client(runtime) as http:
        csrf = await staff_login(runtime, hotel, http, "manager")
        body = {"question": "What is the code of the safe?", "answer": "4711", "unit": "a"}
        added = await http.post("/api/staff/faq", json=body, headers=csrf)
        assert added.status_code == 201, added.text
        [entry] = (await http.get("/api/staff/faq")).json()["entries"]
        assert entry == {
            "id": added.json()["id"],
            "question": body["question"],
            "answer": "4711",
            "scope": "unit",
            "unit": "a",
            "source": "staff:faq",
            "editable": True,
        }
        in_a = await guest_login(http, hotel, 1, "2101")
        in_b = await guest_login(http, hotel, 1, "2102")
        assert (await ask(http, in_a, body["question"]))["answer"] == "4711"
        assert "4711" not in (await ask(http, in_b, body["question"]))["answer"]


async def test_change_and_delete_a_staff_entry_and_not_a_documents(
    runtime: Runtime, tmp_path: Path
) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "2201", 1)])
    await _ingest(runtime, hotel, write_docs(tmp_path, {"faq.md": BAR_FAQ}))
    async with app_client(runtime) as http:
        csrf = await staff_login(runtime, hotel, http, "manager")
        guest = await guest_login(http, hotel, 1, "2201")
        added = await http.post(
            "/api/staff/faq", json={"question": HELIPAD, "answer": ROOF}, headers=csrf
        )
        staff_id = added.json()["id"]
        entries = (await http.get("/api/staff/faq")).json()["entries"]
        [document_entry] = [e for e in entries if not e["editable"]]
        assert document_entry["source"] == "faq.md"
        assert document_entry["question"] == "¿A qué hora abre el bar?"

        stored = await _stored(runtime, hotel)
        version = await _version(runtime, hotel)
        for request in (
            http.put(f"/api/staff/faq/{document_entry['id']}", json={"answer": "Nunca."},
                     headers=csrf),
            http.delete(f"/api/staff/faq/{document_entry['id']}", headers=csrf),
        ):  # fmt: skip
            refused = await request
            assert refused.status_code == 422, refused.text
            assert "faq.md" in refused.json()["detail"]
        assert await _stored(runtime, hotel) == stored
        assert await _version(runtime, hotel) == version

        changed = await http.put(
            f"/api/staff/faq/{staff_id}", json={"answer": "No, sorry: there is none."},
            headers=csrf,
        )  # fmt: skip
        assert changed.status_code == 204, changed.text
        assert await _version(runtime, hotel) == version + 1
        assert (await ask(http, guest, HELIPAD))["answer"] == "No, sorry: there is none."
        row = next(r for r in await _stored(runtime, hotel) if r[0] == staff_id)
        assert row[1:6] == (HELIPAD, "No, sorry: there is none.", "hotel", HELIPAD,
                            "No, sorry: there is none.")  # fmt: skip

        gone = await http.delete(f"/api/staff/faq/{staff_id}", headers=csrf)
        assert gone.status_code == 204
        assert await _version(runtime, hotel) == version + 2
        assert [r[0] for r in await _stored(runtime, hotel)] == [document_entry["id"]]
        assert (await ask(http, guest, HELIPAD))["sources"] == []
        again = await http.delete(f"/api/staff/faq/{staff_id}", headers=csrf)
        assert again.status_code == 404


async def test_an_ingest_keeps_the_staffs_entries(runtime: Runtime, tmp_path: Path) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "2301", 1)])
    folder = write_docs(tmp_path / "docs", {"faq.md": BAR_FAQ, "rules.md": "# Rules\n\nNo.\n"})
    await _ingest(runtime, hotel, folder)
    async with app_client(runtime) as http:
        csrf = await staff_login(runtime, hotel, http, "manager")
        response = await http.post(
            "/api/staff/faq", json={"question": HELIPAD, "answer": ROOF}, headers=csrf
        )
        assert response.status_code == 201
        # The folder again, one file changed and one gone, pruned: as `posada ingest --prune`.
        (folder / "rules.md").unlink()
        (folder / "faq.md").write_text(BAR_FAQ.replace("17:40", "18:00"), encoding="utf-8")
        await _ingest(runtime, hotel, folder, prune=True)
        stored = await _stored(runtime, hotel)
        assert [(r[1], r[6]) for r in stored] == [
            (HELIPAD, "staff:faq"),
            ("¿A qué hora abre el bar?", "faq.md"),
        ]
        guest = await guest_login(http, hotel, 1, "2301")
        assert (await ask(http, guest, HELIPAD))["answer"] == ROOF


async def test_reception_and_another_hotel_reach_none_of_it(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "2401", 1)])
    other = await make_hotel(runtime, [("S1", "a", "2401", 1)])
    async with app_client(runtime) as http:
        csrf = await staff_login(runtime, hotel, http, "owner")
        body = {"question": HELIPAD, "answer": ROOF}
        entry = (await http.post("/api/staff/faq", json=body, headers=csrf)).json()["id"]
        guest = await guest_login(http, hotel, 1, "2401")
        await ask(http, guest, "Is there a casino with roulette tables?")

        desk = await staff_login(runtime, hotel, http, "reception")
        for method, path, payload in (
            ("GET", "/api/staff/faq", None),
            ("POST", "/api/staff/faq", body),
            ("PUT", f"/api/staff/faq/{entry}", {"answer": "no"}),
            ("DELETE", f"/api/staff/faq/{entry}", None),
            ("GET", "/api/staff/reports/unanswered", None),
        ):
            response = await http.request(method, path, json=payload, headers=desk)
            assert response.status_code == 403, (method, path, response.text)

        theirs = await staff_login(runtime, other, http, "manager")
        assert (await http.get("/api/staff/faq")).json() == {"entries": [], "next_after": None}
        assert (await http.get("/api/staff/reports/unanswered")).json() == {"groups": []}
        changed = await http.put(f"/api/staff/faq/{entry}", json={"answer": "x"}, headers=theirs)
        assert changed.status_code == 404
        assert (await http.delete(f"/api/staff/faq/{entry}", headers=theirs)).status_code == 404
        # Without the CSRF token, a change is refused before anything is read.
        assert (await http.post("/api/staff/faq", json=body)).status_code == 403
        http.cookies.clear()
        assert (await http.get("/api/staff/faq")).status_code == 401
        assert (await http.get("/api/staff/reports/unanswered")).status_code == 401
    assert [r[1:3] for r in await _stored(runtime, hotel)] == [(HELIPAD, ROOF)]


async def test_bad_entries_are_422_and_change_nothing(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "2501", 1)])
    async with app_client(runtime) as http:
        csrf = await staff_login(runtime, hotel, http, "manager")
        entry = (
            await http.post(
                "/api/staff/faq", json={"question": HELIPAD, "answer": ROOF}, headers=csrf
            )
        ).json()["id"]
        stored, version = await _stored(runtime, hotel), await _version(runtime, hotel)
        for body in (
            {"question": "", "answer": "x"},
            {"question": "   ", "answer": "x"},
            {"question": "q?", "answer": " \n "},
            {"question": "q?"},
            {"answer": "x"},
            {"question": "q" * 501, "answer": "x"},
            {"question": "q?", "answer": "x", "unit": "nowhere"},
            {"question": "q?", "answer": "x", "unit": "Not A Slug"},
            {"question": 5, "answer": "x"},
        ):
            response = await http.post("/api/staff/faq", json=body, headers=csrf)
            assert response.status_code == 422, (body, response.text)
        changes: list[dict[str, str | None]] = [{}, {"question": None}, {"answer": "  "},
                                                 {"question": ""}]  # fmt: skip
        for change in changes:
            response = await http.put(f"/api/staff/faq/{entry}", json=change, headers=csrf)
            assert response.status_code == 422, (change, response.text)
        for query in ({"after": "x"}, {"after": "0"}, {"limit": "0"}, {"limit": "201"}):
            assert (await http.get("/api/staff/faq", params=query)).status_code == 422
        assert (
            await http.get("/api/staff/reports/unanswered", params={"days": "0"})
        ).status_code == 422
        assert (await http.delete("/api/staff/faq/0", headers=csrf)).status_code == 422
        assert await _stored(runtime, hotel) == stored
        assert await _version(runtime, hotel) == version


async def test_the_faq_list_pages_by_id(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [])
    async with app_client(runtime) as http:
        csrf = await staff_login(runtime, hotel, http, "manager")
        made = []
        for n in range(5):
            body = {"question": f"Question number {n}?", "answer": f"Answer {n}."}
            made.append((await http.post("/api/staff/faq", json=body, headers=csrf)).json()["id"])
        for limit in (1, 2, 5, 50):
            seen: list[int] = []
            after: int | None = None
            pages = 0
            while True:
                params = {"limit": limit, **({"after": after} if after else {})}
                page = (await http.get("/api/staff/faq", params=params)).json()
                seen += [e["id"] for e in page["entries"]]
                pages += 1
                after = page["next_after"]
                if after is None:
                    break
            assert seen == made, limit
            assert pages == -(-5 // limit), limit
