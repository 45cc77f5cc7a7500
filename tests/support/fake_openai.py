"""An OpenAI embeddings endpoint at the edge of the world: the real client code, an
injected transport that answers as the API does (and records what it was sent)."""

from __future__ import annotations

import json

import httpx2


def fake_openai(seen: list[dict[str, object]], dims: int) -> httpx2.AsyncClient:
    def handle(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        seen.append({"path": request.url.path, "auth": request.headers["authorization"], **body})
        rows = [
            {
                "object": "embedding",
                "index": i,
                "embedding": [3.0 if j == i else 0.0 for j in range(dims)],
            }
            for i in range(len(body["input"]))
        ][::-1]  # out of order, as the API allows
        return httpx2.Response(
            200,
            json={
                "object": "list",
                "data": rows,
                "model": body["model"],
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            },
        )

    return httpx2.AsyncClient(transport=httpx2.MockTransport(handle))
