"""A person when the guest asks for one: the handoff, staff replies and hand-backs, and the
live streams both ways, over real HTTP (uvicorn in this process) on the embedded PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, aclosing
from typing import Any

import httpx
import pytest
import uvicorn

from posada.answers.phrases import PHRASES
from posada.api.app import create_app
from posada.api.routes import guest_live
from posada.core.errors import NotFound
from posada.guests.conversations import STAY_GONE, record_answer
from posada.runtime import Runtime
from posada_bench.servers import free_port
from tests.support.abuse import Hotel, app_client, make_hotel
from tests.support.live import PATIENCE_S, Event, chat, guest, messages, staff, stream

WAITING = PHRASES["handoff_waiting"]
BACK = PHRASES["handoff_back"]


@pytest.fixture(scope="module")
async def site(runtime: Runtime) -> AsyncIterator[str]:
    """The app on the session's runtime, served by uvicorn on a loopback port."""
    config = uvicorn.Config(
        create_app(runtime=runtime),
        host="127.0.0.1",
        port=free_port(),
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.05)
    yield f"http://127.0.0.1:{config.port}"
    server.should_exit = True
    await task


@pytest.fixture
async def http(site: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=site, timeout=PATIENCE_S) as client:
        yield client


@pytest.fixture
async def hotel(runtime: Runtime) -> Hotel:
    """A hotel of its own with two current stays in unit a and one in b."""
    return await make_hotel(
        runtime, [("r1", "a", "1111", 1), ("r2", "a", "2222", 2), ("r3", "b", "3333", 1)]
    )


async def test_the_round_trip_guest_staff_and_back(
    runtime: Runtime, site: str, http: httpx.AsyncClient, hotel: Hotel
) -> None:
    desk, csrf = await staff(runtime, site, hotel)
    auth = await guest(http, hotel, 1, "1111")
    async with aclosing(desk), stream(desk, "/api/staff/events") as inbox:
        assert (await inbox.next(comments=True)).name == "comment"  # connected
        asked = await chat(http, auth, "I want to talk to a human at reception")
        assert asked["answer"] == WAITING["en"]
        assert (asked["handoff"], asked["layer"], asked["sources"]) == ("waiting", "handoff", [])
        conversation = asked["conversation_id"]

        # The inbox sees the guest's request and the notice at once, as waiting.
        seen = await inbox.until("conversation", message_role="guest")
        assert (seen.data["id"], seen.data["handoff"]) == (conversation, "waiting")
        assert seen.data["message"]["content"] == "I want to talk to a human at reception"
        notice = await inbox.until("conversation", message_role="notice")
        assert notice.id == notice.data["message"]["id"]

        history = await messages(http, auth, conversation)
        assert [m["role"] for m in history] == ["guest", "notice"]
        path = f"/api/guest/conversations/{conversation}/events?after={history[-1]['id']}"
        async with stream(http, path, auth) as mine:
            assert (await mine.next()).data == {"state": "waiting"}

            replied = await desk.post(
                f"/api/staff/conversations/{conversation}/reply",
                json={"text": "  Hola, soy Marta de recepción.  "},
                headers=csrf,
            )
            assert replied.status_code == 201, replied.text
            reply = await mine.next()
            assert (reply.name, reply.id) == ("message", replied.json()["id"])
            assert (reply.data["role"], reply.data["content"]) == (
                "staff",
                "Hola, soy Marta de recepción.",
            )
            assert (await mine.next()).data == {"state": "staff"}
            assert (await inbox.until("conversation", message_role="staff")).data[
                "handoff"
            ] == "staff"

            # While a person has it, posada stores the guest's messages and says nothing.
            held = await chat(http, auth, "what is the wifi password?", conversation)
            assert (held["answer"], held["handoff"], held["sources"]) == ("", "staff", [])
            got = await mine.next()
            assert (got.data["role"], got.data["content"]) == (
                "guest",
                "what is the wifi password?",
            )
            streamed = await http.post(
                "/api/guest/chat/stream",
                json={"message": "and the pool?", "conversation_id": conversation},
                headers=auth,
            )
            assert [b.split("\n")[0] for b in streamed.text.strip().split("\n\n")] == [
                "event: meta",
                "event: done",
            ]
            assert '"handoff": "staff"' in streamed.text
            assert (await mine.next()).data["content"] == "and the pool?"

            back = await desk.post(
                f"/api/staff/conversations/{conversation}/handback", headers=csrf
            )
            assert back.status_code == 204
            told = await mine.next()
            assert (told.data["role"], told.data["content"]) == ("notice", BACK["en"])
            assert (await mine.next()).data == {"state": None}

            answered = await chat(http, auth, "what is the wifi password?", conversation)
            assert answered["handoff"] is None
            assert answered["layer"] != "handoff"
            assert answered["answer"]
            assert (await mine.next()).data["role"] == "guest"
            assert (await mine.next()).data["role"] == "assistant"

    roles = [m["role"] for m in await messages(http, auth, conversation)]
    assert roles == ["guest", "notice", "staff", "guest", "guest", "notice", "guest", "assistant"]


