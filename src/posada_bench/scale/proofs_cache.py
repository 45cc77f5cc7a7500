"""The caches' proofs: an answer given by one replica is reused by the others, and an
ingest through one replica invalidates every replica's cached answers at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from posada_bench.hotels import Stay
from posada_bench.scale.proofs_parts import (
    Events,
    Proof,
    ProofFailed,
    Say,
    ask,
    client,
    guest_auth,
    new_member,
    scrape,
    staff_headers,
    tenant_id,
    total,
    upstream_calls,
)

if TYPE_CHECKING:
    from posada_bench.scale.stack import ScaleRun

# Asked nowhere in the benchmark's workload, answered by the LLM from the shared tourism
# listings; the rewordings are ones the semantic cache's guard takes for the same question.
REUSE_QUESTION = "Where can I rent a kayak?"
REWORDINGS = ("Where can I hire a kayak?", "Where do I rent a kayak?")
FRESH_LAYERS = ("llm", "extractive", "faq")  # answers made, not reused
BAR_QUESTION = "¿A qué hora abre el bar de la azotea?"
BAR_SOURCE = "proof-bar.md"


def bar_document(hour: str) -> bytes:
    """The document the invalidation proof uploads, then changes."""
    return (
        f"# El bar de la azotea\n\n## {BAR_QUESTION}\n"
        f"El bar de la azotea abre a las {hour} todos los días, con vista al mar.\n"
    ).encode()


async def replica_counters(run: ScaleRun) -> dict[str, dict[str, float]]:
    """Each replica's answer-cache and LLM counters, and the knowledge changes it heard
    of, from its /metrics."""
    found = {}
    for replica in run.stack.replicas:
        samples = await scrape(replica.url)
        found[replica.name] = {
            "exact_hit": total(
                samples, "posada_cache_outcomes_total", layer="exact", outcome="hit"
            ),
            "exact_miss": total(
                samples, "posada_cache_outcomes_total", layer="exact", outcome="miss"
            ),
            "semantic_hit": total(
                samples, "posada_cache_outcomes_total", layer="semantic", outcome="hit"
            ),
            "llm_calls": total(samples, "posada_llm_calls_total"),
            # The hotel versions this replica heard of through LISTEN posada_knowledge.
            "knowledge_notified": total(samples, "posada_knowledge_changes_total", kind="notified"),
        }
    return found


def deltas(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """What each replica's counters rose by."""
    return {
        name: {key: after[name].get(key, 0.0) - value for key, value in counters.items()}
        | {key: value for key, value in after[name].items() if key not in counters}
        for name, counters in before.items()
    }


async def reuse_proof(run: ScaleRun, stay: Stay, *, say: Say) -> Proof:
    """r1 answers a question; r2 and r3 reuse it, worded alike and reworded, with no LLM call."""
    r1, r2, r3 = run.stack.replicas[:3]
    say(f"proof reuse: {r1.name} answers, {r2.name} and {r3.name} reuse ...")
    async with client(r1.url) as h1, client(r2.url) as h2, client(r3.url) as h3:
        auths = [await guest_auth(h, stay) for h in (h1, h2, h3)]
        before = await replica_counters(run)
        first = await ask(h1, auths[0], REUSE_QUESTION)
        upstream = await upstream_calls(run.stack.llm_url)
        asked: list[tuple[str, httpx.AsyncClient, dict[str, str], str]] = [
            (r2.name, h2, auths[1], REUSE_QUESTION),
            (r3.name, h3, auths[2], REUSE_QUESTION),
            (r2.name, h2, auths[1], REWORDINGS[0]),
            (r3.name, h3, auths[2], REWORDINGS[1]),
        ]
        reused = [(name, text, await ask(http, auth, text)) for name, http, auth, text in asked]
        upstream_after = await upstream_calls(run.stack.llm_url)
        rose = deltas(before, await replica_counters(run))
    layers = [f"{r1.name} {REUSE_QUESTION!r}: {first['layer']}"]
    layers += [f"{name} {text!r}: {body['layer']}" for name, text, body in reused]
    wanted = ["exact", "exact", "semantic", "semantic"]
    problems = []
    if first["layer"] not in FRESH_LAYERS:
        problems.append(f"{r1.name}'s answer came from {first['layer']} (not a fresh stack?)")
    for (name, text, body), layer in zip(reused, wanted, strict=True):
        if body["layer"] != layer or body["answer"] != first["answer"]:
            problems.append(f"{name} answered {text!r} from {body['layer']}, not {layer}")
    for name, rise in rose.items():
        if name != r1.name and rise["llm_calls"] != 0:
            problems.append(f"{name} called the LLM")
    if upstream_after != upstream:
        problems.append(f"the simulated LLM saw {upstream_after - upstream} more calls")
    counters: dict[str, Any] = {
        "layers": layers,
        "per_replica": rose,
        "upstream_llm_calls": {"after_r1": upstream, "after_reuse": upstream_after},
    }
    detail = "; ".join(problems) or (
        f"{r1.name} answered from {first['layer']}; {r2.name} and {r3.name} reused it (exact "
        f"from Redis, rewordings from the semantic cache in PostgreSQL), "
        f"{upstream_after - upstream} more LLM calls"
    )
    return Proof("reuse", not problems, counters, detail)


