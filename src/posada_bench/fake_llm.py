"""A simulated OpenAI-compatible upstream: a test and benchmark instrument, not a model.

`posada fake-llm` serves `/v1/chat/completions` (streaming or not, with `usage`) and
`/v1/embeddings` (real vectors from the local model) at a configurable pace, so that
tests and benchmarks exercise posada's real client code against realistic latency and
token counts with no network and no cost. Its "answer" is the sentence of the context it
was sent that shares the most words with the question: enough to check that context
reached the model, nothing more.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from posada.providers.llm import estimate_tokens
from posada.providers.types import Embedder

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Pace:
    """How the simulated upstream behaves."""

    ttft_ms: float = 400.0
    tokens_per_s: float = 60.0
    embed_ms: float = 80.0
    error_rate: float = 0.0
    seed: int = 7
    fail_after_tokens: int | None = None  # drop a streamed answer's connection after N tokens


def compose_answer(messages: list[dict[str, Any]], *, limit_words: int = 60) -> str:
    """The context sentence sharing most words with the last user message."""
    texts = [str(m.get("content") or "") for m in messages]
    question = next(
        (str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), ""
    )
    asked = {w.lower() for w in _WORD.findall(question) if len(w) > 3}
    sentences = [
        s.strip()
        for text in texts
        for s in re.split(r"(?<=[.!?])\s+|\n+", text)
        if s.strip() and s.strip() != question.strip()
    ]
    if not sentences:
        return "I have no context to answer from."
    best = max(sentences, key=lambda s: len(asked & {w.lower() for w in _WORD.findall(s)}))
    return " ".join(best.split()[:limit_words])


def create_fake_llm_app(pace: Pace, embedder: Embedder) -> FastAPI:
    """The simulated upstream's ASGI app."""
    app = FastAPI(title="posada fake-llm (test instrument)")
    rng = random.Random(pace.seed)
    # How streams ended: lets a test see that posada hung up on a guest who left.
    # `whole` counts answers asked for in one piece (no streaming).
    stats = {"started": 0, "completed": 0, "cancelled": 0, "whole": 0}

    @app.get("/stats")
    async def get_stats() -> dict[str, int]:
        return stats

    def fails() -> bool:
        return pace.error_rate > 0 and rng.random() < pace.error_rate

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        if fails():
            return JSONResponse({"error": {"message": "simulated failure"}}, status_code=500)
        messages = list(body.get("messages") or [])
        answer = compose_answer(messages)
        words = answer.split(" ")
        limit = int(body.get("max_tokens") or body.get("max_completion_tokens") or len(words))
        tokens = [w if i == 0 else f" {w}" for i, w in enumerate(words[:limit])]
        usage = {
            "prompt_tokens": sum(
                estimate_tokens(str(m.get("content") or "")) + 4 for m in messages
            ),
            "completion_tokens": len(tokens),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        model = str(body.get("model") or "fake")
        ident = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        if not body.get("stream"):
            stats["whole"] += 1
            await asyncio.sleep(pace.ttft_ms / 1000 + len(tokens) / pace.tokens_per_s)
            return {
                "id": ident,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "usage": usage,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "".join(tokens)},
                    }
                ],
            }
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            _counted(_stream(ident, model, tokens, usage if include_usage else None, pace), stats),
            media_type="text/event-stream",
        )

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        body = await request.json()
        if fails():
            return JSONResponse({"error": {"message": "simulated failure"}}, status_code=500)
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        await asyncio.sleep(pace.embed_ms / 1000)
        vectors = await embedder.embed_batch([str(t) for t in texts])
        dims = int(body.get("dimensions") or vectors.shape[1])
        if dims < vectors.shape[1]:  # a prefix, renormalised, as shortened embeddings are
            vectors = vectors[:, :dims]
            vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return {
            "object": "list",
            "model": str(body.get("model") or "fake-embedding"),
            "data": [
                {"object": "embedding", "index": i, "embedding": v.tolist()}
                for i, v in enumerate(vectors)
            ],
            "usage": {
                "prompt_tokens": sum(estimate_tokens(str(t)) for t in texts),
                "total_tokens": sum(estimate_tokens(str(t)) for t in texts),
            },
        }

    return app


async def _counted(chunks: AsyncIterator[bytes], stats: dict[str, int]) -> AsyncIterator[bytes]:
    stats["started"] += 1
    try:
        async for chunk in chunks:
            yield chunk
    except (asyncio.CancelledError, GeneratorExit):
        stats["cancelled"] += 1
        raise
    stats["completed"] += 1


async def _stream(
    ident: str, model: str, tokens: list[str], usage: dict[str, int] | None, pace: Pace
) -> AsyncIterator[bytes]:
    def event(payload: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(payload)}\n\n".encode()

    base = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    await asyncio.sleep(pace.ttft_ms / 1000)
    for index, token in enumerate(tokens):
        if pace.fail_after_tokens is not None and index >= pace.fail_after_tokens:
            # Mid-answer, the upstream goes away: the connection drops, no end of stream.
            raise ConnectionAbortedError("simulated upstream failure mid-answer")
        if index:
            await asyncio.sleep(1 / pace.tokens_per_s)
        yield event({**base, "choices": [{"index": 0, "delta": {"content": token}}]})
    yield event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage is not None:
        yield event({**base, "choices": [], "usage": usage})
    yield b"data: [DONE]\n\n"
