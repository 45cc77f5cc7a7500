"""Faults under traffic, with real processes: Redis killed and restarted, models failing and
hanging, SIGTERM in the middle of a streamed answer. No request fails beyond the outage,
every answered question is stored exactly once, and posada recovers."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Sequence

import httpx
import pytest
import redis.asyncio as aioredis

from posada.runtime import Runtime
from posada_bench.traffic import Outcome, ask_for, demo_guests
from tests.support.helpers import RedisServer, StayFinder, log_in, posada_process, serve_fake_llm


async def stored_counts(runtime: Runtime, tag: str) -> dict[str, int]:
    """How many times each guest question carrying `tag` was stored."""
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT content, count(*) FROM messages
               WHERE role = 'guest' AND content LIKE %s GROUP BY content""",
            (f"%[{tag} %",),
        )
        return {str(content): int(n) for content, n in await cur.fetchall()}


async def assert_stored_once(runtime: Runtime, tag: str, outcomes: Sequence[Outcome]) -> None:
    """Answered questions are stored once; no question is stored twice."""
    stored = await stored_counts(runtime, tag)
    assert all(n == 1 for n in stored.values()), {q: n for q, n in stored.items() if n > 1}
    missing = [o.question for o in outcomes if o.status == 200 and stored.get(o.question) != 1]
    assert not missing, missing[:5]


async def test_redis_killed_and_restarted_under_traffic(
    runtime: Runtime, own_redis: RedisServer
) -> None:
    env = {
        "POSADA_REDIS_URL": own_redis.url,
        "POSADA_ANSWER_CACHE": "true",
        "POSADA_EMBEDDING_CACHE": "true",
        "POSADA_REDIS_RETRY_S": "0.5",
    }
    with posada_process(runtime, env=env) as (base, _):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            guests = await demo_guests(http)

        async def outage() -> None:
            await asyncio.sleep(1.5)
            await asyncio.to_thread(own_redis.stop)
            await asyncio.sleep(2.5)
            await asyncio.to_thread(own_redis.start)  # empty: it keeps nothing on disk

        _, outcomes = await asyncio.gather(
            outage(), ask_for(base, guests, seconds=8, tag="redis-fault")
        )
    assert {o.status for o in outcomes} == {200}, [o for o in outcomes if o.status != 200][:3]
    await assert_stored_once(runtime, "redis-fault", outcomes)
    # Back in use after the restart: the answers asked since then were written to it.
    client = aioredis.from_url(own_redis.url)
    try:
        assert await client.dbsize() > 0
    finally:
        await client.aclose()


async def test_a_failing_and_a_hanging_model_cost_no_request(runtime: Runtime) -> None:
    for failing in serve_fake_llm("--error-rate", "1", "--ttft-ms", "0"):
        for hanging in serve_fake_llm("--ttft-ms", "600000"):
            env = {
                # The small model answers 500, the large one never answers: every
                # question tries both, then gets the extractive answer.
                "POSADA_LLM_SMALL_BASE_URL": failing,
                "POSADA_LLM_SMALL_API_KEY": "test",
                "POSADA_LLM_LARGE_BASE_URL": hanging,
                "POSADA_LLM_LARGE_API_KEY": "test",
                "POSADA_LLM_TIMEOUT_S": "1",
                "POSADA_LLM_TOTAL_TIMEOUT_S": "2",
            }
            with posada_process(runtime, env=env) as (base, _):
                async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                    guests = await demo_guests(http)
                    outcomes = await ask_for(base, guests, seconds=4, tag="llm-fault")
                    answer = await http.post(
                        "/api/guest/chat",
                        json={"message": "¿Cuál es la clave del wifi? [llm-fault x]"},
                        headers=guests[0],
                    )
    assert {o.status for o in outcomes} == {200}, [o for o in outcomes if o.status != 200][:3]
    assert max(o.seconds for o in outcomes) < 10  # bounded by the total timeout, not hanging
    assert answer.json()["layer"] in {"extractive", "faq"}, answer.json()
    await assert_stored_once(runtime, "llm-fault", outcomes)


def _sse_events(lines: list[str]) -> list[str]:
    return [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]


async def _stream_then_sigterm(
    base: str, process: subprocess.Popen[bytes], auth: dict[str, str], *, after_deltas: int
) -> list[str]:
    """Ask a streamed question, SIGTERM the server after some deltas, read to the end."""
    seen: list[str] = []
    async with (
        httpx.AsyncClient(base_url=base, timeout=60) as http,
        http.stream(
            "POST",
            "/api/guest/chat/stream",
            headers=auth,
            json={"message": "How much is a relaxing massage at the spa?"},
        ) as response,
    ):
        assert response.status_code == 200
        try:
            async for line in response.aiter_lines():
                seen.append(line)
                if _sse_events(seen).count("delta") == after_deltas:
                    process.send_signal(signal.SIGTERM)
        except httpx.HTTPError:
            pass  # the server cut the stream at the end of its grace
    return seen


async def _last_answer(runtime: Runtime, lines: list[str]) -> tuple[str, bool]:
    meta = json.loads(lines[lines.index("event: meta") + 1].removeprefix("data: "))
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT content, incomplete FROM messages
               WHERE conversation_id = %s AND role = 'assistant' ORDER BY id DESC LIMIT 1""",
            (meta["conversation_id"],),
        )
        row = await cur.fetchone()
    assert row is not None, "the answer was stored"
    return str(row[0]), bool(row[1])


@pytest.mark.parametrize(
    ("tokens_per_s", "grace_s", "drained"),
    [("25", "30", True), ("3", "1", False)],
    ids=["drained-within-the-grace", "cut-at-the-grace"],
)
async def test_sigterm_mid_stream_keeps_the_answer_and_exits_0(
    runtime: Runtime, current_stay: StayFinder, tokens_per_s: str, grace_s: str, drained: bool
) -> None:
    for llm in serve_fake_llm("--ttft-ms", "50", "--tokens-per-s", tokens_per_s):
        env = {
            "POSADA_LLM_BASE_URL": llm,
            "POSADA_LLM_API_KEY": "t",
            "POSADA_SHUTDOWN_GRACE_S": grace_s,
        }
        with posada_process(runtime, env=env) as (base, process):
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                auth = await log_in(http, await current_stay("brisa"))
            lines = await _stream_then_sigterm(base, process, auth, after_deltas=2)
            code = await asyncio.to_thread(process.wait, 60)
    assert code == 0
    text, incomplete = await _last_answer(runtime, lines)
    assert text.strip(), "what was written is kept"
    if drained:
        assert _sse_events(lines)[-1] == "done", lines[-4:]
        assert not incomplete
    else:
        assert "done" not in _sse_events(lines)
        assert incomplete, "cut by the shutdown, and stored as such"
