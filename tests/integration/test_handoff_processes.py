"""The handoff across replicas: two `posada serve` processes on one database, the guest on
one and the staff on the other; each change reaches the other process through PostgreSQL's
LISTEN/NOTIFY, not through any memory the two share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import aclosing

import httpx
import pytest

from posada.answers.phrases import PHRASES
from posada.runtime import Runtime
from tests.support.abuse import Hotel, make_hotel
from tests.support.helpers import posada_process
from tests.support.live import PATIENCE_S, chat, guest, messages, staff, stream


@pytest.fixture(scope="module")
def replicas(runtime: Runtime) -> Iterator[tuple[str, str]]:
    """Two servers on the session's database: the guest's and the staff's."""
    with posada_process(runtime) as (first, _), posada_process(runtime) as (second, _):
        yield first, second


async def test_the_round_trip_across_two_processes(
    runtime: Runtime, replicas: tuple[str, str]
) -> None:
    guests_server, staff_server = replicas
    hotel: Hotel = await make_hotel(runtime, [("p1", "a", "5555", 1)])
    desk, csrf = await staff(runtime, staff_server, hotel)
    async with (
        httpx.AsyncClient(base_url=guests_server, timeout=PATIENCE_S) as http,
        aclosing(desk),
        stream(desk, "/api/staff/events") as inbox,
    ):
        await inbox.next(comments=True)
        auth = await guest(http, hotel, 1, "5555")
        asked = await chat(http, auth, "quiero hablar con una persona")
        assert (asked["answer"], asked["handoff"]) == (PHRASES["handoff_waiting"]["es"], "waiting")
        conversation = asked["conversation_id"]
        seen = await inbox.until("conversation", message_role="notice")
        assert (seen.data["id"], seen.data["handoff"]) == (conversation, "waiting")

        last = (await messages(http, auth, conversation))[-1]["id"]
        path = f"/api/guest/conversations/{conversation}/events?after={last}"
        async with stream(http, path, auth) as mine:
            assert (await mine.next()).data == {"state": "waiting"}
            sent = await desk.post(
                f"/api/staff/conversations/{conversation}/reply",
                json={"text": "Hola, te escribe recepción."},
                headers=csrf,
            )
            assert sent.status_code == 201
            reply = await mine.next()
            assert (reply.id, reply.data["role"]) == (sent.json()["id"], "staff")
            assert (await mine.next()).data == {"state": "staff"}

            held = await chat(http, auth, "¿cuál es la clave del wifi?", conversation)
            assert (held["answer"], held["handoff"]) == ("", "staff")
            assert (await mine.next()).data["content"] == "¿cuál es la clave del wifi?"
            question = await inbox.until("conversation", message_role="guest")
            assert question.data["message"]["content"] == "¿cuál es la clave del wifi?"

            back = await desk.post(
                f"/api/staff/conversations/{conversation}/handback", headers=csrf
            )
            assert back.status_code == 204
            told = await mine.next()
            assert told.data["content"] == PHRASES["handoff_back"]["es"]
            assert (await mine.next()).data == {"state": None}
        answered = await chat(http, auth, "¿cuál es la clave del wifi?", conversation)
        assert answered["handoff"] is None
        assert answered["answer"]
        assert (await inbox.until("conversation", message_role="assistant")).data["handoff"] is None


async def test_sigterm_ends_the_live_streams_so_the_replica_stops_without_its_grace(
    runtime: Runtime,
) -> None:
    # A grace far longer than the wait below: an open stream that held the process would
    # make it outlast the wait, and uvicorn would log the cut.
    env = {"POSADA_SHUTDOWN_GRACE_S": "120"}
    with posada_process(runtime, env=env) as (site, process):
        hotel: Hotel = await make_hotel(runtime, [("p1", "a", "6161", 1)])
        desk, _ = await staff(runtime, site, hotel)
        async with (
            httpx.AsyncClient(base_url=site, timeout=PATIENCE_S) as http,
            aclosing(desk),
            stream(desk, "/api/staff/events") as inbox,
        ):
            await inbox.next(comments=True)
            auth = await guest(http, hotel, 1, "6161")
            asked = await chat(http, auth, "quiero hablar con una persona")
            path = f"/api/guest/conversations/{asked['conversation_id']}/events"
            async with stream(http, path, auth) as mine:
                assert (await mine.next()).data == {"state": "waiting"}
                process.terminate()
                guest_rest = await mine.rest()
                staff_rest = await inbox.rest()
            assert process.wait(timeout=PATIENCE_S) == 0
    # Each stream ended with the reconnect hint, and not by being cut.
    assert "retry: 1000" in guest_rest
    assert "retry: 1000" in staff_rest