async def test_a_reply_sent_while_the_page_was_closed_is_there_on_the_next_load(
    runtime: Runtime, site: str, http: httpx.AsyncClient, hotel: Hotel
) -> None:
    desk, csrf = await staff(runtime, site, hotel)
    auth = await guest(http, hotel, 2, "2222")
    asked = await http.post("/api/guest/handoff", json={"conversation_id": None}, headers=auth)
    conversation = asked.json()["conversation_id"]
    before = asked.json()["message"]["id"]
    async with aclosing(desk):
        for text in ("One moment please.", "The pool opens at 8."):
            sent = await desk.post(
                f"/api/staff/conversations/{conversation}/reply", json={"text": text}, headers=csrf
            )
            assert sent.status_code == 201
    loaded = await http.get(f"/api/guest/conversations/{conversation}", headers=auth)
    assert loaded.json()["handoff"] == "staff"
    assert [m["content"] for m in loaded.json()["messages"]][-2:] == [
        "One moment please.",
        "The pool opens at 8.",
    ]
    # A reconnect resumes after the last event it had (Last-Event-ID), or after `after`.
    path = f"/api/guest/conversations/{conversation}/events"
    async with stream(http, path, {**auth, "Last-Event-ID": str(before)}) as resumed:
        assert (await resumed.next()).data["content"] == "One moment please."
        second = await resumed.next()
        assert second.data["content"] == "The pool opens at 8."
    async with stream(http, f"{path}?after={second.id}", auth) as later:
        assert (await later.next()).data == {"state": "staff"}  # nothing older comes again


async def test_the_button_asks_in_the_guests_language_once(
    http: httpx.AsyncClient, hotel: Hotel
) -> None:
    auth = await guest(http, hotel, 1, "1111")
    spanish = await http.post(
        "/api/guest/handoff", json={"conversation_id": None, "language": "es"}, headers=auth
    )
    assert spanish.status_code == 200, spanish.text
    body = spanish.json()
    assert (body["handoff"], body["message"]["role"]) == ("waiting", "notice")
    assert body["message"]["content"] == WAITING["es"]
    again = await http.post(
        "/api/guest/handoff", json={"conversation_id": body["conversation_id"]}, headers=auth
    )
    assert again.json() == {
        "conversation_id": body["conversation_id"],
        "handoff": "waiting",
        "message": None,
    }
    (stored,) = await messages(http, auth, body["conversation_id"])
    assert (stored["id"], stored["role"], stored["layer"]) == (
        body["message"]["id"],
        "notice",
        "handoff",
    )

    header = {**auth, "Accept-Language": "pt-BR,pt;q=0.9,en;q=0.8"}
    portuguese = await http.post("/api/guest/handoff", json={}, headers=header)
    assert portuguese.json()["message"]["content"] == WAITING["pt"]
    french = await chat(http, auth, "je veux parler à quelqu'un de la réception")
    assert (french["answer"], french["handoff"]) == (WAITING["fr"], "waiting")
    # Asking again in a conversation already waiting: stored, and nothing more said.
    repeated = await chat(http, auth, "I want to talk to a person", french["conversation_id"])
    assert (repeated["answer"], repeated["handoff"]) == ("", "waiting")


@pytest.mark.parametrize(
    "question", ["Is there someone at reception at night?", "¿A qué hora abre la recepción?"]
)
async def test_a_question_about_the_staff_is_answered(
    http: httpx.AsyncClient, hotel: Hotel, question: str
) -> None:
    auth = await guest(http, hotel, 1, "1111")
    answer = await chat(http, auth, question)
    assert answer["handoff"] is None
    assert answer["layer"] != "handoff"
    loaded = await http.get(f"/api/guest/conversations/{answer['conversation_id']}", headers=auth)
    assert loaded.json()["handoff"] is None
    assert [m["role"] for m in loaded.json()["messages"]] == ["guest", "assistant"]


