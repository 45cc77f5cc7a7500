"""The knowledge from the staff page: documents listed, uploaded (files and zips, with
progress, broken files named by line, the rest stored and searchable), replaced, deleted;
nothing of another hotel reachable, reception refused, a malformed upload changes nothing."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx

from posada.knowledge.ingest import STAFF_FAQ_SOURCE, ingest_folder
from posada.knowledge.retrieval import Visibility, retrieve
from posada.runtime import Runtime
from posada.staff.accounts import Role, add_member
from posada.tenants.service import Tenant
from tests.support.abuse import Hotel, app_client, login_body, make_hotel
from tests.support.helpers import serve_posada, write_docs

PASSWORD = "correct horse battery"

SAUNA = """---
title: Sauna and spa
language: en
---
# Sauna and spa

The rooftop sauna opens at seven in the morning and closes at ten at night. Towels for
the sauna are at the spa desk, and the cedar steam room beside it seats eight guests.
"""
MANUAL = """---
title: Unit A manual
language: en
access_level: guest_only
unit_reference:
  unit_name: a
---
# Unit A manual

The safe in unit A opens with the code printed on the card inside the wardrobe door.
"""
BROKEN = """---
title: Nothing here
language: en
---
"""
OLD = """---
title: Parking
language: en
---
# Parking

Guests park for free in the garage under the lobby; the gate opens with the room key.
"""


async def _staff(
    runtime: Runtime, http: httpx.AsyncClient, tenant: Tenant, role: Role
) -> dict[str, str]:
    """Log a new member of `tenant` with `role` in on `http`; the CSRF header for changes."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    async with runtime.pool.connection() as conn:
        await add_member(
            conn, tenant_id=tenant.id, email=email, role=role, password=PASSWORD, min_length=10
        )
    body = {"tenant": tenant.slug, "email": email, "password": PASSWORD}
    response = await http.post("/api/staff/login", json=body)
    assert response.status_code == 200, response.text
    return {"X-CSRF-Token": response.json()["csrf_token"]}


async def _upload(
    http: httpx.AsyncClient, csrf: dict[str, str], files: list[tuple[str, bytes]]
) -> httpx.Response:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return await http.post("/api/staff/documents", files=parts, headers=csrf)


def _events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    """The Server-Sent Events of a response, in order."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


async def _own_documents(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await http.get("/api/staff/documents")
    assert response.status_code == 200, response.text
    return {d["source"]: d for d in response.json()["documents"] if not d["shared"]}


async def _version(runtime: Runtime, tenant: Tenant) -> int:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT knowledge_version FROM tenants WHERE id = %s", (tenant.id,)
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _top_source(runtime: Runtime, visibility: Visibility, question: str) -> list[str]:
    """The sources of the best chunks for `question`, with the real model."""
    embedding = (await runtime.query_embedder.embed_batch([question]))[0]
    async with runtime.pool.connection() as conn:
        found = await retrieve(conn, visibility=visibility, text=question, embedding=embedding, k=3)
    return [hit.source for hit in found.chunks]


async def _hotel_with_old_document(runtime: Runtime, tmp_path: Path) -> Hotel:
    """A hotel whose `parking.md` was ingested by the CLI's code, from a folder."""
    hotel = await make_hotel(runtime, [])
    await ingest_folder(
        pool=runtime.pool,
        embedder=runtime.embedder,
        faq_embedder=runtime.query_embedder,
        root=write_docs(tmp_path, {"parking.md": OLD}),
        tenant=hotel.tenant,
    )
    return hotel


