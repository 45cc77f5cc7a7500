"""`posada bench`: the optimized and the baseline profile on the same workload, in one run.

The run owns everything it measures: a fresh embedded PostgreSQL under its own folder
with the demo and generated hotels, `posada fake-llm` as the LLM and embedding API
(realistic latency, usage and prices), and one real `posada serve` per profile, driven
over loopback by the same seeded sessions. The optimized profile is the build under
test: it takes the caller's `POSADA_*` settings (a `POSADA_STAGE_DELAY_MS` slows it, for
example). The baseline is fixed: `POSADA_PROFILE=baseline`, embeddings from the API.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from posada.runtime import Runtime
from posada_bench.dataset import bench_database
from posada_bench.driver import drive, warm_up
from posada_bench.fake_llm import Pace
from posada_bench.report import figures, ratios
from posada_bench.rewordings import interleave, load_facts, rewording_sessions
from posada_bench.servers import Running, fake_llm, posada_server
from posada_bench.workload import Mix, build_sessions, describe

Profile = Literal["baseline", "optimized"]
PACE = Pace()  # the simulated LLM's realistic defaults
Say = Callable[[str], None]

# What the caller may not set for a server the run starts: where it lives and what it
# talks to belong to the run.
_OWNED = ("POSADA_DATA_DIR", "POSADA_DATABASE_URL", "POSADA_JWT_SECRET", "POSADA_LLM_")


@dataclass(frozen=True)
class BenchOptions:
    """How to run the benchmark."""

    profiles: tuple[Profile, ...]
    guests: int = 10
    duration_s: float = 60.0
    seed: int = 42
    hotels: int = 2  # generated, besides the demo
    ttft_ms: float = PACE.ttft_ms
    tokens_per_s: float = PACE.tokens_per_s
    embed_ms: float = PACE.embed_ms  # a hosted embedding API's latency
    think_scale: float = 1.0
    ramp_s: float = 1.0  # the measured guests start one after another over this time
    # Sessions of "yesterday's" traffic (another seed, the same mix) played before the
    # measured run, as fast as they go, to the profiles that have caches: a hotel's caches
    # are warm all day, not empty at every question.
    warm_sessions: int = 0
    workers: int = 1  # uvicorn worker processes of each profile's server
    mix: Mix = field(default_factory=Mix)
    data_dir: Path | None = None  # default ./.posada/bench, reused (and reset) by every run
    # Real hotels' documents and a labelled set over them: fresh rewordings (see rewordings).
    corpus: Path | None = None
    rewordings: Path | None = None


def server_env(profile: Profile, *, runtime: Runtime, llm: str, secret: str) -> dict[str, str]:
    """The environment of one profile's `posada serve`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_OWNED)}
    if profile == "baseline":
        base = {k: v for k, v in base.items() if not k.startswith("POSADA_")}
    env = {
        **base,
        "POSADA_DATA_DIR": str(runtime.settings.data_dir),
        "POSADA_DATABASE_URL": runtime.database_url,
        "POSADA_JWT_SECRET": secret,
        "POSADA_LLM_BASE_URL": llm,
        "POSADA_LLM_API_KEY": "bench",
        "POSADA_LOG_LEVEL": "warning",
        "POSADA_PROFILE": profile,
        # Requests slower than this are logged: the baseline's would all be.
        "POSADA_SLOW_REQUEST_MS": "60000",
        # The driver reads each answer's layer, counters and server time from the body.
        "POSADA_EXPOSE_TIMINGS": "true",
        # A Redis of the caller's starts empty for this run: keys of its own.
        "POSADA_REDIS_PREFIX": f"bench-{hashlib.sha256(secret.encode()).hexdigest()[:12]}",
    }
    if profile == "baseline":
        env |= {
            "POSADA_EMBEDDING_PROVIDER": "openai",
            # The model whose vectors `posada fake-llm` serves (the local one, as for the
            # database): a server refuses a database embedded by another model.
            "POSADA_EMBEDDING_MODEL": runtime.settings.embedding_model,
            "POSADA_EMBEDDING_DIM": str(runtime.settings.embedding_dim),
            "POSADA_OPENAI_API_KEY": "bench",
            "POSADA_OPENAI_BASE_URL": llm,
        }
    return env


async def run_bench(options: BenchOptions, *, say: Say = print) -> dict[str, Any]:
    """Run the profiles on one workload; return the results (the `--json` document)."""
    folder = options.data_dir or Path(".posada/bench")
    real = options.corpus if options.rewordings is not None else None
    async with bench_database(
        folder, hotels=options.hotels, seed=options.seed, say=say, corpus=real
    ) as (runtime, stays, hotels, real_stays):
        sessions = build_sessions(
            seed=options.seed, count=options.guests * 200 + 100, stays=stays, mix=options.mix
        )
        yesterday = build_sessions(
            seed=options.seed + 1, count=options.warm_sessions, stays=stays, mix=options.mix
        )
        if options.rewordings is not None and real_stays:
            facts = load_facts(options.rewordings)
            first = rewording_sessions(facts, real_stays, seed=options.seed, first=True)
            fresh = rewording_sessions(facts, real_stays, seed=options.seed, first=False)
            yesterday = interleave(yesterday, first) if yesterday else first
            sessions = interleave(sessions, fresh)
            say(f"rewordings: {len(facts)} facts of the test half, fresh wordings in the run")
        results: dict[str, Any] = {
            "version": 1,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "options": {
                **{
                    k: str(v) if isinstance(v, Path) else v
                    for k, v in asdict(options).items()
                    if k not in ("data_dir", "mix")
                },
                "mix": asdict(options.mix),
            },
            "workload": {"hotels": [h.slug for h in hotels], "stays": len(stays)},
            "profiles": {},
        }
        secret = secrets.token_urlsafe(48)
        with fake_llm(
            ttft_ms=options.ttft_ms,
            tokens_per_s=options.tokens_per_s,
            embed_ms=options.embed_ms,
            log=folder / "fake-llm.log",
        ) as upstream:
            for profile in options.profiles:
                env = server_env(profile, runtime=runtime, llm=upstream.url, secret=secret)
                log = folder / f"posada-{profile}.log"
                with posada_server(env=env, log=log, workers=options.workers) as server:
                    say(f"{profile}: {options.guests} guests for {options.duration_s:.0f} s ...")
                    warm = yesterday if profile == "optimized" else []
                    if warm:
                        say(f"{profile}: warming the caches with {len(warm)} sessions ...")
                    results["profiles"][profile] = await _measure(
                        server, sessions, options, warm=warm
                    )
        results["workload"] |= describe(
            sessions[: max(p["sessions"] for p in results["profiles"].values())]
        )
        if {"baseline", "optimized"} <= set(results["profiles"]):
            results["ratios"] = ratios(
                results["profiles"]["optimized"], results["profiles"]["baseline"]
            )
        return results


async def _measure(
    server: Running, sessions: list[Any], options: BenchOptions, *, warm: list[Any]
) -> dict[str, Any]:
    await warm_up(server.url, sessions[0].stay)
    if warm:
        await drive(
            base_url=server.url,
            sessions=warm,
            guests=max(options.guests, 50),  # a replay: as many at once as the server takes
            duration_s=3600,
            think_scale=0,
        )
    run = await drive(
        base_url=server.url,
        sessions=sessions,
        guests=options.guests,
        duration_s=options.duration_s,
        think_scale=options.think_scale,
        ramp_s=options.ramp_s,
    )
    return figures(run, peak_memory_mb=server.peak_memory_mb())
