"""The issue's size and slow-client probes, with raw sockets, against a real `posada serve`.

    .venv/bin/python bench/limits.py [--src DIR] [--json FILE]

`--src` runs the server from another source tree (a checkout of an older commit) to
compare. The server gets a fresh embedded database of its own (no demo: the login probes
name an unknown hotel, a 404 after one query, which is what is timed). Figures: the status
of each oversized request and how much of it went out before the answer; how many of 400
stalled bodies and 300 half-sent headers are still open 20 s later; the login route's P50
while they are held, from the client and from the server's own request window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from posada_bench.servers import free_port, run_server

MB = 1024 * 1024
_LOGIN = b"POST /api/guest/login HTTP/1.1\r\nHost: x\r\n"


async def _answer(reader: asyncio.StreamReader) -> int | None:
    try:
        line = await asyncio.wait_for(reader.readline(), 30)
    except (TimeoutError, ConnectionError):
        return None
    return int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else None


async def oversized_body(host: str, port: int, size: int, *, chunked: bool) -> dict[str, Any]:
    """POST `size` bytes to the chat route, unauthenticated; the status and bytes sent."""
    reader, writer = await asyncio.open_connection(host, port)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = "POST /api/guest/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    writer.write(f"{head}{framing}\r\n\r\n".encode())
    # Read while writing: once the server answers and closes, the rest of the write fails
    # and the connection is reset; the answer must be read before that.
    answer = asyncio.create_task(_answer(reader))
    sent = 0
    piece = b"x" * 65536
    try:
        while sent < size:
            data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
            writer.write(data)
            await writer.drain()
            sent += len(piece)
        if chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    except ConnectionError:
        pass
    status = await answer
    writer.close()
    # What the client got into its socket before the refusal; the kernel's buffers take
    # some megabytes on loopback, the server reads the first 64 KB.
    return {"status": status, "client_sent_mb": round(sent / MB, 2)}


async def big_header(host: str, port: int, size: int) -> int | None:
    """GET /healthz with one header of `size` bytes; the status."""
    reader, writer = await asyncio.open_connection(host, port)
    answer = asyncio.create_task(_answer(reader))
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n")
        await writer.drain()
    except ConnectionError:
        pass
    status = await answer
    writer.close()
    return status


async def slow_clients(host: str, port: int, base: str) -> dict[str, Any]:
    """400 stalled bodies and 300 half-sent headers, held 20 s while logins are timed."""
    held: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    for i in range(700):
        reader, writer = await asyncio.open_connection(host, port)
        if i < 400:
            writer.write(
                b"POST /api/guest/login HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"
            )
        else:
            writer.write(b"POST /api/guest/login HTTP/1.1\r\nHost: x\r\nContent-Ty")
        held.append((reader, writer))
    login = {"tenant": "no-such-hotel", "check_in": "2026-01-01", "phone_last4": "1234"}
    times = []
    start = time.monotonic()
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        while time.monotonic() - start < 20:
            t0 = time.perf_counter()
            await http.post("/api/guest/login", json=login)
            times.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.2)
        still_open = [not await _closed(reader) for reader, _ in held]
        for _, writer in held:
            writer.close()
        await asyncio.sleep(1)  # the requests of the sockets just closed end and are recorded
        window = (await http.get("/api/performance/metrics", params={"format": "full"})).json()
    logins = [r for r in window["recent"] if r["route"].endswith("/api/guest/login")]
    answered = [r["duration_ms"] for r in logins if r["status"] == 404]
    return {
        "still_open_after_20s": sum(still_open),
        "of": len(held),
        "client_login_p50_ms": round(statistics.median(times), 1),
        "logins_timed": len(times),
        "server_login_p50_ms_all": round(statistics.median(r["duration_ms"] for r in logins), 1),
        "server_login_p50_ms_answered": round(statistics.median(answered), 1),
        "server_login_statuses": dict(sorted(_count(str(r["status"]) for r in logins).items())),
    }


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


async def _closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server has closed this connection (after whatever it sent)."""
    try:
        while True:
            if not await asyncio.wait_for(reader.read(65536), 0.05):
                return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def probe(base: str) -> dict[str, Any]:
    """Every probe against the server at `base`."""
    host, port = "127.0.0.1", int(base.rsplit(":", 1)[1])
    results: dict[str, Any] = {}
    results["body_50mb_content_length"] = await oversized_body(host, port, 50 * MB, chunked=False)
    results["bodies_8x10mb_chunked"] = await asyncio.gather(
        *[oversized_body(host, port, 10 * MB, chunked=True) for _ in range(8)]
    )
    results["header_1mb_status"] = await big_header(host, port, MB)
    results["slow_clients"] = await slow_clients(host, port, base)
    return results


def main() -> None:
    """Start a server (from --src, or these sources), probe it, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, default=Path(__file__).parent.parent / "src")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="posada-limits-") as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSADA_")}
        env |= {
            "PYTHONPATH": str(args.src.resolve()),
            "POSADA_DATA_DIR": data,
            "POSADA_LOG_LEVEL": "warning",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }
        log = Path(data) / "serve.log"
        with run_server(["serve", "--port", str(port)], env=env, ready=f"{base}/readyz", log=log):
            results = asyncio.run(probe(base))
    text = json.dumps({"src": str(args.src), **results}, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
