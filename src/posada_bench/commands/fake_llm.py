"""`posada fake-llm`: the simulated OpenAI-compatible upstream (a test instrument)."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from posada.core.config import Settings
from posada.providers.embeddings import build_embedders
from posada_bench.fake_llm import Pace, create_fake_llm_app


def fake_llm(
    port: Annotated[int, typer.Option(help="port to listen on (127.0.0.1)")] = 8100,
    ttft_ms: Annotated[float, typer.Option(min=0, help="time to first token")] = 400.0,
    tokens_per_s: Annotated[float, typer.Option(min=0.1, help="generation pace")] = 60.0,
    embed_ms: Annotated[float, typer.Option(min=0, help="latency of /v1/embeddings")] = 80.0,
    error_rate: Annotated[float, typer.Option(min=0, max=1, help="share of 500s")] = 0.0,
    seed: Annotated[int, typer.Option(help="seed of the simulated failures")] = 7,
    fail_after_tokens: Annotated[
        int | None, typer.Option(min=0, help="drop streamed answers after N tokens")
    ] = None,
) -> None:
    """Serve a simulated OpenAI-compatible LLM and embedding API for tests and benchmarks."""
    # The local model's question vectors (POSADA_EMBEDDING_MODEL, as posada itself reads
    # it), so that a database it embedded is searched alike through this "API". The model
    # loads on the first /v1/embeddings request: most uses only chat.
    _, embedder = build_embedders(Settings(embedding_provider="local"))
    pace = Pace(
        ttft_ms=ttft_ms,
        tokens_per_s=tokens_per_s,
        embed_ms=embed_ms,
        error_rate=error_rate,
        seed=seed,
        fail_after_tokens=fail_after_tokens,
    )
    uvicorn.run(
        create_fake_llm_app(pace, embedder), host="127.0.0.1", port=port, log_level="warning"
    )
