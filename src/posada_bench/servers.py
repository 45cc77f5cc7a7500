"""Processes the benchmark and the load test start: `posada serve` and `posada fake-llm`.

Each runs as a child process on loopback, its output in a log file beside the benchmark's
data, and is stopped when the block ends. The server's peak memory is read from
`/proc` before it stops.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from posada.core.errors import PosadaError


class ServerFailed(PosadaError):
    """A child server exited or never became ready."""


@dataclass(frozen=True)
class Running:
    """A started child server."""

    url: str
    pid: int

    def peak_memory_mb(self) -> float | None:
        """Peak resident memory (VmHWM) of the process and its children (uvicorn's workers),
        if this system tells."""
        total = 0
        for pid in [self.pid, *_children(self.pid)]:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return round(total / 1024, 1) if total else None


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def wait_ready(
    ready: Callable[[], bool],
    *,
    process: subprocess.Popen[bytes],
    name: str,
    log: Path | None,
    timeout_s: float,
    interval_s: float = 0.2,
) -> None:
    """Return once `ready()` holds; raise if `process` exits first or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None:
            tail = log.read_text("utf-8", errors="replace")[-2000:] if log else ""
            raise ServerFailed(f"{name} exited ({process.returncode}):\n{tail}")
        if time.monotonic() > deadline:
            raise ServerFailed(f"{name} not ready after {timeout_s:.0f} s")
        time.sleep(interval_s)


def stop(process: subprocess.Popen[bytes], *, timeout_s: float, sig: int = signal.SIGTERM) -> None:
    """Send `sig` (each server's own shutdown signal), then kill it after `timeout_s`."""
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def answers(url: str, *, below: int = 500) -> bool:
    """Whether `url` answers over HTTP with a status under `below`."""
    try:
        return httpx.get(url, timeout=2).status_code < below
    except httpx.TransportError:
        return False


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def run_server(
    args: list[str], *, env: dict[str, str], ready: str, log: Path, timeout_s: float = 180
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `python -m posada ARGS`; yield once `ready` answers below 500."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        # Only ever this Python running posada itself, with arguments built here.
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "posada", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            wait_ready(
                lambda: answers(ready),
                process=process,
                name=f"`posada {args[0]}`",
                log=log,
                timeout_s=timeout_s,
                interval_s=0.3,
            )
            yield process
        finally:
            stop(process, timeout_s=30)


@contextmanager
def fake_llm(
    *, ttft_ms: float, tokens_per_s: float, embed_ms: float, log: Path
) -> Iterator[Running]:
    """The simulated upstream, its embedding model loaded; yields its `/v1` base URL."""
    port = free_port()
    args = ["fake-llm", "--port", str(port), "--ttft-ms", str(ttft_ms)]
    args += ["--tokens-per-s", str(tokens_per_s), "--embed-ms", str(embed_ms)]
    root = f"http://127.0.0.1:{port}"
    with run_server(args, env=dict(os.environ), ready=f"{root}/stats", log=log) as process:
        # It loads the model on the first request; not inside a measured one.
        httpx.post(f"{root}/v1/embeddings", json={"input": ["ready"]}, timeout=180)
        yield Running(f"{root}/v1", process.pid)


# The benchmarks measure speed: their simulated guests (many sessions per stay, all from
# 127.0.0.1) must not meet the abuse limits, unless a run sets them itself.
UNLIMITED = {
    "POSADA_LOGIN_STAY_BURST": "1000000",
    "POSADA_LOGIN_STAY_FREE": "1000000",
    "POSADA_LOGIN_ADDRESS_BURST": "1000000",
    "POSADA_CHAT_TOKEN_BURST": "1000000",
    "POSADA_CHAT_ADDRESS_BURST": "1000000",
    "POSADA_CHAT_LLM_PER_CONVERSATION_HOUR": "1000000",
    "POSADA_CHAT_STREAMS_PER_TOKEN": "1000000",
}


@contextmanager
def posada_server(*, env: dict[str, str], log: Path, workers: int = 1) -> Iterator[Running]:
    """`posada serve` with this environment; yields its base URL once ready."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["serve", "--port", str(port), "--workers", str(workers)]
    env = {**UNLIMITED, **env}
    with run_server(args, env=env, ready=f"{url}/readyz", log=log) as p:
        yield Running(url, p.pid)
