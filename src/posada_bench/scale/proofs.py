"""The scale test's proofs: what several replicas share, shown with counters.

Each proof talks to the replicas directly (`Replica.url`) where it must show which replica
did what, and through nginx (`Stack.site`) where the point is the balancer:

- reuse: an answer given by r1 is reused by r2 and r3 (exact from Redis, rewordings from
  the semantic cache in PostgreSQL), with no more LLM calls;
- invalidation: an upload through r1's staff API changes an answer every replica had
  cached; r2 and r3 answer from the new knowledge on their first ask;
- the guest and staff login throttles and the chat rate limit count across replicas;
- handoff: guest, the staff's live stream and the staff's reply each on another replica;
- `kill_proof` (run by `posada scaletest` after the load): one replica stopped while
  guests are driven through nginx loses no accepted question and none is answered twice.

A proof that raises is reported as failed, with the error as its detail; the others run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from posada_bench.hotels import Stay
from posada_bench.scale.proofs_cache import invalidation_proof, reuse_proof
from posada_bench.scale.proofs_handoff import handoff_proof
from posada_bench.scale.proofs_kill import kill_proof
from posada_bench.scale.proofs_limits import chat_limit_proof, guest_login_proof, staff_login_proof
from posada_bench.scale.proofs_parts import Proof, Say

if TYPE_CHECKING:
    from posada_bench.scale.stack import ScaleRun

__all__ = ["Proof", "kill_proof", "pick_stays", "run_proofs"]

ProofRun = Callable[..., Awaitable[Proof]]
# Each proof gets a stay of its own: the chat limit counts per stay, and a handoff holds
# its conversation.
_PROOFS: tuple[tuple[str, ProofRun], ...] = (
    ("reuse", reuse_proof),
    ("invalidation", invalidation_proof),
    ("guest-login-throttle", guest_login_proof),
    ("staff-login-throttle", staff_login_proof),
    ("chat-rate-limit", chat_limit_proof),
    ("handoff", handoff_proof),
)


def pick_stays(stays: list[Stay], count: int) -> list[Stay]:
    """`count` different stays, from as many hotels as there are, taking hotels in turn."""
    by_hotel: dict[str, list[Stay]] = {}
    for stay in stays:
        if stay not in by_hotel.setdefault(stay.tenant, []):
            by_hotel[stay.tenant].append(stay)
    picked: list[Stay] = []
    while len(picked) < count and any(by_hotel.values()):
        for queue in by_hotel.values():
            if queue and len(picked) < count:
                picked.append(queue.pop(0))
    if len(picked) < count:
        raise ValueError(f"the proofs need {count} different stays, the run has {len(picked)}")
    return picked


async def run_proofs(run: ScaleRun, *, say: Say = print) -> list[Proof]:
    """Run every proof but the kill proof, one after another; each one's outcome."""
    if len(run.stack.replicas) < 3:
        raise ValueError("the proofs need three replicas")
    stays = pick_stays(run.stays, len(_PROOFS))
    found = []
    for (name, prove), stay in zip(_PROOFS, stays, strict=True):
        try:
            proof = await prove(run, stay, say=say)
        except Exception as exc:  # one proof's failure is its outcome, not the run's end
            proof = Proof(name, False, {}, f"{type(exc).__name__}: {exc}")
        say(f"  {'PASS' if proof.passed else 'FAIL'} {proof.name}: {proof.detail}")
        found.append(proof)
    return found
