"""The scale test's proofs on a small stack: a PostgreSQL server on TCP, PgBouncer in
transaction mode, Redis, the simulated LLM, three `posada serve` replicas behind nginx,
the demo hotel and one generated hotel.

The proofs run first, with posada's real abuse limits; then a rolling restart lifts the
limits (as `posada scaletest` does before its load) and one replica is stopped under
traffic, with SIGTERM and then SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest

from posada_bench.scale.nginx import nginx_binary
from posada_bench.scale.pgbouncer import pgbouncer_binary
from posada_bench.scale.proofs import kill_proof, run_proofs
from posada_bench.scale.stack import ScaleRun, scale_stack
from posada_bench.servers import UNLIMITED
from posada_bench.workload import build_sessions

PROOFS = [
    "reuse",
    "invalidation",
    "guest-login-throttle",
    "staff-login-throttle",
    "chat-rate-limit",
    "handoff",
]


@pytest.fixture(scope="module")
async def scale_run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ScaleRun]:
    """The stack, up for this module, with the real abuse limits."""
    missing = [name for name, found in (("pgbouncer", pgbouncer_binary()),
                                        ("nginx", nginx_binary())) if found is None]  # fmt: skip
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"the scale test needs {' and '.join(missing)} in CI (.ci/run installs them)"
            )
        pytest.skip(f"no {' or '.join(missing)} on this machine (Debian: apt-get install them)")
    folder = tmp_path_factory.mktemp("scale")
    async with scale_stack(folder=folder, replicas=3, hotels=1, seed=7, say=lambda _: None) as run:
        yield run


async def test_every_proof_holds_across_three_replicas(scale_run: ScaleRun) -> None:
    proofs = await run_proofs(scale_run, say=lambda _: None)
    assert [p.name for p in proofs] == PROOFS
    failed = {p.name: p.detail for p in proofs if not p.passed}
    assert failed == {}
    by_name = {p.name: p for p in proofs}
    reuse = by_name["reuse"].counters
    assert reuse["upstream_llm_calls"]["after_r1"] == reuse["upstream_llm_calls"]["after_reuse"]
    assert [reuse["per_replica"][r]["semantic_hit"] for r in ("r2", "r3")] == [1, 1]
    versions = by_name["invalidation"].counters["knowledge_version"]
    assert versions["second_upload"] == versions["database"] == versions["first_upload"] + 1
    for name in ("guest-login-throttle", "staff-login-throttle", "chat-rate-limit"):
        counters = by_name[name].counters
        assert counters["granted"] < counters["if_each_replica_counted_alone"], name
        assert set(counters["refused_per_replica"]) == {"r1", "r2", "r3"}, name


async def test_a_replica_stopped_under_traffic_loses_no_question(scale_run: ScaleRun) -> None:
    await asyncio.to_thread(scale_run.stack.restart_all, env=UNLIMITED)
    sessions = build_sessions(seed=9, count=200, stays=scale_run.stays)
    proof = await kill_proof(scale_run, sessions, say=lambda _: None, guests=12, duration_s=10)
    assert proof.passed, proof.detail
    term, kill = proof.counters["rounds"]
    assert (term["signal"], kill["signal"]) == ("SIGTERM", "SIGKILL")
    assert term["stored"]["questions"] == term["driver"]["answered"] > 0
    assert term["driver"]["cut"] == 0
    assert kill["stored"]["questions"] <= kill["driver"]["sent"]
    # Started again after each round: every replica answers.
    for replica in scale_run.stack.replicas:
        assert replica.process is not None
        assert replica.process.poll() is None