async def test_an_upload_reports_each_file_stores_the_good_ones_and_keeps_the_others(
    runtime: Runtime, tmp_path: Path
) -> None:
    hotel = await _hotel_with_old_document(runtime, tmp_path)
    before = await _version(runtime, hotel.tenant)
    async with app_client(runtime) as http:
        csrf = await _staff(runtime, http, hotel.tenant, "manager")
        files = [("sauna.md", SAUNA.encode()), ("manual-a.md", MANUAL.encode())]
        events = _events(await _upload(http, csrf, [*files, ("broken.md", BROKEN.encode())]))
        listed = await _own_documents(http)
    kinds = [name for name, _ in events]
    assert kinds[:3] == ["file"] * 3
    assert kinds[-1] == "done"
    assert set(kinds[3:-1]) == {"progress"}, "progress while embedding"
    by_name = {data["name"]: data for name, data in events if name == "file"}
    assert by_name["broken.md"]["status"] == "failed"
    assert by_name["broken.md"]["errors"] == [
        "broken.md:5: the document has no text to answer from"
    ]
    assert by_name["sauna.md"] == {
        "name": "sauna.md",
        "status": "parsed",
        "errors": [],
        "warnings": [],
    }
    last = events[-2][1]
    assert last["done"] == last["total"] > 0
    done = events[-1][1]
    assert (done["documents"], sorted(done["added"])) == (2, ["manual-a.md", "sauna.md"])
    assert done["failed"] == ["broken.md:5: the document has no text to answer from"]
    assert done["version"] == await _version(runtime, hotel.tenant) > before
    # The upload added; the document it did not name is still there.
    assert sorted(listed) == ["manual-a.md", "parking.md", "sauna.md"]
    assert (listed["manual-a.md"]["scope"], listed["manual-a.md"]["unit"]) == ("unit", "a")
    assert (listed["sauna.md"]["scope"], listed["sauna.md"]["unit"]) == ("hotel", None)
    assert listed["sauna.md"]["chunks"] >= 1
    assert listed["sauna.md"]["title"] == "Sauna and spa"
    hotel_wide = Visibility(hotel.tenant.id, None)
    assert (await _top_source(runtime, hotel_wide, "when does the sauna open?"))[0] == "sauna.md"
    assert (await _top_source(runtime, hotel_wide, "where can I park?"))[0] == "parking.md"
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id FROM units WHERE tenant_id = %s AND slug = 'a'", (hotel.tenant.id,)
        )
        unit_a = (await cur.fetchone() or [0])[0]
    safe = "how do I open the safe?"
    assert "manual-a.md" not in await _top_source(runtime, hotel_wide, safe)
    assert (await _top_source(runtime, Visibility(hotel.tenant.id, unit_a), safe))[0] == (
        "manual-a.md"
    )


async def test_a_zip_is_ingested_by_its_members_paths_and_a_re_upload_replaces(
    runtime: Runtime,
) -> None:
    hotel = await make_hotel(runtime, [])
    changed = SAUNA.replace("seven in the morning", "six in the morning")
    async with app_client(runtime) as http:
        csrf = await _staff(runtime, http, hotel.tenant, "owner")  # an owner is a manager too
        archive = _zip(
            {
                "spa/sauna.md": SAUNA.encode(),
                "parking.md": OLD.encode(),
                "__MACOSX/spa/._sauna.md": b"\x00\x05\x16\x07 resource fork",
            }
        )
        name, done = _events(await _upload(http, csrf, [("docs.zip", archive)]))[-1]
        assert name == "done"
        assert sorted(done["added"]) == ["parking.md", "spa/sauna.md"]
        first = await _own_documents(http)
        again = _events(await _upload(http, csrf, [("docs.zip", archive)]))[-1][1]
        assert (again["documents"], sorted(again["unchanged"])) == (
            0,
            ["parking.md", "spa/sauna.md"],
        )
        replaced = _events(await _upload(http, csrf, [("spa/sauna.md", changed.encode())]))
        assert replaced[-1][1]["updated"] == ["spa/sauna.md"]
        after = await _own_documents(http)
    assert sorted(after) == ["parking.md", "spa/sauna.md"], "replaced, not duplicated"
    assert after["spa/sauna.md"]["id"] != first["spa/sauna.md"]["id"]
    assert after["parking.md"] == first["parking.md"]
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT string_agg(content, ' ') FROM chunks WHERE tenant_id = %s", (hotel.tenant.id,)
        )
        text = str((await cur.fetchone() or [""])[0])
    assert "six in the morning" in text
    assert "seven in the morning" not in text


def _bomb() -> bytes:
    """A zip of a few kilobytes that unpacks to 20 MB."""
    return _zip({"big.md": b"# Big\n" + b"a" * 20_000_000})


def _smaller_bombs() -> list[tuple[str, bytes]]:
    """Three zips of four 1.9 MB documents each: 7.6 MB unpacked apiece, 22.8 MB in all."""
    page = b"# Big\n" + b"a" * 1_900_000
    return [(f"{name}.zip", _zip({f"{name}{n}.md": page for n in range(4)})) for name in "abc"]


