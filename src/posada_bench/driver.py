"""Driving a workload against a running posada over HTTP, timing every request at the client.

`guests` workers each take the next session of the workload, log in, and ask its
questions in one conversation with the session's think time between them, until the
duration is over (a session under way stops at its next question). The guests start one
after another over `ramp_s`, as a hotel's guests never all press send in the same
millisecond. Each request becomes a `Sample`: its time as the client saw it, the time to
the first byte of a streamed answer, and the figures the server reported for it (layer,
counters).

The client is aiohttp (the `bench` extra), which writes a small request's headers and
body in one piece. httpx, used before, writes them separately and yields to its event
loop in between; the server's clock starts at the headers, so with 100 guests it counted
the load generator's own delay: 16.5 ms of an exact hit's P99 of 19.5 ms (docs/benchmark.md).
"""

from __future__ import annotations

import asyncio
import codecs
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from posada.core.errors import ConfigurationError
from posada_bench.hotels import Stay
from posada_bench.workload import Session, Turn

if TYPE_CHECKING:
    import aiohttp


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
    ramp_s: float = 0.0,
    timeout_s: float = 120.0,
) -> Drive:
    """Run the sessions with `guests` at a time for `duration_s`; collect every request."""
    samples: list[Sample] = []
    queue = iter(sessions)
    started = time.monotonic()
    deadline = started + duration_s
    used = 0
    async with _client(base_url, connections=guests + 10, timeout_s=timeout_s) as http:

        async def guest(delay: float) -> None:
            nonlocal used
            await asyncio.sleep(delay)
            while time.monotonic() < deadline:
                session = next(queue, None)
                if session is None:
                    return
                used += 1
                await _visit(http, session, samples, deadline, think_scale)

        await asyncio.gather(*(guest(delay) for delay in start_delays(guests, ramp_s)))
    return Drive(samples, time.monotonic() - started, used)


async def _visit(
    http: aiohttp.ClientSession,
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


def start_delays(guests: int, ramp_s: float) -> list[float]:
    """When each guest starts: evenly over `ramp_s` seconds, the first at once."""
    return [i * ramp_s / guests for i in range(guests)]


def _client(base_url: str, *, connections: int, timeout_s: float) -> aiohttp.ClientSession:
    try:
        import aiohttp
    except ImportError as exc:  # `posada serve` needs none of this
        raise ConfigurationError(
            "posada bench needs the bench extra: pip install 'posada[bench]'"
        ) from exc
    # Idle connections are dropped well before uvicorn's 5 s keep-alive ends, so that a
    # request never goes out on a connection the server is closing at that moment.
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=2)
    return aiohttp.ClientSession(
        base_url=base_url, connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)
    )


def _http_errors() -> tuple[type[BaseException], ...]:
    import aiohttp

    return (aiohttp.ClientError, asyncio.TimeoutError)


@dataclass
class _Result:
    sample: Sample
    body: dict[str, Any]


async def _timed(
    http: aiohttp.ClientSession,
    kind: str,
    path: str,
    payload: dict[str, Any],
    headers: dict[str, str],
) -> _Result:
    began = time.perf_counter()
    try:
        async with http.post(path, json=payload, headers=headers) as response:
            raw = await response.read()
            ms = (time.perf_counter() - began) * 1000
            status = response.status
            is_json = response.content_type == "application/json"
        body = json.loads(raw) if is_json else {}
        ok = status == 200
        error = None if ok else f"{status}: {raw[:200].decode('utf-8', 'replace')}"
        return _Result(Sample(kind, ok, status, ms, error=error), body)
    except _http_errors() as exc:
        ms = (time.perf_counter() - began) * 1000
        return _Result(Sample(kind, False, 0, ms, error=f"{type(exc).__name__}: {exc}"), {})


async def _ask(
    http: aiohttp.ClientSession, turn: Turn, conversation: int | None, headers: dict[str, str]
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
    http: aiohttp.ClientSession, turn: Turn, payload: dict[str, Any], headers: dict[str, str]
) -> tuple[Sample, int | None]:
    began = time.perf_counter()
    first: float | None = None
    buffer = ""
    events: list[tuple[str, dict[str, Any]]] = []
    status = 0
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        async with http.post("/api/guest/chat/stream", json=payload, headers=headers) as response:
            status = response.status
            async for chunk in response.content.iter_any():
                if first is None:
                    first = time.perf_counter()
                buffer += decoder.decode(chunk)
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    events.append(_parse_event(block))
    except _http_errors() as exc:
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
    async with _client(base_url, connections=1, timeout_s=120) as http:
        async with http.post("/api/guest/login", json=stay.login()) as login:
            login.raise_for_status()
            token = (await login.json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        async with http.post("/api/guest/chat", json={"message": "warm-up: hello"}, headers=auth):
            pass