async def upload(http: httpx.AsyncClient, headers: dict[str, str], document: bytes) -> int:
    """Upload one document through the staff API; the knowledge version its `done` gives."""
    files = [("files", (BAR_SOURCE, document, "text/markdown"))]
    async with http.stream("POST", "/api/staff/documents", files=files, headers=headers) as resp:
        if resp.status_code != 200:
            raise ProofFailed(f"upload: {resp.status_code} {(await resp.aread())!r}")
        done = await Events(resp).until(lambda e: e.name in ("done", "error"))
    if done.name != "done" or done.data["failed"]:
        raise ProofFailed(f"upload failed: {done.data}")
    return int(done.data["version"])


async def stored_version(run: ScaleRun, slug: str) -> int:
    """The hotel's knowledge version as the database holds it."""
    import psycopg

    found = await tenant_id(run.stack.direct_url, slug)
    async with await psycopg.AsyncConnection.connect(run.stack.direct_url) as conn:
        cur = await conn.execute("SELECT knowledge_version FROM tenants WHERE id = %s", (found,))
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def invalidation_proof(run: ScaleRun, stay: Stay, *, say: Say) -> Proof:
    """Every replica caches an answer; an upload through r1 changes it; r2 and r3 answer
    from the new knowledge at once."""
    replicas = run.stack.replicas[:3]
    say(f"proof invalidation: an upload through {replicas[0].name}, {stay.tenant} ...")
    email = await new_member(run.stack.direct_url, tenant=stay.tenant, role="manager")
    https = [client(r.url) for r in replicas]
    try:
        staff = await staff_headers(https[0], tenant=stay.tenant, email=email)
        auths = [await guest_auth(h, stay) for h in https]
        first_version = await upload(https[0], staff, bar_document("17:00"))
        cached = [await ask(h, a, BAR_QUESTION) for h, a in zip(https, auths, strict=True)]
        before = await replica_counters(run)
        version = await upload(https[0], staff, bar_document("19:30"))
        # At once: no wait, no retry. r2 and r3 first (they hold the old answer in memory).
        order = [1, 2, 0]
        fresh = {i: await ask(https[i], auths[i], BAR_QUESTION) for i in order}
        rose = deltas(before, await replica_counters(run))
        in_db = await stored_version(run, stay.tenant)
    finally:
        for http in https:
            await http.aclose()
    problems = [
        f"{replicas[i].name} answered {body['answer']!r} ({body['layer']}) before the change"
        for i, body in enumerate(cached)
        if "17:00" not in body["answer"]
    ]
    problems += [
        f"{replicas[i].name} answered {body['answer']!r} ({body['layer']}) after the change"
        for i, body in fresh.items()
        if "19:30" not in body["answer"] or "17:00" in body["answer"]
    ]
    problems += [
        f"{replicas[i].name} heard of no knowledge change"
        for i in range(len(replicas))
        if rose[replicas[i].name]["knowledge_notified"] < 1
    ]
    if in_db != version or version <= first_version:
        problems.append(f"versions: upload said {first_version} then {version}, database {in_db}")
    counters: dict[str, Any] = {
        "knowledge_version": {
            "first_upload": first_version,
            "second_upload": version,
            "database": in_db,
        },
        "cached_layers": {replicas[i].name: body["layer"] for i, body in enumerate(cached)},
        "after_layers": {replicas[i].name: body["layer"] for i, body in fresh.items()},
        "per_replica_after_change": rose,
    }
    detail = "; ".join(problems) or (
        f"all three cached '17:00' (version {first_version}); after the upload through "
        f"{replicas[0].name} (version {version}) {replicas[1].name} and {replicas[2].name} "
        "answered '19:30' on their first ask, each having heard of the change"
    )
    return Proof("invalidation", not problems, counters, detail)
