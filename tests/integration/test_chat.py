"""The guest chat: answers with sources, conversations, isolation, and every bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest

from posada.guests.service import import_reservations
from posada.knowledge.ingest import ingest_folder
from posada.runtime import Runtime
from posada.tenants.service import ensure_tenant
from tests.support.helpers import JWT_SECRET, LoginAs, write_docs

# Private facts from the demo's unit manuals.
CARACOLA_WIFI = "ConchaRosada#71"
MANGLAR_PRIVATE = ("9370", "5127", "Manglar-Suite", "RaizRoja&83", "3358")


async def _chat(
    client: httpx.AsyncClient, auth: dict[str, str], message: str, conversation: int | None = None
) -> httpx.Response:
    body: dict[str, object] = {"message": message}
    if conversation is not None:
        body["conversation_id"] = conversation
    return await client.post("/api/guest/chat", json=body, headers=auth)


async def _messages(runtime: Runtime, conversation: int) -> list[tuple[str, str, str | None]]:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT role, content, layer FROM messages WHERE conversation_id = %s ORDER BY id",
            (conversation,),
        )
        return list(await cur.fetchall())


async def test_faq_question_is_answered_from_the_faq(
    client: httpx.AsyncClient, login_as: LoginAs, runtime: Runtime
) -> None:
    auth = await login_as("caracola")
    response = await _chat(client, auth, "What time is check-out?")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["layer"] == "faq"
    assert "11:00" in body["answer"]
    assert body["sources"][0]["source"] == "faq.en.md"
    assert {"auth", "store", "embed", "lookup", "generate", "total"} <= set(body["timings"])
    stored = await _messages(runtime, body["conversation_id"])
    assert stored == [
        ("guest", "What time is check-out?", None),
        ("assistant", body["answer"], "faq"),
    ]


async def test_check_in_and_check_out_do_not_share_an_answer(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    auth = await login_as("caracola")
    check_in = (await _chat(client, auth, "¿A qué hora es el check-in?")).json()
    check_out = (await _chat(client, auth, "¿A qué hora es el check-out?")).json()
    assert "15:00" in check_in["answer"]
    assert "11:00" not in check_in["answer"]
    assert "11:00" in check_out["answer"]
    assert "15:00" not in check_out["answer"]


async def test_passage_answer_for_a_question_not_in_the_faq(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    auth = await login_as("caracola")
    body = (await _chat(client, auth, "cual es la clave del wifi de mi habitacion")).json()
    assert CARACOLA_WIFI in body["answer"]
    assert any(s["scope"] == "unit" for s in body["sources"])


async def test_unanswerable_question_gets_an_honest_reply(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    auth = await login_as("caracola")
    spanish = (await _chat(client, auth, "¿Hay un helipuerto para mi helicóptero?")).json()
    assert spanish["answer"].startswith("No tengo esa información")
    assert spanish["sources"] == []
    english = (await _chat(client, auth, "Is there a casino with roulette tables?")).json()
    assert english["answer"].startswith("I don't have that information")


async def test_no_guest_gets_another_units_private_details(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    auth = await login_as("caracola")
    for question in (
        "What is the door code of Manglar?",
        "¿Cuál es la clave del wifi de la suite Manglar?",
        "manglar safe code",
        "Manglar-Suite wifi password",
    ):
        answer = (await _chat(client, auth, question)).json()["answer"]
        assert not any(fact in answer for fact in MANGLAR_PRIVATE), (question, answer)


async def test_a_conversation_continues_and_belongs_to_its_guest(
    client: httpx.AsyncClient, login_as: LoginAs, runtime: Runtime
) -> None:
    mine = await login_as("coral")
    first = (await _chat(client, mine, "What are the pool hours?")).json()
    second = await _chat(client, mine, "And the gym?", first["conversation_id"])
    assert second.json()["conversation_id"] == first["conversation_id"]
    assert len(await _messages(runtime, first["conversation_id"])) == 4

    theirs = await login_as("brisa")
    stolen = await _chat(client, theirs, "hello", first["conversation_id"])
    assert stolen.status_code == 404
    assert len(await _messages(runtime, first["conversation_id"])) == 4, "nothing stored"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": ""}, "message"),
        ({"message": "   "}, "message"),
        ({"message": "x" * 2001}, "message"),
        ({}, "message"),
        ({"message": "hi", "conversation_id": "abc"}, "conversation_id"),
    ],
)
async def test_bad_messages_are_422_naming_the_field(
    client: httpx.AsyncClient, login_as: LoginAs, body: dict[str, object], field: str
) -> None:
    auth = await login_as("caracola")
    response = await client.post("/api/guest/chat", json=body, headers=auth)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_a_2000_character_message_is_accepted(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    auth = await login_as("caracola")
    response = await _chat(client, auth, "pool " * 400)
    assert response.status_code == 200


def _forge(secret: str, **changes: object) -> str:
    claims: dict[str, object] = {
        "sub": "1",
        "aud": "posada-guest",
        "tenant_id": 1,
        "tenant": "casa-azul",
        "unit_id": 1,
        "exp": datetime.now(UTC) + timedelta(hours=1),
    }
    claims.update(changes)
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {_forge('some-other-secret-of-enough-length-000000')}"},
        {"Authorization": f"Bearer {_forge(JWT_SECRET, exp=datetime.now(UTC) - timedelta(1))}"},
        {"Authorization": f"Bearer {_forge(JWT_SECRET, aud='someone-else')}"},
        {"Authorization": f"Basic {_forge(JWT_SECRET)}"},
    ],
)
async def test_missing_expired_or_forged_tokens_are_401(
    client: httpx.AsyncClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    async with runtime.pool.connection() as conn:
        before = (await (await conn.execute("SELECT count(*) FROM messages")).fetchone() or [0])[0]
    response = await client.post("/api/guest/chat", json={"message": "hola"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    async with runtime.pool.connection() as conn:
        after = (await (await conn.execute("SELECT count(*) FROM messages")).fetchone() or [0])[0]
    assert after == before


async def test_one_hotels_guest_never_reaches_anothers_knowledge(
    client: httpx.AsyncClient, runtime: Runtime, login_as: LoginAs, tmp_path: Path
) -> None:
    async with runtime.pool.connection() as conn:
        other = await ensure_tenant(conn, slug="hotel-faro", name="Hotel Faro")
    write_docs(
        tmp_path,
        {
            "faq.md": "# FAQ\n\n## ¿A qué hora abre el bar?\nEl bar abre a las 17:40.\n",
            "units/torre.md": (
                "---\ncategory: accommodations\nunit_name: Torre\n---\n# Torre\nSuite.\n"
            ),
            "manuals/torre.md": (
                "---\naccess_level: guest_only\nunit_reference:\n  unit_name: Torre\n---\n"
                "# Manual Torre\n\n## Wi-Fi\nLa clave del wifi es FaroSecreto-8812.\n"
            ),
        },
    )
    await ingest_folder(pool=runtime.pool, embedder=runtime.embedder, root=tmp_path, tenant=other)
    today = date.today()
    async with runtime.pool.connection() as conn:
        await import_reservations(
            conn,
            tenant=other,
            csv_text=(
                "external_ref,unit,guest_name,phone_last4,check_in,check_out,status\n"
                f"F-1,torre,Ana,4455,{today - timedelta(days=1)},{today + timedelta(days=2)},"
                "checked_in\n"
            ),
        )
    login = await client.post(
        "/api/guest/login",
        json={
            "tenant": "hotel-faro",
            "check_in": str(today - timedelta(days=1)),
            "phone_last4": "4455",
        },
    )
    faro_guest = {"Authorization": f"Bearer {login.json()['token']}"}
    theirs = (await _chat(client, faro_guest, "¿Cuál es la clave del wifi?")).json()
    assert "FaroSecreto-8812" in theirs["answer"], "the hotel's own guest gets it"

    demo_guest = await login_as("caracola")
    for question in (
        "¿Cuál es la clave del wifi FaroSecreto?",
        "¿A qué hora abre el bar del Hotel Faro?",
        "Torre wifi password",
    ):
        answer = (await _chat(client, demo_guest, question)).json()
        assert "FaroSecreto-8812" not in answer["answer"]
        assert "17:40" not in answer["answer"]
        assert all(s["source"] not in ("faq.md", "manuals/torre.md") for s in answer["sources"])
    stolen = await _chat(client, demo_guest, "hola", theirs["conversation_id"])
    assert stolen.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"message": "hola\x00"},
        {"message": "hola", "conversation_id": 2**63},
        {"message": "hola", "conversation_id": 2**70},
    ],
)
async def test_values_the_database_cannot_hold_are_422(
    client: httpx.AsyncClient, login_as: LoginAs, body: dict[str, object]
) -> None:
    auth = await login_as("caracola")
    response = await client.post("/api/guest/chat", json=body, headers=auth)
    assert response.status_code == 422, response.text


async def test_a_token_stops_working_when_its_stay_is_cancelled_or_moved(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    today = date.today()
    async with runtime.pool.connection() as conn:
        tenant = await ensure_tenant(conn, slug="casa-azul")
        csv_head = "external_ref,unit,guest_name,phone_last4,check_in,check_out,status\n"
        row = f"T-9,{{unit}},Tess,7777,{today},{today + timedelta(days=2)},{{status}}\n"
        await import_reservations(
            conn, tenant=tenant, csv_text=csv_head + row.format(unit="coral", status="confirmed")
        )
    login = await client.post(
        "/api/guest/login",
        json={"tenant": "casa-azul", "check_in": str(today), "phone_last4": "7777"},
    )
    auth = {"Authorization": f"Bearer {login.json()['token']}"}
    assert (await _chat(client, auth, "hola")).status_code == 200
    for unit, status in (("brisa", "confirmed"), ("coral", "cancelled")):
        async with runtime.pool.connection() as conn:
            await import_reservations(
                conn, tenant=tenant, csv_text=csv_head + row.format(unit=unit, status=status)
            )
        refused = await _chat(client, auth, "What is the door code?")
        assert refused.status_code == 401, (unit, status)