async def test_the_exact_cache_does_not_answer_a_handed_off_conversation(
    runtime: Runtime, hotel: Hotel
) -> None:
    question = f"what time is breakfast {uuid.uuid4().hex[:6]}?"
    async with app_client(runtime, answer_cache=True) as client:
        auth = await guest(client, hotel, 1, "1111")
        await chat(client, auth, question)
        assert (await chat(client, auth, question))["layer"] == "exact"  # the cache would answer
        waiting = await client.post("/api/guest/handoff", json={}, headers=auth)
        conversation = waiting.json()["conversation_id"]
        held = await chat(client, auth, question, conversation)
        assert (held["answer"], held["handoff"], held["layer"]) == ("", "waiting", "handoff")
        assert [m["role"] for m in await messages(client, auth, conversation)] == [
            "notice",
            "guest",
        ]


async def test_an_answer_finished_after_a_person_took_the_conversation_is_not_kept(
    runtime: Runtime, hotel: Hotel
) -> None:
    async with app_client(runtime) as client:
        auth = await guest(client, hotel, 1, "1111")
        asked = await chat(client, auth, "what time is breakfast?")
        conversation = asked["conversation_id"]
        # The guest presses "talk to reception" while (as here, after) an answer is written.
        pressed = await client.post(
            "/api/guest/handoff", json={"conversation_id": conversation}, headers=auth
        )
        assert pressed.status_code == 200, pressed.text
        before = [m["role"] for m in await messages(client, auth, conversation)]
        async with runtime.pool.connection() as conn:
            kept = await record_answer(
                conn, tenant_id=hotel.tenant.id, conversation_id=conversation,
                content="Breakfast is at eight.", layer="llm", sources=[], timings={},
            )  # fmt: skip
        assert kept is None
        assert [m["role"] for m in await messages(client, auth, conversation)] == before
        assert before[-1] == "notice", "nothing of posada's after the notice"
        # A conversation erased meanwhile is still a NotFound, not a silent None.
        with pytest.raises(NotFound):
            async with runtime.pool.connection() as conn:
                await record_answer(
                    conn, tenant_id=hotel.tenant.id + 10**9, conversation_id=conversation,
                    content="x", layer="llm", sources=[], timings={},
                )  # fmt: skip


async def test_another_guest_of_the_hotel_reaches_nothing_of_the_conversation(
    http: httpx.AsyncClient, hotel: Hotel
) -> None:
    mine = await guest(http, hotel, 1, "1111")
    theirs = await guest(http, hotel, 2, "2222")
    conversation = (await chat(http, mine, "hello"))["conversation_id"]
    taken = await http.post(
        "/api/guest/handoff", json={"conversation_id": conversation}, headers=theirs
    )
    assert taken.status_code == 404
    events = await http.get(f"/api/guest/conversations/{conversation}/events", headers=theirs)
    assert events.status_code == 404
    assert (await http.get(f"/api/guest/conversations/{conversation}/events")).status_code == 401
    loaded = await http.get(f"/api/guest/conversations/{conversation}", headers=mine)
    assert loaded.json()["handoff"] is None, "their request changed nothing"
    assert [m["role"] for m in loaded.json()["messages"]] == ["guest", "assistant"]


async def test_a_stay_no_longer_valid_opens_nothing(
    runtime: Runtime, http: httpx.AsyncClient, hotel: Hotel
) -> None:
    auth = await guest(http, hotel, 1, "1111")
    conversation = (await chat(http, auth, "hello"))["conversation_id"]
    async with runtime.pool.connection() as conn:
        await conn.execute(
            "UPDATE reservations SET status = 'cancelled' "
            "WHERE tenant_id = %s AND external_ref = 'r1'",
            (hotel.tenant.id,),
        )
    assert (
        await http.post("/api/guest/handoff", json={"conversation_id": conversation}, headers=auth)
    ).status_code == 401
    assert (
        await http.get(f"/api/guest/conversations/{conversation}/events", headers=auth)
    ).status_code == 401


