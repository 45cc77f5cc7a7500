"""The handoff's proof: a guest on r1 asks for a person, a staff member whose live stream is
on r2 sees it, replies through r3, and the reply reaches the guest's stream on r1; the
guest's next question reaches the staff's stream, and the hand-back the guest's. The staff
member's one session, opened on r2, is used on r3 too."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from posada_bench.hotels import Stay
from posada_bench.scale.proofs_parts import (
    Events,
    Proof,
    ProofFailed,
    Say,
    ask,
    client,
    events,
    guest_auth,
    new_member,
    staff_headers,
)
from posada_bench.sse import Event

if TYPE_CHECKING:
    from posada_bench.scale.stack import ScaleRun

ASK_FOR_PERSON = "quiero hablar con una persona"
REPLY = "Hola, le escribe recepción: ¿en qué le ayudo?"
LATER = "¿a qué hora es el desayuno?"


def _conversation(conversation: int, role: str) -> Any:
    def check(event: Event) -> bool:
        data = event.data if isinstance(event.data, dict) else {}
        message = data.get("message") or {}
        return (
            event.name == "conversation"
            and data.get("id") == conversation
            and message.get("role") == role
        )

    return check


async def handoff_proof(run: ScaleRun, stay: Stay, *, say: Say) -> Proof:
    """The round trip of a handoff with the guest, the staff's stream and the staff's reply
    each on another replica."""
    r1, r2, r3 = run.stack.replicas[:3]
    say(f"proof handoff: guest on {r1.name}, staff stream on {r2.name}, reply via {r3.name} ...")
    email = await new_member(run.stack.direct_url, tenant=stay.tenant, role="reception")
    seen: dict[str, Any] = {}
    began = time.monotonic()

    def mark(step: str) -> None:
        seen[step] = round((time.monotonic() - began) * 1000)

    async with client(r1.url) as guest_http, client(r2.url) as desk, client(r3.url) as sender:
        # One session, logged in on r2 and used on r3 too: sessions live in PostgreSQL.
        staff = await staff_headers(desk, tenant=stay.tenant, email=email)
        async with events(desk, "/api/staff/events", staff) as inbox:
            await inbox.next(comments=True)  # subscribed: the stream has started
            auth = await guest_auth(guest_http, stay)
            asked = await ask(guest_http, auth, ASK_FOR_PERSON)
            if asked["handoff"] != "waiting":
                raise ProofFailed(f"asking for a person gave handoff={asked['handoff']!r}")
            conversation = int(asked["conversation_id"])
            mark("guest_asked_on_r1")
            await inbox.until(_conversation(conversation, "notice"))
            mark("staff_stream_on_r2_saw_it")
            history = await guest_http.get(f"/api/guest/conversations/{conversation}", headers=auth)
            last = history.json()["messages"][-1]["id"]
            path = f"/api/guest/conversations/{conversation}/events?after={last}"
            async with events(guest_http, path, auth) as mine:
                await _round_trip(mine, inbox, sender, staff, guest_http, auth, conversation, mark)
    steps = list(seen)
    counters: dict[str, Any] = {
        "conversation": conversation,
        "ms_since_start": seen,
        "sides": {"guest": r1.name, "staff_stream": r2.name, "staff_sends": r3.name},
    }
    detail = (
        f"guest on {r1.name} asked for a person; the staff stream on {r2.name} saw it, the "
        f"reply sent through {r3.name} (the session opened on {r2.name}) reached the guest's "
        f"stream on {r1.name}, then the "
        f"guest's question and the hand-back crossed too ({len(steps)} steps)"
    )
    return Proof("handoff", True, counters, detail)


async def _round_trip(
    mine: Events,
    inbox: Events,
    sender: Any,
    staff: dict[str, str],
    guest_http: Any,
    auth: dict[str, str],
    conversation: int,
    mark: Any,
) -> None:
    """The reply, a question while the staff has it, and the hand-back, each seen across."""
    if (await mine.next()).data != {"state": "waiting"}:
        raise ProofFailed("the guest's stream did not start in the waiting state")
    sent = await sender.post(
        f"/api/staff/conversations/{conversation}/reply", json={"text": REPLY}, headers=staff
    )
    if sent.status_code != 201:
        raise ProofFailed(f"the staff reply through r3: {sent.status_code} {sent.text}")
    reply = await mine.until(lambda e: e.name == "message")
    if (reply.id, reply.data["role"], reply.data["content"]) != (sent.json()["id"], "staff", REPLY):
        raise ProofFailed(f"the guest's stream got {reply.data} instead of the reply")
    mark("reply_via_r3_reached_guest_on_r1")
    await mine.until(lambda e: e.name == "handoff" and e.data == {"state": "staff"})
    held = await ask(guest_http, auth, LATER, conversation)
    if (held["answer"], held["handoff"]) != ("", "staff"):
        raise ProofFailed(f"posada answered while staff had the conversation: {held}")
    await inbox.until(_conversation(conversation, "guest"))
    mark("guest_question_reached_staff_on_r2")
    back = await sender.post(f"/api/staff/conversations/{conversation}/handback", headers=staff)
    if back.status_code != 204:
        raise ProofFailed(f"the hand-back through r3: {back.status_code} {back.text}")
    await mine.until(lambda e: e.name == "handoff" and e.data == {"state": None})
    mark("handback_via_r3_reached_guest_on_r1")