async def test_a_malformed_upload_is_a_422_naming_the_file_and_changes_nothing(
    runtime: Runtime, tmp_path: Path
) -> None:
    hotel = await _hotel_with_old_document(runtime, tmp_path)
    before = await _version(runtime, hotel.tenant)
    good = ("sauna.md", SAUNA.encode())
    cases: list[tuple[list[tuple[str, bytes]], str]] = [
        ([good, ("evil.zip", _zip({"../evil.md": SAUNA.encode()}))], "../evil.md"),
        ([good, ("abs.zip", _zip({"/etc/evil.md": SAUNA.encode()}))], "/etc/evil.md"),
        ([good, ("mixed.zip", _zip({"ok.md": b"# ok\ntext", "run.sh": b"echo"}))], "run.sh"),
        ([good, ("latin1.md", "# Año\ncañón".encode("latin-1"))], "latin1.md: not UTF-8"),
        ([good, ("notes.txt", b"hello")], "notes.txt"),
        ([good, ("fake.zip", b"PK\x03\x04 not really")], "fake.zip: not a readable zip"),
        ([good, ("bomb.zip", _bomb())], "bomb.zip"),
        # Each under the bound, together over it: the third is refused before it unpacks.
        ([good, *(_smaller_bombs())], "c.zip: the upload unpacks to more than"),
        ([good, good], "sauna.md: uploaded twice"),
        ([good, ("../x.md", b"# x\ntext")], "not a usable file name"),
        ([good, ("..\\x.md", b"# x\ntext")], "not a usable file name"),
    ]
    # Uploads have their own bound (POSADA_STAFF_UPLOAD_MAX_BYTES), set low here.
    bounded = runtime.settings.staff.model_copy(update={"upload_max_bytes": 100_000})
    async with app_client(runtime, staff=bounded) as http:
        csrf = await _staff(runtime, http, hotel.tenant, "manager")
        for files, named in cases:
            response = await _upload(http, csrf, files)
            assert response.status_code == 422, (named, response.text)
            assert named in response.json()["detail"], response.text
        not_multipart = await http.post(
            "/api/staff/documents", json={"files": ["sauna.md"]}, headers=csrf
        )
        assert not_multipart.status_code == 422
        assert "multipart/form-data" in not_multipart.json()["detail"]
        no_files = await http.post(
            "/api/staff/documents", data={"note": "nothing"}, files={}, headers=csrf
        )
        assert no_files.status_code == 422, no_files.text
        torn = await http.post(
            "/api/staff/documents",
            content=b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="a.md"',
            headers={**csrf, "Content-Type": "multipart/form-data"},
        )
        assert torn.status_code == 422, torn.text
        # Over the upload bound: refused as it streams in.
        huge = await _upload(http, csrf, [good, ("huge.md", b"# Huge\n" + b"a" * 120_000)])
        assert huge.status_code == 413, huge.text
        # A chat message's bound (64 KiB) is not an upload's.
        assert (await http.post("/api/guest/chat", content=b"x" * 70_000)).status_code == 413
        assert sorted(await _own_documents(http)) == ["parking.md"]
    assert await _version(runtime, hotel.tenant) == before