async def test_another_hotels_staff_can_neither_reply_nor_see(
    runtime: Runtime, site: str, http: httpx.AsyncClient, hotel: Hotel
) -> None:
    other = await make_hotel(runtime, [("o1", "a", "4444", 1)])
    stranger, csrf = await staff(runtime, site, other)
    auth = await guest(http, hotel, 1, "1111")
    theirs = await guest(http, other, 1, "4444")
    conversation = (await http.post("/api/guest/handoff", json={}, headers=auth)).json()[
        "conversation_id"
    ]
    async with aclosing(stranger), stream(stranger, "/api/staff/events") as inbox:
        await inbox.next(comments=True)
        for action, body in (("reply", {"text": "hi"}), ("handback", None)):
            response = await stranger.post(
                f"/api/staff/conversations/{conversation}/{action}", json=body, headers=csrf
            )
            assert response.status_code == 404, action
        await chat(http, auth, "and now?", conversation)  # an event of the first hotel
        await chat(http, theirs, "hello")  # then one of theirs: the first their stream gets
        first = await inbox.until("conversation")
        assert first.data["message"]["content"] == "hello"
    loaded = await messages(http, auth, conversation)
    assert [m["role"] for m in loaded] == ["notice", "guest"], "nothing of theirs was stored"


async def test_staff_changes_need_the_csrf_token_and_a_session(
    runtime: Runtime, site: str, http: httpx.AsyncClient, hotel: Hotel
) -> None:
    desk, _ = await staff(runtime, site, hotel)
    auth = await guest(http, hotel, 1, "1111")
    conversation = (await http.post("/api/guest/handoff", json={}, headers=auth)).json()[
        "conversation_id"
    ]
    async with aclosing(desk):
        for action in ("reply", "handback"):
            path = f"/api/staff/conversations/{conversation}/{action}"
            assert (await desk.post(path, json={"text": "hi"})).status_code == 403
            assert (
                await desk.post(path, json={"text": "hi"}, headers={"X-CSRF-Token": "x"})
            ).status_code == 403
            assert (await http.post(path, json={"text": "hi"})).status_code == 401
        assert (await http.get("/api/staff/events")).status_code == 401
    loaded = await http.get(f"/api/guest/conversations/{conversation}", headers=auth)
    assert loaded.json()["handoff"] == "waiting"
    assert [m["role"] for m in loaded.json()["messages"]] == ["notice"]


