"""`posada dashboard`: a live terminal view of a running posada's request window."""

from __future__ import annotations

import csv
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from posada.cli._common import console

_TIMING_COLUMNS = (
    "at", "route", "count", "p50_ms", "p95_ms", "p99_ms", "max_ms", "error_rate", "slow_rate",
)  # fmt: skip
_COUNTER_COLUMNS = (
    "db_queries", "embed_computed", "llm_calls", "input_tokens", "output_tokens", "cost_usd",
)  # fmt: skip
# The CSV's columns stay the same whatever a window holds (a file is appended to across
# runs): one hit rate per answer layer posada looks up, empty when it had no lookup.
CSV_LAYERS = ("exact", "semantic", "faq", "public")
_CSV_COLUMNS = (
    _TIMING_COLUMNS + _COUNTER_COLUMNS + tuple(f"hit_rate_{layer}" for layer in CSV_LAYERS)
)


def dashboard(
    url: Annotated[str, typer.Option(help="the posada to watch")] = "http://127.0.0.1:8000",
    route: Annotated[
        str | None, typer.Option(help="one route, as `METHOD /path` or `/path`")
    ] = None,
    once: Annotated[bool, typer.Option(help="print one frame and exit")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="append per-route rows to this CSV file")
    ] = None,
    interval: Annotated[float, typer.Option(min=0.2, help="seconds between frames")] = 1.0,
) -> None:
    """Percentiles, slow routes, volume, counters, cost and the hit rate of each answer
    layer, refreshed every second."""
    # The token is read here, not from Settings: the dashboard may watch a remote posada
    # whose other settings this machine does not have.
    token = os.environ.get("POSADA_ADMIN_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {"route": route} if route else {}
    with httpx.Client(base_url=url, headers=headers, timeout=5) as http:
        if once or as_json:
            try:
                summary = _fetch(http, params)
            except _Unreachable as exc:
                console.print(f"[red]error:[/red] {url}: {exc}")
                raise typer.Exit(1) from exc
            if csv_file is not None:
                _append_csv(csv_file, summary)
            if as_json:
                typer.echo(json.dumps(summary, indent=2))
            else:
                Console().print(render(summary, url=url))
            return
        with Live(console=Console(), auto_refresh=False, screen=False) as live:
            while True:
                try:
                    summary = _fetch(http, params)
                except _Unreachable as exc:
                    live.update(Text(f"{url}: {exc}; retrying", style="red"), refresh=True)
                else:
                    if csv_file is not None:
                        _append_csv(csv_file, summary)
                    live.update(render(summary, url=url), refresh=True)
                try:
                    time.sleep(interval)
                except KeyboardInterrupt:
                    return


class _Unreachable(Exception):
    pass


def _fetch(http: httpx.Client, params: dict[str, str]) -> dict[str, Any]:
    try:
        response = http.get("/api/performance/metrics", params=params)
    except httpx.HTTPError as exc:
        if isinstance(exc, httpx.TransportError):
            raise _Unreachable(f"unreachable ({exc.__class__.__name__})") from exc
        raise
    if response.status_code in (401, 403):
        console.print(
            f"[red]error:[/red] {response.json().get('detail', response.text)}"
            " (set POSADA_ADMIN_TOKEN to the server's admin token)"
        )
        raise typer.Exit(1)
    response.raise_for_status()
    summary: dict[str, Any] = response.json()
    return summary


def _cell(value: float, unit: str = "") -> str:
    return f"{value:,.1f}{unit}" if isinstance(value, float) else f"{value:,}{unit}"


def render(summary: dict[str, Any], *, url: str) -> Group:
    """One frame: the overall figures, every route, the hit rate by layer, the slowest and
    the busiest."""
    overall = summary["overall"]
    window = summary["window"]
    totals = overall.get("totals", {})
    head = Text.assemble(
        ("posada ", "bold"),
        f"{url}  ·  {window['requests']:,} requests in window (size {window['size']:,})  ·  ",
        f"P50 {overall['p50_ms']:.1f} ms  P95 {overall['p95_ms']:.1f} ms  "
        f"P99 {overall['p99_ms']:.1f} ms  ·  ",
        f"errors {overall['error_rate']:.1%}  slow {overall['slow_rate']:.1%}  ·  ",
        f"LLM cost ${totals.get('cost_usd', 0):,.4f}",
    )
    routes = Table(title="routes", expand=True)
    for column in (
        "route", "count", "P50 ms", "P95 ms", "P99 ms", "err", "slow",
        "db q/req", "embed/req", "llm/req", "tokens", "cost $",
    ):  # fmt: skip
        routes.add_column(column, justify="left" if column == "route" else "right")
    for r in summary["routes"]:
        per, tot = r.get("per_request", {}), r.get("totals", {})
        routes.add_row(
            r["route"],
            f"{r['count']:,}",
            f"{r['p50_ms']:.1f}",
            f"{r['p95_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['error_rate']:.1%}",
            f"{r['slow_rate']:.1%}",
            _cell(per.get("db_queries", 0)),
            _cell(per.get("embed_computed", 0)),
            _cell(per.get("llm_calls", 0)),
            f"{int(tot.get('input_tokens', 0) + tot.get('output_tokens', 0)):,}",
            f"{tot.get('cost_usd', 0):,.4f}",
        )
    layers = Table(title="hit rate by layer")
    for column in ("layer", "hits", "lookups", "hit rate"):
        layers.add_column(column, justify="left" if column == "layer" else "right")
    for layer, counts in overall.get("cache", {}).items():
        hits, lookups = counts.get("hit", 0), counts.get("hit", 0) + counts.get("miss", 0)
        layers.add_row(layer, f"{hits:,}", f"{lookups:,}", f"{counts['hit_rate']:.1%}")
    slow = Table(title="slowest (P95)")
    busy = Table(title="busiest")
    for table, rows, key in (
        (slow, summary["top_slow"], "p95_ms"),
        (busy, summary["top_volume"], "count"),
    ):
        table.add_column("route")
        table.add_column(key, justify="right")
        for r in rows:
            table.add_row(r["route"], _cell(r[key]))
    return Group(head, routes, layers, slow, busy)


def _append_csv(path: Path, summary: dict[str, Any]) -> None:
    new = not path.exists() or path.stat().st_size == 0
    at = datetime.now(UTC).isoformat(timespec="seconds")
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(_CSV_COLUMNS)
        for r in summary["routes"]:
            tot, cache = r.get("totals", {}), r.get("cache", {})
            writer.writerow(
                [at, r["route"], r["count"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["max_ms"],
                 r["error_rate"], r["slow_rate"]]
                + [tot.get(k, 0) for k in _COUNTER_COLUMNS]
                + [cache.get(layer, {}).get("hit_rate", "") for layer in CSV_LAYERS]
            )  # fmt: skip