async def test_a_delete_takes_the_chunks_and_faq_and_moves_the_version(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [])
    faq = SAUNA + "\n## Is there a sauna?\n\nYes, on the roof, from seven to ten.\n"
    async with app_client(runtime) as http:
        csrf = await _staff(runtime, http, hotel.tenant, "manager")
        _events(
            await _upload(http, csrf, [("sauna.md", faq.encode()), ("parking.md", OLD.encode())])
        )
        listed = await _own_documents(http)
        sauna = listed["sauna.md"]
        assert sauna["faqs"] >= 1
        assert sauna["chunks"] >= 1
        before = await _version(runtime, hotel.tenant)
        assert (
            await http.delete(f"/api/staff/documents/{sauna['id']}", headers=csrf)
        ).status_code == 204
        assert (
            await http.delete(f"/api/staff/documents/{sauna['id']}", headers=csrf)
        ).status_code == 404
        assert sorted(await _own_documents(http)) == ["parking.md"]
        shared = [
            d for d in (await http.get("/api/staff/documents")).json()["documents"] if d["shared"]
        ]
        assert shared, "the session's tourism content is listed, read-only"
        refused = await http.delete(f"/api/staff/documents/{shared[0]['id']}", headers=csrf)
        assert refused.status_code == 404
        bad_id = await http.delete("/api/staff/documents/0", headers=csrf)
        assert bad_id.status_code == 422
        # The staff's own FAQ document is the FAQ tab's: neither listed nor deleted here.
        async with runtime.pool.connection() as conn:
            cur = await conn.execute(
                """INSERT INTO documents (tenant_id, scope, source, title, content_hash)
                   VALUES (%s, 'hotel', %s, 'Answers from the staff', 'staff') RETURNING id""",
                (hotel.tenant.id, STAFF_FAQ_SOURCE),
            )
            staff_faq = (await cur.fetchone() or [0])[0]
        assert sorted(await _own_documents(http)) == ["parking.md"]
        kept = await http.delete(f"/api/staff/documents/{staff_faq}", headers=csrf)
        assert kept.status_code == 404
    assert await _version(runtime, hotel.tenant) == before + 1
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT (SELECT count(*) FROM chunks WHERE document_id = %(d)s),
                      (SELECT count(*) FROM faq WHERE document_id = %(d)s),
                      (SELECT count(*) FROM documents WHERE id = ANY(%(kept)s))""",
            {"d": sauna["id"], "kept": [shared[0]["id"], staff_faq]},
        )
        assert await cur.fetchone() == (0, 0, 2)


async def test_another_hotel_sees_and_touches_nothing_and_reception_is_refused(
    runtime: Runtime, tmp_path: Path
) -> None:
    mine = await _hotel_with_old_document(runtime, tmp_path)
    theirs = await make_hotel(runtime, [])
    async with app_client(runtime) as http:
        await _staff(runtime, http, mine.tenant, "manager")
        own = await _own_documents(http)
    parking = own["parking.md"]["id"]
    async with app_client(runtime) as http:
        csrf = await _staff(runtime, http, theirs.tenant, "manager")
        assert await _own_documents(http) == {}, "none of another hotel's"
        gone = await http.delete(f"/api/staff/documents/{parking}", headers=csrf)
        assert gone.status_code == 404
        # Their own upload of the same name is theirs: mine stays as it was.
        _events(await _upload(http, csrf, [("parking.md", SAUNA.encode())]))
        assert sorted(await _own_documents(http)) == ["parking.md"]
    async with app_client(runtime) as http:
        desk = await _staff(runtime, http, mine.tenant, "reception")
        assert (await http.get("/api/staff/documents")).status_code == 403
        assert (await _upload(http, desk, [("sauna.md", SAUNA.encode())])).status_code == 403
        assert (
            await http.delete(f"/api/staff/documents/{parking}", headers=desk)
        ).status_code == 403
    async with app_client(runtime) as http:
        assert (await http.get("/api/staff/documents")).status_code == 401
        await _staff(runtime, http, mine.tenant, "manager")
        no_csrf = await _upload(http, {}, [("sauna.md", SAUNA.encode())])
        assert no_csrf.status_code == 403
        wrong = await _upload(http, {"X-CSRF-Token": "forged"}, [("sauna.md", SAUNA.encode())])
        assert wrong.status_code == 403
        assert (await http.delete(f"/api/staff/documents/{parking}")).status_code == 403
        after = await _own_documents(http)
    assert after == own, "nothing changed for the refused requests"


async def test_over_real_http_the_events_stream_and_a_guest_is_answered_from_the_upload(
    runtime: Runtime,
) -> None:
    hotel = await make_hotel(runtime, [("S1", "a", "4321", 0)])
    # No LLM: the extractive answer quotes the passage it found.
    env = {"POSADA_LLM_BASE_URL": "", "POSADA_LLM_API_KEY": ""}
    for base in serve_posada(runtime, env=env):
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            csrf = await _staff(runtime, http, hotel.tenant, "manager")
            parts = [
                ("files", ("docs.zip", _zip({"spa/sauna.md": SAUNA.encode()}), "application/zip"))
            ]
            names: list[str] = []
            async with http.stream(
                "POST", "/api/staff/documents", files=parts, headers=csrf
            ) as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                names = [
                    line[7:] async for line in response.aiter_lines() if line.startswith("event: ")
                ]
            assert names[0] == "file"
            assert names[-1] == "done"
            assert "progress" in names
            login = await http.post("/api/guest/login", json=login_body(hotel, 0, "4321"))
            assert login.status_code == 200, login.text
            bearer = {"Authorization": f"Bearer {login.json()['token']}"}
            answer = await http.post(
                "/api/guest/chat", json={"message": "When does the sauna open?"}, headers=bearer
            )
    assert answer.status_code == 200, answer.text
    assert "spa/sauna.md" in [source["source"] for source in answer.json()["sources"]]
    assert "seven in the morning" in answer.json()["answer"]


async def test_an_upload_may_be_larger_than_a_chat_message(runtime: Runtime) -> None:
    hotel = await make_hotel(runtime, [])
    text = "The heater is by the door and the window opens outwards. " * 15
    manual = SAUNA + "".join(f"\n## Room {n}\n\n{text}\n" for n in range(4))
    # A message's bound set low: the upload is over it, and under the upload's own.
    async with app_client(runtime, max_body_bytes=2048) as http:
        assert len(manual.encode()) > 2048
        csrf = await _staff(runtime, http, hotel.tenant, "manager")
        events = _events(await _upload(http, csrf, [("big.md", manual.encode())]))
        done = [data for name, data in events if name == "done"]
        assert len(done) == 1
        assert done[0]["failed"] == [], done
        assert "big.md" in await _own_documents(http)
        assert (await http.post("/api/guest/chat", content=b"x" * 3000)).status_code == 413
