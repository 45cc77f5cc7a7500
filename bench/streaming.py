"""Streaming benchmark: posada's added time to first byte over the upstream's, and prompt size.

Starts `posada fake-llm` (a simulated upstream with a fixed time to first token) and a
real `posada serve` pointed at it, on a fresh embedded database with the demo hotel.
Then, for the same questions, it times the first streamed byte

- straight from the upstream (the openai client, as posada calls it), and
- from posada's `/api/guest/chat/stream` (first `meta` event, sent with the first token),

and reports the medians and their difference: what posada adds (login check, storing the
question, one embedding, one lookup, the prompt). It also reports the prompt's estimated
tokens by part (system, context, history, question), from the `done` events.

    .venv/bin/python bench/streaming.py [--ttft-ms 400] [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from posada.providers.llm import ChatMessage, OpenAIChatModel

QUESTIONS = [
    "How much is a relaxing massage at the spa?",
    "Can I rent a bike for half a day?",
    "¿Cuánto cuesta la excursión a Cayo Pelícano?",
    "What can I see when snorkelling at Punta Tortuga?",
    "¿Qué hay para ver en el Museo del Mar?",
    "Where is the best viewpoint for the sunset?",
    "¿Cómo funciona el agua caliente de la ducha?",
    "Tell me about the mangrove kayak tour",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process(args: list[str], env: dict[str, str], ready: str) -> Iterator[None]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{args[3]} exited with {proc.returncode}")
            try:
                if httpx.get(ready, timeout=2).status_code < 500:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=60)


async def upstream_ttfb(base: str, question: str) -> float:
    """Seconds to the first text from the simulated upstream, through the openai client."""
    model = OpenAIChatModel(model="gpt-4o-mini", base_url=base, api_key="bench")
    prompt = [ChatMessage("system", "Context: a short one."), ChatMessage("user", question)]
    started = time.perf_counter()
    async for _event in model.stream(prompt, max_tokens=60, request_timeout=30):
        return time.perf_counter() - started
    raise RuntimeError("no output")


async def posada_ttfb(
    http: httpx.AsyncClient, auth: dict[str, str], question: str, conversation: int | None = None
) -> tuple[float, dict[str, Any]]:
    """Seconds to posada's first event, and the final `done` event."""
    body: dict[str, Any] = {"message": question}
    if conversation is not None:
        body["conversation_id"] = conversation
    started = time.perf_counter()
    first: float | None = None
    done: dict[str, Any] = {}
    event = ""
    async with http.stream("POST", "/api/guest/chat/stream", json=body, headers=auth) as response:
        async for line in response.aiter_lines():
            if first is None and line:
                first = time.perf_counter() - started
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "done":
                done = json.loads(line.removeprefix("data: "))
    assert first is not None
    return first, done


async def measure(args: argparse.Namespace, data_dir: str) -> dict[str, Any]:
    env = {**os.environ, "POSADA_DATA_DIR": data_dir}
    llm_port, posada_port = free_port(), free_port()
    llm = f"http://127.0.0.1:{llm_port}/v1"
    served = {**env, "POSADA_LLM_BASE_URL": llm, "POSADA_LLM_API_KEY": "bench"}
    with (
        process(
            [
                sys.executable,
                "-m",
                "posada",
                "fake-llm",
                "--port",
                str(llm_port),
                "--ttft-ms",
                str(args.ttft_ms),
            ],
            env,
            f"http://127.0.0.1:{llm_port}/docs",
        ),
        process(
            [sys.executable, "-m", "posada", "serve", "--port", str(posada_port)],
            served,
            f"http://127.0.0.1:{posada_port}/readyz",
        ),
    ):
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{posada_port}", timeout=60
        ) as http:
            stay = await first_stay(data_dir)
            login = await http.post("/api/guest/login", json=stay)
            auth = {"Authorization": f"Bearer {login.json()['token']}"}
            await posada_ttfb(http, auth, "warm up")
            upstream: list[float] = []
            ours: list[float] = []
            prompts: list[dict[str, int]] = []
            layers: list[str] = []
            for _ in range(args.rounds):
                conversation = None  # each round is one conversation, so history grows
                for question in QUESTIONS:
                    upstream.append(await upstream_ttfb(llm, question))
                    seconds, done = await posada_ttfb(http, auth, question, conversation)
                    conversation = done.get("conversation_id")
                    ours.append(seconds)
                    layers.append(str(done.get("model")))
                    if done.get("prompt_tokens"):
                        prompts.append(done["prompt_tokens"])
    up, us = statistics.median(upstream) * 1000, statistics.median(ours) * 1000
    parts = {k: statistics.median(p[k] for p in prompts) for k in prompts[0]} if prompts else {}
    return {
        "upstream_ttft_setting_ms": args.ttft_ms,
        "requests": len(ours),
        "answered_by_llm": sum(layer != "None" for layer in layers),
        "upstream_ttfb_median_ms": round(up, 1),
        "posada_ttfb_median_ms": round(us, 1),
        "posada_ttfb_p95_ms": round(sorted(ours)[int(0.95 * (len(ours) - 1))] * 1000, 1),
        "added_ttfb_median_ms": round(us - up, 1),
        "prompt_tokens_median": parts,
        "prompt_tokens_total_median": sum(parts.values()),
    }


async def first_stay(data_dir: str) -> dict[str, str]:
    from posada.core.config import Settings
    from posada.runtime import Runtime

    runtime = await Runtime.open(Settings(data_dir=Path(data_dir)))
    try:
        async with runtime.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT r.check_in, r.phone_last4 FROM reservations r JOIN units u "
                "ON u.id = r.unit_id WHERE u.slug = 'coral' AND r.status <> 'cancelled' "
                "AND r.check_in <= %s AND %s < r.check_out",
                (date.today(), date.today()),
            )
            row = await cur.fetchone()
    finally:
        await runtime.close()
    assert row is not None
    return {"tenant": "casa-azul", "check_in": row[0].isoformat(), "phone_last4": row[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description="posada's added time to first byte")
    parser.add_argument("--ttft-ms", type=float, default=400.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="posada-stream-") as data_dir:
        subprocess.run(
            [sys.executable, "-m", "posada", "demo"],
            env={**os.environ, "POSADA_DATA_DIR": data_dir},
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        result = asyncio.run(measure(args, data_dir))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
