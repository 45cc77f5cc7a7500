"""Instrumentation benchmark: what timing, counters, the window and Prometheus cost a request.

On a fresh embedded database with the demo hotel, the same requests go to two apps on
the same runtime, in alternating blocks:

- instrumented: the timing middleware, counting connections, the embedding usage hook;
- bare: `POSADA_INSTRUMENTATION=false`, plain psycopg connections, no usage hook.

Requests are made in process (httpx's ASGI transport), so network noise does not hide a
fraction of a millisecond. Reported: the median of each, per route, and the difference
(target: at most 0.2 ms).

    .venv/bin/python bench/observe.py [--rounds 40] [--block 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from posada.api.app import create_app
from posada.core.config import Settings
from posada.db.pool import open_pool
from posada.demo import DEMO_SLUG, load_demo
from posada.runtime import Runtime
from posada_bench.servers import UNLIMITED

Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def _login(http: httpx.AsyncClient, runtime: Runtime) -> dict[str, str]:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT r.check_in, r.phone_last4 FROM reservations r
               JOIN tenants t ON t.id = r.tenant_id
               WHERE t.slug = %s AND r.status <> 'cancelled'
                 AND r.check_in <= current_date AND r.check_out > current_date
               ORDER BY r.id LIMIT 1""",
            (DEMO_SLUG,),
        )
        row = await cur.fetchone()
    assert row is not None, "the demo has a current stay"
    response = await http.post(
        "/api/guest/login",
        json={"tenant": DEMO_SLUG, "check_in": row[0].isoformat(), "phone_last4": row[1]},
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def _time(http: httpx.AsyncClient, call: Call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        response = await call(http)
        out.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return out


async def measure(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    # One guest asks hundreds of times a second here: the abuse limits would refuse it.
    for name, value in UNLIMITED.items():
        os.environ.setdefault(name, value)
    settings = Settings(_env_file=None, data_dir=data_dir, database_url=None)
    runtime = await Runtime.open(settings)
    await load_demo(runtime, today=date.today())
    bare_settings = settings.model_copy(update={"instrumentation": False})
    bare_pool = await open_pool(
        runtime.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        counting=False,
    )
    bare_runtime = dataclasses.replace(runtime, settings=bare_settings, pool=bare_pool)
    hook = runtime.embedder.on_usage
    apps = {
        "instrumented": create_app(runtime=runtime),
        "bare": create_app(runtime=bare_runtime),
    }
    clients = {
        name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b")
        for name, app in apps.items()
    }
    auth = await _login(clients["instrumented"], runtime)
    questions = iter(range(10**9))

    async def chat(http: httpx.AsyncClient) -> httpx.Response:
        # A new conversation each time, so history never grows; an FAQ answer, no LLM.
        return await http.post(
            "/api/guest/chat",
            json={"message": "What time is check-out?"},
            headers={**auth, "X-Bench": str(next(questions))},
        )

    calls: dict[str, Call] = {
        "GET /healthz": lambda http: http.get("/healthz"),
        "GET /api/public/{slug}/info": lambda http: http.get(f"/api/public/{DEMO_SLUG}/info"),
        "POST /api/guest/chat (FAQ)": chat,
    }
    samples: dict[str, dict[str, list[float]]] = {
        route: {"instrumented": [], "bare": []} for route in calls
    }
    for route, call in calls.items():
        for name, http in clients.items():  # warm up both
            runtime.embedder.on_usage = hook if name == "instrumented" else None
            await _time(http, call, args.block)
        for _ in range(args.rounds):
            for name, http in clients.items():
                runtime.embedder.on_usage = hook if name == "instrumented" else None
                samples[route][name] += await _time(http, call, args.block)
    runtime.embedder.on_usage = hook
    for client in clients.values():
        await client.aclose()
    await bare_pool.close()
    await runtime.close()

    results: dict[str, Any] = {}
    for route, by in samples.items():
        on, off = statistics.median(by["instrumented"]), statistics.median(by["bare"])
        results[route] = {
            "n": len(by["instrumented"]),
            "instrumented_median_ms": round(on, 3),
            "bare_median_ms": round(off, 3),
            "overhead_ms": round(on - off, 3),
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="posada-observe-") as data_dir:
        results = asyncio.run(measure(args, Path(data_dir)))
    print(f"{'route':34} {'n':>5} {'instrumented':>13} {'bare':>9} {'overhead':>9}")
    for route, r in results.items():
        print(
            f"{route:34} {r['n']:>5} {r['instrumented_median_ms']:>10.3f} ms "
            f"{r['bare_median_ms']:>6.3f} ms {r['overhead_ms']:>+6.3f} ms"
        )
    worst = max(r["overhead_ms"] for r in results.values())
    verdict = "within" if worst <= 0.2 else "OVER"
    print(f"largest median overhead: {worst:+.3f} ms ({verdict} the 0.2 ms target)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if worst <= 0.2 else 1


if __name__ == "__main__":
    sys.exit(main())