@pytest.mark.parametrize(
    "body",
    [{}, {"text": ""}, {"text": "   "}, {"text": "x" * 2001}, {"text": "a\x00b"}, {"text": 5}],
    ids=["missing", "empty", "blank", "too-long", "nul", "not-text"],
)
async def test_a_bad_reply_is_a_422_and_changes_nothing(
    runtime: Runtime, site: str, http: httpx.AsyncClient, hotel: Hotel, body: dict[str, Any]
) -> None:
    desk, csrf = await staff(runtime, site, hotel)
    auth = await guest(http, hotel, 1, "1111")
    conversation = (await http.post("/api/guest/handoff", json={}, headers=auth)).json()[
        "conversation_id"
    ]
    async with aclosing(desk):
        response = await desk.post(
            f"/api/staff/conversations/{conversation}/reply", json=body, headers=csrf
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"].startswith("text")
        bad_id = await desk.post(
            "/api/staff/conversations/0/reply", json={"text": "hi"}, headers=csrf
        )
        assert bad_id.status_code == 422
    loaded = await http.get(f"/api/guest/conversations/{conversation}", headers=auth)
    assert (loaded.json()["handoff"], len(loaded.json()["messages"])) == ("waiting", 1)


@pytest.mark.parametrize(
    "body", [{"conversation_id": 0}, {"conversation_id": "x"}, {"language": "de"}]
)
async def test_a_bad_handoff_request_is_a_422(
    http: httpx.AsyncClient, hotel: Hotel, body: dict[str, Any]
) -> None:
    auth = await guest(http, hotel, 1, "3333")
    before = (await http.get("/api/guest/conversations", headers=auth)).json()["items"]
    assert (await http.post("/api/guest/handoff", json=body, headers=auth)).status_code == 422
    assert (await http.get("/api/guest/conversations", headers=auth)).json()["items"] == before


async def test_history_pages_from_the_newest_back_and_forward(
    http: httpx.AsyncClient, hotel: Hotel
) -> None:
    auth = await guest(http, hotel, 1, "1111")
    conversation = (await chat(http, auth, "one"))["conversation_id"]
    for text in ("two", "three"):
        await chat(http, auth, text, conversation)
    path = f"/api/guest/conversations/{conversation}"
    everything = await messages(http, auth, conversation)
    newest = (await http.get(f"{path}?limit=2", headers=auth)).json()
    assert [m["id"] for m in newest["messages"]] == [m["id"] for m in everything[-2:]]
    assert newest["next_before"] == everything[-2]["id"]
    older = (await http.get(f"{path}?limit=2&before={newest['next_before']}", headers=auth)).json()
    assert [m["id"] for m in older["messages"]] == [m["id"] for m in everything[-4:-2]]
    start = (await http.get(f"{path}?limit=4&after=0", headers=auth)).json()
    assert [m["id"] for m in start["messages"]] == [m["id"] for m in everything[:4]]
    rest = (await http.get(f"{path}?after={start['next_after']}", headers=auth)).json()
    assert [m["id"] for m in rest["messages"]] == [m["id"] for m in everything[4:]]
    both = await http.get(f"{path}?after=1&before=9", headers=auth)
    assert both.status_code == 422
    assert [e["field"] for e in both.json()["errors"]] == ["query.before"]


async def test_a_quiet_stream_sends_keep_alive_comments(
    http: httpx.AsyncClient, hotel: Hotel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(guest_live, "KEEPALIVE_S", 0.05)
    auth = await guest(http, hotel, 1, "1111")
    conversation = (await chat(http, auth, "hello"))["conversation_id"]
    async with stream(http, f"/api/guest/conversations/{conversation}/events", auth) as quiet:
        assert (await quiet.next(comments=True)).name == "handoff"  # the state, at once
        assert await quiet.next(comments=True) == Event("comment", "keep-alive", None)


async def test_a_stream_ends_when_the_stay_does(
    runtime: Runtime, site: str, http: httpx.AsyncClient, hotel: Hotel
) -> None:
    desk, csrf = await staff(runtime, site, hotel)
    auth = await guest(http, hotel, 1, "1111")
    asked = await http.post("/api/guest/handoff", json={}, headers=auth)
    conversation = asked.json()["conversation_id"]
    path = f"/api/guest/conversations/{conversation}/events"
    async with aclosing(desk), stream(http, path, auth) as mine:
        assert (await mine.next()).name == "handoff"
        async with runtime.pool.connection() as conn:
            await conn.execute(
                "UPDATE reservations SET status = 'cancelled' "
                "WHERE tenant_id = %s AND external_ref = 'r1'",
                (hotel.tenant.id,),
            )
        sent = await desk.post(
            f"/api/staff/conversations/{conversation}/reply", json={"text": "hi"}, headers=csrf
        )
        assert sent.status_code == 201
        ended = await mine.next()
        assert (ended.name, ended.data) == ("error", {"detail": STAY_GONE})
        with pytest.raises(AssertionError, match="the stream ended"):
            await mine.next()


async def test_a_staff_stream_ends_with_its_session(
    runtime: Runtime, site: str, http: httpx.AsyncClient, hotel: Hotel
) -> None:
    desk, csrf = await staff(runtime, site, hotel)
    auth = await guest(http, hotel, 1, "1111")
    async with aclosing(desk), stream(desk, "/api/staff/events") as inbox:
        assert (await inbox.next(comments=True)).name == "comment"
        assert (await desk.post("/api/staff/logout", headers=csrf)).status_code == 204
        await chat(http, auth, "I want to talk to a human at reception")
        # Woken by the guest's message, the stream finds the session gone before reading.
        ended = await inbox.next()
        assert ended.name == "error", ended
        with pytest.raises(AssertionError, match="the stream ended"):
            await inbox.next()


async def test_live_streams_are_bounded_per_stay(
    runtime: Runtime, http: httpx.AsyncClient, hotel: Hotel
) -> None:
    auth = await guest(http, hotel, 1, "1111")
    asked = await http.post("/api/guest/handoff", json={}, headers=auth)
    path = f"/api/guest/conversations/{asked.json()['conversation_id']}/events"
    bound = runtime.settings.live_streams_per_holder
    async with AsyncExitStack() as open_streams:
        # Each kept: a reader dropped would be collected, and its response closed with it.
        held = [
            await open_streams.enter_async_context(stream(http, path, auth)) for _ in range(bound)
        ]
        for mine in held:
            assert (await mine.next()).name == "handoff"
        refused = await http.get(path, headers=auth)
        assert refused.status_code == 429, refused.text
        # Another stay of the hotel is not refused for this one's streams.
        other = await guest(http, hotel, 2, "2222")
        theirs = await http.post("/api/guest/handoff", json={}, headers=other)
        their_path = f"/api/guest/conversations/{theirs.json()['conversation_id']}/events"
        async with stream(http, their_path, other) as their_stream:
            assert (await their_stream.next()).name == "handoff"
    # Closed, each gives its slot back.
    async with stream(http, path, auth) as again:
        assert (await again.next()).name == "handoff"
