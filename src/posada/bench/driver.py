"""Driving a workload against a running posada over HTTP, timing every request at the client.

`guests` workers each take the next session of the workload, log in, and ask its
questions in one conversation with the session's think time between them, until the
duration is over (a session under way stops at its next question). Each request becomes
a `Sample`: its time as the client saw it, the time to the first byte of a streamed
answer, and the figures the server reported for it (layer, counters).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from posada.bench.hotels import Stay
from posada.bench.workload import Session, Turn


@dataclass
class Sample:
    """One request, as the client saw it."""

    kind: str  # login, chat, stream
    ok: bool
    status: int
    ms: float
    ttfb_ms: float | None = None
    layer: str | None = None
    counters: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    group: str | None = None
    server_ms: float | None = None  # the server's own time for it (`timings.total`)


@dataclass
class Drive:
    """What one run of a workload against one server gave."""

    samples: list[Sample]
    wall_s: float
    sessions: int


async def drive(
    *,
    base_url: str,
    sessions: list[Session],
    guests: int,
    duration_s: float,
    think_scale: float = 1.0,
    timeout_s: float = 120.0,
) -> Drive:
    """Run the sessions with `guests` at a time for `duration_s`; collect every request."""
    samples: list[Sample] = []
    queue = iter(sessions)
    started = time.monotonic()
    deadline = started + duration_s
    used = 0
    # Idle connections are dropped well before uvicorn's 5 s keep-alive ends, so that a
    # request never goes out on a connection the server is closing at that moment.
    limits = httpx.Limits(
        max_connections=guests + 10, max_keepalive_connections=guests + 10, keepalive_expiry=2
    )
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s, limits=limits) as http:

        async def guest() -> None:
            nonlocal used
            while time.monotonic() < deadline:
                session = next(queue, None)
                if session is None:
                    return
                used += 1
                await _visit(http, session, samples, deadline, think_scale)

        await asyncio.gather(*(guest() for _ in range(guests)))
    return Drive(samples, time.monotonic() - started, used)


async def _visit(
    http: httpx.AsyncClient,
    session: Session,
    samples: list[Sample],
    deadline: float,
    think_scale: float,
) -> None:
    login = await _timed(http, "login", "/api/guest/login", session.stay.login(), headers={})
    samples.append(login.sample)
    if not login.sample.ok:
        return
    headers = {"Authorization": f"Bearer {login.body['token']}"}
    conversation: int | None = None
    for turn in session.turns:
        await asyncio.sleep(turn.think_s * think_scale)
        if time.monotonic() >= deadline:
            return
        sample, conversation_id = await _ask(http, turn, conversation, headers)
        samples.append(sample)
        conversation = conversation_id or conversation


@dataclass
class _Result:
    sample: Sample
    body: dict[str, Any]


async def _timed(
    http: httpx.AsyncClient, kind: str, path: str, payload: dict[str, Any], headers: dict[str, str]
) -> _Result:
    began = time.perf_counter()
    try:
        response = await http.post(path, json=payload, headers=headers)
        ms = (time.perf_counter() - began) * 1000
        body = (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        ok = response.status_code == 200
        error = None if ok else f"{response.status_code}: {response.text[:200]}"
        return _Result(Sample(kind, ok, response.status_code, ms, error=error), body)
    except httpx.HTTPError as exc:
        ms = (time.perf_counter() - began) * 1000
        return _Result(Sample(kind, False, 0, ms, error=f"{type(exc).__name__}: {exc}"), {})


async def _ask(
    http: httpx.AsyncClient, turn: Turn, conversation: int | None, headers: dict[str, str]
) -> tuple[Sample, int | None]:
    payload = {"message": turn.text, "conversation_id": conversation}
    if not turn.stream:
        result = await _timed(http, "chat", "/api/guest/chat", payload, headers)
        sample, body = result.sample, result.body
        if sample.ok:
            sample.layer = body.get("layer")
            sample.counters = dict(body.get("counters") or {})
            sample.server_ms = (body.get("timings") or {}).get("total")
        sample.group = turn.group
        return sample, body.get("conversation_id")
    return await _ask_streamed(http, turn, payload, headers)


async def _ask_streamed(
    http: httpx.AsyncClient, turn: Turn, payload: dict[str, Any], headers: dict[str, str]
) -> tuple[Sample, int | None]:
    began = time.perf_counter()
    first: float | None = None
    buffer = ""
    events: list[tuple[str, dict[str, Any]]] = []
    status = 0
    try:
        async with http.stream(
            "POST", "/api/guest/chat/stream", json=payload, headers=headers
        ) as response:
            status = response.status_code
            async for chunk in response.aiter_text():
                if first is None:
                    first = time.perf_counter()
                buffer += chunk
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    events.append(_parse_event(block))
    except httpx.HTTPError as exc:
        ms = (time.perf_counter() - began) * 1000
        sample = Sample("stream", False, status, ms, error=f"{type(exc).__name__}: {exc}")
        sample.group = turn.group
        return sample, None
    ms = (time.perf_counter() - began) * 1000
    ttfb = (first - began) * 1000 if first is not None else None
    done = next((data for name, data in events if name == "done"), None)
    failed = next((data for name, data in events if name == "error"), None)
    ok = status == 200 and done is not None and failed is None
    sample = Sample("stream", ok, status, ms, ttfb_ms=ttfb, group=turn.group)
    if done is not None:
        sample.layer = done.get("layer")
        sample.counters = dict(done.get("counters") or {})
        sample.server_ms = (done.get("timings") or {}).get("total")
    if not ok:
        sample.error = str(failed or buffer[:200] or f"status {status}, no done event")
    conversation = done.get("conversation_id") if done else None
    return sample, conversation


def _parse_event(block: str) -> tuple[str, dict[str, Any]]:
    name, data = "message", "{}"
    for line in block.splitlines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
    try:
        return name, json.loads(data)
    except ValueError:
        return "error", {"detail": f"unreadable event data: {data[:100]}"}


async def warm_up(base_url: str, stay: Stay) -> None:
    """One login and one question no session asks: first-request costs stay out of figures."""
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        login = await http.post("/api/guest/login", json=stay.login())
        login.raise_for_status()
        auth = {"Authorization": f"Bearer {login.json()['token']}"}
        await http.post("/api/guest/chat", json={"message": "warm-up: hello"}, headers=auth)
