"""`posada bench`: the optimized and baseline profiles on one workload, and their ratios."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from posada.cli._common import console
from posada.core.errors import PosadaError
from posada_bench.commands._common import (
    CORPUS,
    REWORDINGS,
    CorpusOption,
    JsonOption,
    RewordingsOption,
    cell,
    real_sources,
    write_results,
)
from posada_bench.runner import PACE, BenchOptions, Profile, run_bench

out = Console()  # the report goes to stdout; progress and errors to stderr

ROWS = (
    ("response time P50 (client)", "p50_ms", "{:,.1f} ms"),
    ("response time P95 (client)", "p95_ms", "{:,.1f} ms"),
    ("time to first byte P50, streamed", "ttfb_p50_ms", "{:,.1f} ms"),
    ("database queries per request", "db_queries_per_request", "{:.2f}"),
    ("embedding computations per question", "embeddings_per_question", "{:.2f}"),
    ("answer-cache hit rate", "answer_cache_hit_rate", "{:.1%}"),
    ("FAQ hit rate", "faq_hit_rate", "{:.1%}"),
    ("reused (cache or FAQ), repeated wordings", "reuse_rate_repeated", "{:.1%}"),
    ("reused (cache or FAQ), fresh rewordings", "reuse_rate_fresh", "{:.1%}"),
    ("AI cost per 1,000 questions", "cost_per_1000_questions_usd", "${:,.4f}"),
    ("LLM calls per question", "llm_calls_per_question", "{:.2f}"),
    ("questions answered", "questions", "{:,}"),
    ("errors", "errors", "{:,}"),
    ("throughput", "throughput_qps", "{:.2f} q/s"),
    ("server peak memory", "peak_memory_mb", "{:,.0f} MB"),
)


def bench(
    profile: Annotated[
        Literal["baseline", "optimized", "both"], typer.Option(help="which configuration(s)")
    ] = "both",
    guests: Annotated[int, typer.Option(min=1, max=500, help="concurrent guests")] = 10,
    duration: Annotated[float, typer.Option(min=1, help="seconds per profile")] = 60.0,
    seed: Annotated[int, typer.Option(help="the workload's seed")] = 42,
    hotels: Annotated[int, typer.Option(min=0, max=8, help="generated hotels")] = 2,
    ttft_ms: Annotated[float, typer.Option(min=0, help="LLM time to first token")] = PACE.ttft_ms,
    tokens_per_s: Annotated[float, typer.Option(min=1, help="LLM output pace")] = PACE.tokens_per_s,
    embed_ms: Annotated[float, typer.Option(min=0, help="embedding API latency")] = PACE.embed_ms,
    think_scale: Annotated[float, typer.Option(min=0, help="multiplies think times")] = 1.0,
    ramp: Annotated[
        float, typer.Option(min=0, help="seconds over which the guests start, one after another")
    ] = 1.0,
    workers: Annotated[int, typer.Option(min=1, max=16, help="server worker processes")] = 1,
    warm_sessions: Annotated[
        int, typer.Option(min=0, help="sessions of earlier traffic to warm the caches with")
    ] = 0,
    as_json: JsonOption = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="where the run keeps its database and logs (default ./.posada/bench)"),
    ] = None,
    corpus: CorpusOption = CORPUS,
    rewordings: RewordingsOption = REWORDINGS,
) -> None:
    """Run posada against the simulated LLM with the optimized and/or baseline profile."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    profiles: tuple[Profile, ...] = ("baseline", "optimized") if profile == "both" else (profile,)
    real = real_sources(corpus, rewordings, console=console)
    options = BenchOptions(
        profiles=profiles,
        guests=guests,
        duration_s=duration,
        seed=seed,
        hotels=hotels,
        ttft_ms=ttft_ms,
        tokens_per_s=tokens_per_s,
        embed_ms=embed_ms,
        think_scale=think_scale,
        ramp_s=ramp,
        warm_sessions=warm_sessions,
        workers=workers,
        data_dir=data_dir,
        corpus=real[0] if real else None,
        rewordings=real[1] if real else None,
    )
    try:
        results = asyncio.run(run_bench(options, say=lambda line: console.print(line)))
    except PosadaError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    write_results(as_json, results)
    print_results(results)


def print_results(results: dict[str, Any]) -> None:
    """Figures per profile and the optimized/baseline ratios."""
    profiles = results["profiles"]
    ratios = results.get("ratios", {})
    table = Table(title="posada bench")
    table.add_column("figure")
    for name in profiles:
        table.add_column(name, justify="right")
    if ratios:
        table.add_column("optimized / baseline", justify="right")
    for label, key, pattern in ROWS:
        cells = [cell(profiles[name].get(key), pattern) for name in profiles]
        if ratios:
            cells.append(cell(ratios.get(key), "{:.3f}×"))
        table.add_row(label, *cells)
    out.print(table)
    workload = results.get("workload", {})
    out.print(
        f"workload: {workload.get('questions', 0):,} questions in {workload.get('sessions', 0):,} "
        f"sessions, {len(workload.get('tenants', []))} hotels, "
        f"{workload.get('streamed_questions', 0):,} streamed; layers: "
        + "; ".join(f"{name} {profiles[name].get('layers')}" for name in profiles),
        highlight=False,
    )
    for name in profiles:
        layers = profiles[name].get("server_ms_by_layer", {})
        out.print(
            f"{name} server time by layer: "
            + "; ".join(
                f"{layer} P50 {v['p50_ms']:.1f} ms P99 {v['p99_ms']:.1f} ms ({v['count']})"
                for layer, v in layers.items()
            ),
            highlight=False,
        )
        for error in profiles[name].get("error_samples", []):
            out.print(f"{name} error: {error}", markup=False, highlight=False)
