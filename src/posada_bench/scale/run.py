"""`posada scaletest`: the stack, the proofs, the load through nginx, one replica beside it.

1. The stack comes up with posada's real abuse limits and the proofs run
   (posada_bench.scale.proofs).
2. A rolling restart lifts the limits (the simulated guests share one address); the
   caches are warmed with yesterday's sessions, as the benchmark does; `guests` are driven
   through nginx for `duration_s` and measured.
3. The kill proof: one replica stopped mid-traffic.
4. All replicas but the first are stopped and `single_guests` are driven through nginx
   for the comparison (sessions of another seed, over caches already warm).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from posada_bench.driver import drive
from posada_bench.rewordings import interleave, load_facts, rewording_sessions
from posada_bench.scale.load import measure
from posada_bench.scale.stack import ScaleRun, scale_stack
from posada_bench.servers import UNLIMITED
from posada_bench.workload import Session, build_sessions, describe

Say = Callable[[str], None]


@dataclass(frozen=True)
class ScaleOptions:
    """How to run the scale test."""

    guests: int = 300
    duration_s: float = 60.0
    replicas: int = 3
    hotels: int = 2
    seed: int = 7
    single_guests: int = 100
    workers: int = 1  # uvicorn workers per replica
    warm_sessions: int = 300
    think_scale: float = 1.0
    ramp_s: float = 5.0
    pool_size: int = 20  # PgBouncer's server connections for posada's database
    proofs: bool = True
    data_dir: Path | None = None  # default ./.posada/scaletest, reset by every run
    corpus: Path | None = None  # real hotels' documents: fresh rewordings
    rewordings: Path | None = None


async def run_scaletest(options: ScaleOptions, *, say: Say = print) -> dict[str, Any]:
    """Run every phase; return the results (the `--json` document)."""
    folder = options.data_dir or Path(".posada/scaletest")
    real = options.corpus if options.rewordings is not None else None
    async with scale_stack(
        folder=folder,
        replicas=options.replicas,
        hotels=options.hotels,
        seed=options.seed,
        workers=options.workers,
        say=say,
        corpus=real,
        pool_size=options.pool_size,
    ) as run:
        results = _header(options, run)
        proofs = await _proofs(run, say=say) if options.proofs else []
        say("rolling restart with the abuse limits lifted for the load ...")
        await asyncio.to_thread(run.stack.restart_all, env=UNLIMITED)
        sessions, yesterday, fresh = _workload(options, run)
        results["workload"] |= {**describe(sessions[:2000]), "fresh_rewordings": fresh}
        if not fresh:
            say("no fresh rewordings (no corpus): only the workload's own wordings are asked")
        await _warm(run, yesterday, guests=options.guests, say=say)
        say(f"load: {options.guests} guests through nginx for {options.duration_s:.0f} s ...")
        results["phases"]["scaled"] = await _phase(run, sessions, options.guests, options)
        proofs += await _kill(run, options, say=say)
        single = run.stack.replicas[:1]
        for replica in run.stack.replicas[1:]:
            await asyncio.to_thread(run.stack.stop_replica, replica.name)
        say(f"one replica: {options.single_guests} guests for {options.duration_s:.0f} s ...")
        others = build_sessions(
            seed=options.seed + 3, count=options.single_guests * 200 + 100, stays=run.stays
        )
        results["phases"]["single"] = await _phase(
            run, others, options.single_guests, options, replicas=single
        )
    results["proofs"] = proofs
    results["passed"] = all(p["passed"] for p in proofs)
    return results


def _header(options: ScaleOptions, run: ScaleRun) -> dict[str, Any]:
    return {
        "version": 1,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "stack": {
            "replicas": [r.name for r in run.stack.replicas],
            "workers_per_replica": run.stack.workers,
            "pooler": "pgbouncer, transaction mode",
        },
        "workload": {"hotels": [h.slug for h in run.hotels], "stays": len(run.stays)},
        "phases": {},
    }


def _workload(options: ScaleOptions, run: ScaleRun) -> tuple[list[Session], list[Session], int]:
    """The measured sessions, yesterday's (warming the caches), and how many fresh
    rewordings the measured ones hold."""
    count = options.guests * 200 + 100
    sessions = build_sessions(seed=options.seed, count=count, stays=run.stays)
    yesterday = build_sessions(seed=options.seed + 1, count=options.warm_sessions, stays=run.stays)
    if options.rewordings is None or not run.real_stays:
        return sessions, yesterday, 0
    facts = load_facts(options.rewordings)
    first = rewording_sessions(facts, run.real_stays, seed=options.seed, first=True)
    fresh = rewording_sessions(facts, run.real_stays, seed=options.seed, first=False)
    yesterday = interleave(yesterday, first) if yesterday else first
    return interleave(sessions, fresh), yesterday, sum(len(s.turns) for s in fresh)


async def _warm(run: ScaleRun, sessions: list[Session], *, guests: int, say: Say) -> None:
    if not sessions:
        return
    say(f"warming the caches with {len(sessions)} sessions of yesterday, through nginx ...")
    await drive(
        base_url=run.stack.site,
        sessions=sessions,
        guests=min(max(guests, 50), len(sessions)),
        duration_s=3600,
        think_scale=0,
    )


async def _phase(
    run: ScaleRun,
    sessions: list[Session],
    guests: int,
    options: ScaleOptions,
    *,
    replicas: list[Any] | None = None,
) -> dict[str, Any]:
    return await measure(
        run,
        sessions,
        guests=guests,
        duration_s=options.duration_s,
        replicas=replicas or run.stack.replicas,
        think_scale=options.think_scale,
        ramp_s=options.ramp_s,
    )


def _proof_dict(proof: Any) -> dict[str, Any]:
    return {
        "name": str(proof.name),
        "passed": bool(proof.passed),
        "counters": dict(proof.counters),
        "detail": str(proof.detail),
    }


async def _proofs(run: ScaleRun, *, say: Say) -> list[dict[str, Any]]:
    try:
        from posada_bench.scale.proofs import run_proofs
    except ImportError as exc:  # engineer "proofs" writes them
        say(f"proofs not available: {exc}")
        return [{"name": "proofs", "passed": False, "counters": {}, "detail": str(exc)}]
    say("proofs (the real abuse limits) ...")
    try:
        return [_proof_dict(p) for p in await run_proofs(run, say=say)]
    except Exception as exc:  # a broken proof fails the run, after the load is measured
        say(f"the proofs stopped: {type(exc).__name__}: {exc}")
        return [{"name": "proofs", "passed": False, "counters": {}, "detail": repr(exc)}]


async def _kill(run: ScaleRun, options: ScaleOptions, *, say: Say) -> list[dict[str, Any]]:
    if not options.proofs:
        return []
    try:
        from posada_bench.scale.proofs import kill_proof
    except ImportError as exc:
        return [{"name": "kill", "passed": False, "counters": {}, "detail": str(exc)}]
    sessions = build_sessions(seed=options.seed + 2, count=400, stays=run.stays)
    try:
        return [_proof_dict(await kill_proof(run, sessions, say=say))]
    except Exception as exc:
        say(f"the kill proof stopped: {type(exc).__name__}: {exc}")
        return [{"name": "kill", "passed": False, "counters": {}, "detail": repr(exc)}]
