"""`posada scaletest`: replicas behind nginx, through PgBouncer, one Redis; proofs and load."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

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
from posada_bench.scale.run import ScaleOptions, run_scaletest

# The report goes to stdout (wide enough for its table when piped); progress to stderr.
out = Console(width=max(Console().width, 112))


def scaletest(
    guests: Annotated[int, typer.Option(min=1, max=2000, help="concurrent guests")] = 300,
    duration: Annotated[float, typer.Option(min=1, help="seconds of each load phase")] = 60.0,
    replicas: Annotated[int, typer.Option(min=1, max=8, help="posada serve replicas")] = 3,
    hotels: Annotated[int, typer.Option(min=0, max=8, help="generated hotels")] = 2,
    seed: Annotated[int, typer.Option(help="the workload's seed")] = 7,
    single_guests: Annotated[
        int, typer.Option(min=1, help="guests of the one-replica comparison")
    ] = 100,
    workers: Annotated[int, typer.Option(min=1, max=8, help="worker processes a replica")] = 1,
    warm_sessions: Annotated[
        int, typer.Option(min=0, help="sessions of earlier traffic to warm the caches with")
    ] = 300,
    think_scale: Annotated[float, typer.Option(min=0, help="multiplies think times")] = 1.0,
    ramp: Annotated[float, typer.Option(min=0, help="seconds over which guests start")] = 5.0,
    pool_size: Annotated[
        int, typer.Option(min=1, help="PgBouncer's server connections (default_pool_size)")
    ] = 20,
    proofs: Annotated[bool, typer.Option(help="run the cross-replica proofs")] = True,
    as_json: JsonOption = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="where the run keeps its servers' files (default ./.posada/scaletest)"),
    ] = None,
    corpus: CorpusOption = CORPUS,
    rewordings: RewordingsOption = REWORDINGS,
) -> None:
    """Three replicas behind nginx, PgBouncer, Redis: the proofs, then 300 guests, then one."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    real = real_sources(corpus, rewordings, console=console)
    options = ScaleOptions(
        guests=guests,
        duration_s=duration,
        replicas=replicas,
        hotels=hotels,
        seed=seed,
        single_guests=single_guests,
        workers=workers,
        warm_sessions=warm_sessions,
        think_scale=think_scale,
        ramp_s=ramp,
        pool_size=pool_size,
        proofs=proofs,
        data_dir=data_dir,
        corpus=real[0] if real else None,
        rewordings=real[1] if real else None,
    )
    try:
        results = asyncio.run(run_scaletest(options, say=lambda line: console.print(line)))
    except PosadaError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    write_results(as_json, results)
    print_results(results)
    if not results["passed"]:
        raise typer.Exit(1)


def _pair(summary: dict[str, Any] | None) -> str:
    if not summary or summary.get("mean") is None:
        return "—"
    return f"{summary['mean']:.1f} / {summary['max']:.0f}"


def phase_rows(label: str, phase: dict[str, Any]) -> list[list[str]]:
    """Table rows of one phase: a row per replica, then the whole."""
    rows = []
    connections = phase.get("connections", {})
    for name, fig in sorted(phase.get("per_replica", {}).items()):
        if name not in phase["replicas"]:
            continue  # nginx's attempts on a stopped replica, counted in `moved_here`
        rows.append(
            [
                label,
                name,
                cell(fig.get("throughput_qps"), "{:.1f}"),
                cell(fig.get("p50_ms"), "{:,.0f}"),
                cell(fig.get("p95_ms"), "{:,.0f}"),
                cell(fig.get("p99_ms"), "{:,.0f}"),
                cell(fig.get("errors"), "{:,}"),
                _pair(connections.get(f"{name}_in_use")),
                cell(fig.get("answer_cache_hit_rate"), "{:.1%}"),
                cell(fig.get("reuse_rate"), "{:.1%}"),
            ]
        )
    whole = phase["overall"]
    rows.append(
        [
            label,
            "all (client)",
            cell(whole.get("throughput_qps"), "{:.1f}"),
            cell(whole.get("p50_ms"), "{:,.0f}"),
            cell(whole.get("p95_ms"), "{:,.0f}"),
            cell(whole.get("p99_ms"), "{:,.0f}"),
            cell(whole.get("errors"), "{:,}"),
            _pair(connections.get("sv_active")),
            cell(whole.get("answer_cache_hit_rate"), "{:.1%}"),
            cell(whole.get("reuse_rate_repeated"), "{:.1%}"),
        ]
    )
    return rows


def print_results(results: dict[str, Any]) -> None:
    """The phases side by side, the connections and CPU, and the proofs."""
    table = Table(title="posada scaletest")
    heads = ["phase", "replica", "answers/s", "P50 ms", "P95 ms", "P99 ms", "errors"]
    heads += ["DB conns", "cache hits", "cache or FAQ"]
    for head in heads:
        table.add_column(head, justify="left" if head in ("phase", "replica") else "right")
    for key, phase in results.get("phases", {}).items():
        label = f"{len(phase['replicas'])} × {phase['guests']}"
        for row in phase_rows(label, phase):
            table.add_row(*row)
        if key != list(results["phases"])[-1]:
            table.add_section()
    out.print(table)
    out.print(
        "replicas: as nginx logged them (times: its request_time); all: as the client saw "
        "them. DB conns: in use, mean / max of 1-s samples: a replica's pool; all: "
        "PgBouncer's server connections. Hit rates over answers.",
        highlight=False,
    )
    for phase in results.get("phases", {}).values():
        _print_phase_notes(phase)
    if not results.get("workload", {}).get("fresh_rewordings"):
        out.print("no fresh rewordings in this run (no corpus): only the workload's own wordings")
    for proof in results.get("proofs", []):
        mark = "[green]passed[/green]" if proof["passed"] else "[red]FAILED[/red]"
        out.print(f"proof {proof['name']}: {mark} — {proof['detail']}", highlight=False)


def _print_phase_notes(phase: dict[str, Any]) -> None:
    label = f"{len(phase['replicas'])} × {phase['guests']}"
    c, pooled, whole = phase.get("connections", {}), phase.get("pgbouncer", {}), phase["overall"]
    out.print(
        f"{label}: PgBouncer server connections in use {_pair(c.get('sv_active'))}, "
        f"clients waiting (max) {cell((c.get('cl_waiting') or {}).get('max'), '{:.0f}')}, "
        f"PostgreSQL sessions {_pair(c.get('server_sessions'))}, "
        f"{cell(pooled.get('transactions_per_s'), '{:,.0f}')} transactions/s, wait "
        f"{cell(pooled.get('wait_us_per_transaction'), '{:,.0f}')} µs/transaction; "
        f"{whole.get('questions', 0):,} questions, TTFB P50 (streamed) "
        f"{cell(whole.get('ttfb_p50_ms'), '{:,.0f}')} ms, fresh rewordings reused "
        f"{cell(whole.get('reuse_rate_fresh'), '{:.1%}')} of {whole.get('fresh_questions', 0)}",
        highlight=False,
    )
    cores = phase.get("cpu_cores", {})
    out.print(
        f"{label}: CPU cores used: " + ", ".join(f"{k} {v:.2f}" for k, v in cores.items()),
        highlight=False,
    )
    for error in whole.get("error_samples", []):
        out.print(f"{label} error: {error}", markup=False, highlight=False)
