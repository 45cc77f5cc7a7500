"""The caches: each layer's hit, miss, eviction and invalidation, scope safety, SWR, Redis.

The session's runtime runs with the caches off (so that other tests' answers do not
depend on what was asked before them); each test here builds a runtime with them on and
caches of its own, over the real Redis, the real database and the real model.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from redis.asyncio import Redis

from posada.answers.models import Answer
from posada.answers.pipeline import answer_question
from posada.api.app import create_app
from posada.cache.answers import CachedAnswer, ExactCache
from posada.cache.embeddings import CachingEmbedder
from posada.cache.shared import SharedCache
from posada.core import context as observe
from posada.guests.service import import_reservations
from posada.knowledge.ingest import ingest_folder
from posada.knowledge.retrieval import Visibility
from posada.providers.e5 import e5_embedders
from posada.providers.registry import build_chat_models
from posada.providers.types import Embedder, EmbeddingCall, UsageHook, Vectors
from posada.runtime import Caches, Runtime, question_embedder
from posada.tenants.service import Tenant, ensure_tenant, get_unit_id
from tests.support.helpers import RedisServer, StayFinder, log_in, run_cli, serve_posada, write_docs

Variant = Callable[..., Runtime]


def cached(runtime: Runtime, redis: str | None, llm: str | None = None, **changes: Any) -> Runtime:
    """The session's runtime with every cache on, fresh, over `redis` (keys of its own)."""
    settings = runtime.settings.model_copy(
        update={
            "embedding_cache": True,
            "answer_cache": True,
            "semantic_cache": True,
            "redis_url": SecretStr(redis) if redis else None,
            **({"llm_base_url": llm, "llm_api_key": SecretStr("test")} if llm else {}),
            **changes,
        }
    )
    shared = SharedCache(redis, prefix=f"t-{uuid.uuid4().hex[:8]}", retry_after_s=0.2)
    caches = Caches.build(settings, shared=shared, versions=runtime.caches.versions)
    return dataclasses.replace(
        runtime,
        settings=settings,
        caches=caches,
        query_embedder=question_embedder(settings, runtime.embedder, shared),
        chat_models=build_chat_models(settings) if llm else {},
    )


@pytest.fixture
def variant(runtime: Runtime, redis_url: str) -> Variant:
    """Make a runtime with the caches on."""

    def make(llm: str | None = None, **changes: Any) -> Runtime:
        return cached(runtime, redis_url, llm, **changes)

    return make


async def _ask(rt: Runtime, visibility: Visibility, question: str) -> tuple[Answer, dict[str, Any]]:
    with observe.measure() as stats:
        answer = await answer_question(runtime=rt, visibility=visibility, question=question)
    return answer, {"db_queries": stats.db_queries, "embed": stats.embed_computed,
                    "cached_embed": stats.embed_cached, "llm": stats.llm_calls}  # fmt: skip


@asynccontextmanager
async def _client(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(runtime=rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://posada.test") as http:
        yield http


async def _hotel(runtime: Runtime, tmp: Path, bar_opens: str) -> tuple[Tenant, Visibility]:
    """A small hotel of its own: an FAQ, a unit, a private manual."""
    tenant = await _tenant(runtime)
    await _ingest(runtime, tenant, tmp, bar_opens)
    async with runtime.pool.connection() as conn:
        unit = await get_unit_id(conn, tenant=tenant, slug="torre")
    return tenant, Visibility(tenant_id=tenant.id, unit_id=unit)


async def _tenant(runtime: Runtime) -> Tenant:
    async with runtime.pool.connection() as conn:
        return await ensure_tenant(conn, slug=f"c-{uuid.uuid4().hex[:10]}", name="Hotel Caché")


async def _ingest(runtime: Runtime, tenant: Tenant, tmp: Path, bar_opens: str) -> None:
    root = write_docs(
        tmp / tenant.slug,
        {
            "faq.md": f"# FAQ\n\n## ¿A qué hora abre el bar?\nEl bar abre a las {bar_opens}.\n\n"
            "## ¿Dónde se alquilan kayaks?\nLos kayaks se alquilan en el muelle norte, "
            "a 20.000 COP la hora.\n",
            "units/torre.md": "---\ncategory: accommodations\nunit_slug: torre\n"
            "unit_name: Torre\n---\n# Torre\nHabitación en la torre, vista al mar.\n",
            "manuals/torre.md": "---\naccess_level: guest_only\nunit_reference:\n"
            "  unit_name: Torre\n---\n# Manual Torre\n\n## ¿Cuál es la clave del wifi?\n"
            "La red es Torre-Net y la clave es FaroAlto#27.\n",
        },
    )
    report = await ingest_folder(
        pool=runtime.pool, embedder=runtime.embedder, root=root, tenant=tenant
    )
    assert not report.failed, report.failed


async def _until(check: Callable[[], bool], within_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "never happened"
        await asyncio.sleep(0.02)


# --- the exact answer cache ---------------------------------------------------------------


async def test_an_exact_hit_costs_one_round_trip_and_no_embedding_or_llm(
    variant: Variant, quick_llm: str, current_stay: StayFinder
) -> None:
    rt = variant(quick_llm)
    async with _client(rt) as http:
        auth = await log_in(http, await current_stay("caracola"))
        first = await http.post(
            "/api/guest/chat", json={"message": "Where can I rent a kayak?"}, headers=auth
        )
        assert first.json()["layer"] == "llm"
        assert "exact_cache" in first.headers["server-timing"]
        again = await http.post(
            "/api/guest/chat",
            json={
                "message": "where can i RENT a kayak",
                "conversation_id": first.json()["conversation_id"],
            },
            headers=auth,
        )
        body = again.json()
        assert body["layer"] == "exact"
        assert body["answer"] == first.json()["answer"]
        # Storing the question and the answer is the one round trip; nothing else ran.
        assert body["counters"]["db_queries"] == 1
        assert body["counters"]["embed_computed"] == body["counters"]["llm_calls"] == 0
        assert set(body["timings"]) == {"auth", "exact_cache", "store", "total"}
        history = await http.get(
            f"/api/guest/conversations/{body['conversation_id']}", headers=auth
        )
        roles = [(m["role"], m["layer"]) for m in history.json()["messages"]]
        assert roles == [
            ("guest", None),
            ("assistant", "llm"),
            ("guest", None),
            ("assistant", "exact"),
        ]
        metrics = (await http.get("/metrics")).text
        outcomes = {
            (s.labels["layer"], s.labels["outcome"]): s.value
            for f in text_string_to_metric_families(metrics)
            if f.name == "posada_cache_outcomes"
            for s in f.samples
            if s.name.endswith("_total")
        }
        assert outcomes[("exact", "hit")] == 1
        assert outcomes[("exact", "miss")] == 1
        window = (await http.get("/api/performance/metrics")).json()
        assert window["overall"]["cache"]["exact"] == {"hit": 1, "miss": 1, "hit_rate": 0.5}


async def test_the_exact_cache_forgets_the_least_recently_used() -> None:
    cache = ExactCache(SharedCache(None), size=2)
    for n in range(3):
        await cache.put(tenant_id=1, version=1, unit_id=None, normalized=f"q{n}",
                        answer=CachedAnswer(f"a{n}", "llm"))  # fmt: skip
    got = [
        await cache.get(tenant_id=1, version=1, unit_id=None, normalized=f"q{n}") for n in range(3)
    ]
    assert got[0] is None, "the oldest entry went first"
    assert [g.text if g else None for g in got[1:]] == ["a1", "a2"]
    assert await cache.get(tenant_id=1, version=2, unit_id=None, normalized="q2") is None
    assert await cache.get(tenant_id=2, version=1, unit_id=None, normalized="q2") is None


async def test_an_ingest_makes_every_cached_answer_unreachable_at_once(
    variant: Variant, runtime: Runtime, tmp_path: Path
) -> None:
    rt = variant()
    tenant, visibility = await _hotel(runtime, tmp_path, "18:00")
    first, _ = await _ask(rt, visibility, "¿A qué hora abre el bar?")
    assert first.layer == "faq"
    assert "18:00" in first.text
    again, cost = await _ask(rt, visibility, "¿a que hora abre el bar")
    assert (again.layer, cost["db_queries"], cost["embed"]) == ("exact", 0, 0)
    old_version = rt.caches.versions.known(tenant.id)
    await _ingest(runtime, tenant, tmp_path, "19:30")
    await _until(lambda: rt.caches.versions.known(tenant.id) != old_version)
    after, _ = await _ask(rt, visibility, "¿A qué hora abre el bar?")
    assert after.layer == "faq"
    assert "19:30" in after.text
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT count(*) FROM answer_cache a JOIN tenants t ON t.id = a.tenant_id
               WHERE a.tenant_id = %s AND a.knowledge_version < t.knowledge_version""",
            (tenant.id,),
        )
        assert (await cur.fetchone()) == (0,)


async def test_cache_purge_forgets_a_hotels_cached_answers_in_running_processes(
    variant: Variant, runtime: Runtime, tmp_path: Path
) -> None:
    rt = variant()
    tenant, visibility = await _hotel(runtime, tmp_path, "18:00")
    _, other_visibility = await _hotel(runtime, tmp_path / "other", "17:00")
    for vis in (visibility, other_visibility):
        await _ask(rt, vis, "¿A qué hora abre el bar?")
        again, _ = await _ask(rt, vis, "¿A qué hora abre el bar?")
        assert again.layer == "exact"
    old_version = rt.caches.versions.known(tenant.id)
    env = {**os.environ, "POSADA_DATABASE_URL": runtime.database_url}
    env["POSADA_DATA_DIR"] = str(runtime.settings.data_dir)
    purged = await asyncio.to_thread(run_cli, env, "cache", "purge", "--tenant", tenant.slug)
    assert purged.returncode == 0, purged.stderr
    assert f"cached answers of {tenant.slug} purged" in purged.stdout
    await _until(lambda: rt.caches.versions.known(tenant.id) != old_version)
    after, _ = await _ask(rt, visibility, "¿A qué hora abre el bar?")
    assert after.layer != "exact", "the purged hotel's answer is worked out again"
    kept, _ = await _ask(rt, other_visibility, "¿A qué hora abre el bar?")
    assert kept.layer == "exact", "another hotel's cache is untouched"


# --- the semantic cache and its guard ------------------------------------------------------


async def test_the_semantic_cache_answers_the_same_question_and_not_its_neighbours(
    variant: Variant, quick_llm: str, runtime: Runtime, tmp_path: Path
) -> None:
    rt = variant(quick_llm, faq_answers=False)  # the semantic cache on its own
    _, visibility = await _hotel(runtime, tmp_path, "18:00")
    first, _ = await _ask(rt, visibility, "¿Dónde se pueden alquilar kayaks?")
    assert first.layer == "llm"
    same, cost = await _ask(rt, visibility, "¿Dónde se pueden alquilar los kayaks?")
    assert same.layer == "semantic", same
    assert same.text == first.text
    # The lookup (which found it) and counting the reuse; no LLM.
    assert (cost["llm"], cost["db_queries"]) == (0, 2)
    for neighbour in ("¿Cuánto cuesta alquilar kayaks?", "¿Dónde se pueden alquilar bicicletas?"):
        answer, _ = await _ask(rt, visibility, neighbour)
        assert answer.layer not in ("semantic", "exact"), neighbour
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT hits FROM answer_cache WHERE tenant_id = %s AND question = %s",
            (visibility.tenant_id, "¿Dónde se pueden alquilar kayaks?"),
        )
        assert (await cur.fetchone()) == (1,)


# --- scope safety --------------------------------------------------------------------------


async def test_a_units_answer_is_never_served_to_another_unit(
    variant: Variant, current_stay: StayFinder
) -> None:
    rt = variant()
    async with _client(rt) as http:
        caracola = await log_in(http, await current_stay("caracola"))
        coral = await log_in(http, await current_stay("coral"))
        own = [
            (
                await http.post(
                    "/api/guest/chat", json={"message": "wifi password"}, headers=caracola
                )
            ).json()
            for _ in range(2)
        ]
        assert "ConchaRosada#71" in own[0]["answer"]
        assert own[1]["layer"] == "exact"
        other = (
            await http.post("/api/guest/chat", json={"message": "wifi password"}, headers=coral)
        ).json()
        assert other["layer"] != "exact"
        assert "ConchaRosada#71" not in other["answer"]
        assert "ArrecifeVivo*39" in other["answer"]


async def test_questions_about_the_guests_stay_or_the_moment_are_never_cached(
    variant: Variant, runtime: Runtime, tmp_path: Path
) -> None:
    rt = variant()
    _, visibility = await _hotel(runtime, tmp_path, "18:00")
    for question in ("¿Cuándo es mi check-out?", "Is the bar open now?", "¿y el bar?"):
        for _ in range(2):
            answer, _ = await _ask(rt, visibility, question)
            assert answer.layer not in ("exact", "semantic"), question
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM answer_cache WHERE tenant_id = %s", (visibility.tenant_id,)
        )
        assert (await cur.fetchone()) == (0,)


async def test_one_hotels_cached_answer_never_answers_another(
    variant: Variant, runtime: Runtime, tmp_path: Path
) -> None:
    rt = variant()
    _, one = await _hotel(runtime, tmp_path, "18:00")
    _, other = await _hotel(runtime, tmp_path, "21:15")
    for _ in range(2):
        mine, _ = await _ask(rt, one, "¿A qué hora abre el bar?")
    assert mine.layer == "exact"
    theirs, _ = await _ask(rt, other, "¿A qué hora abre el bar?")
    assert theirs.layer == "faq"
    assert "21:15" in theirs.text
    assert "18:00" not in theirs.text


# --- the public routes: stale-while-revalidate ---------------------------------------------


async def test_public_info_is_cached_with_etags_and_refreshed_in_the_background(
    variant: Variant, runtime: Runtime, tmp_path: Path
) -> None:
    rt = variant(public_max_age_s=0, public_stale_s=600)
    tenant = await _tenant(runtime)
    async with _client(rt) as http:
        url = f"/api/public/{tenant.slug}/info"
        first = await http.get(url)
        assert (first.status_code, first.headers["x-cache"]) == (200, "miss")
        assert first.json() == {"slug": tenant.slug, "name": "Hotel Caché"}
        assert "stale-while-revalidate=600" in first.headers["cache-control"]
        loads = rt.caches.public.loads
        # Stale at once (max-age 0): served as they are while one refresh runs.
        stale = await asyncio.gather(*(http.get(url) for _ in range(5)))
        assert {r.headers["x-cache"] for r in stale} == {"stale"}
        await _until(lambda: rt.caches.public.loads == loads + 1)
        await asyncio.sleep(0.1)
        assert rt.caches.public.loads == loads + 1, "one refresh, not one per request"
        not_modified = await http.get(url, headers={"If-None-Match": first.headers["etag"]})
        assert not_modified.status_code == 304
        assert not_modified.content == b""
        units = await http.get(f"/api/public/{tenant.slug}/units")
        assert units.json() == []
        assert (await http.get("/api/public/no-such-hotel/info")).status_code == 404
        # An ingest drops the hotel's entries: the new unit shows at once.
        version = rt.caches.versions.known(tenant.id)
        await _ingest(runtime, tenant, tmp_path, "18:00")
        await _until(lambda: rt.caches.versions.known(tenant.id) != version)
        fresh = await http.get(f"/api/public/{tenant.slug}/units")
        assert fresh.headers["x-cache"] == "miss"
        assert [u["slug"] for u in fresh.json()] == ["torre"]
        changed = await http.get(url, headers={"If-None-Match": '"an-old-etag"'})
        assert changed.status_code == 200


# --- Redis ---------------------------------------------------------------------------------


async def test_redis_down_then_back(
    runtime: Runtime, own_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rt = cached(runtime, own_redis.url, redis_timeout_ms=200)
    _, visibility = await _hotel(runtime, tmp_path, "18:00")
    client = Redis.from_url(own_redis.url)
    try:
        await _ask(rt, visibility, "¿A qué hora abre el bar?")
        assert len(await client.keys("t-*")) == 2, "the answer and the question's vector"
        own_redis.stop()
        caplog.set_level(logging.WARNING, logger="posada.cache.shared")
        for question in ("¿Dónde se alquilan kayaks?", "¿Cuál es la clave del wifi?"):
            answer, _ = await _ask(rt, visibility, question)
            assert answer.text  # answered without Redis
        downs = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
        assert len(downs) == 1, "said once, not at every request"
        assert rt.caches.shared.failures >= 1
        own_redis.start()
        await asyncio.sleep(0.3)  # past the pause after a failure
        await _ask(rt, visibility, "¿Hay bar?")
        assert any("Redis is back" in r.getMessage() for r in caplog.records)
    finally:
        await client.aclose()
    client = Redis.from_url(own_redis.url)  # the old connections died with the server
    try:
        assert len(await client.keys("t-*")) >= 1, "written to Redis again"
    finally:
        await client.aclose()


async def test_redis_errors_are_counted_in_metrics(
    runtime: Runtime, current_stay: StayFinder
) -> None:
    # Nothing listens on port 1: every Redis operation fails at once.
    rt = cached(runtime, "redis://127.0.0.1:1/0")
    async with _client(rt) as http:
        auth = await log_in(http, await current_stay("brisa"))
        response = await http.post("/api/guest/chat", json={"message": "pool hours"}, headers=auth)
        assert response.status_code == 200
        metrics = (await http.get("/metrics")).text
        errors = [
            s.value
            for f in text_string_to_metric_families(metrics)
            if f.name == "posada_redis_errors"
            for s in f.samples
            if s.name.endswith("_total")
        ]
        assert errors
        assert errors[0] >= 1


# --- the embedding cache and micro-batching ------------------------------------------------


class _Counting:
    """An embedder that counts what it computes (the real model underneath)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.provider, self.model, self.dimensions = "local", inner.model, inner.dimensions
        self.on_usage: UsageHook | None = None
        self.computed: list[str] = []

    async def embed_batch(self, texts: Sequence[str]) -> Vectors:
        self.computed += list(texts)
        if self.on_usage is not None:
            self.on_usage(EmbeddingCall(self.provider, self.model, texts, None, api=False))
        return await self.inner.embed_batch(texts)


async def test_the_embedding_cache_serves_repeats_from_memory_then_from_redis(
    runtime: Runtime, redis_url: str
) -> None:
    inner = _Counting(runtime.embedder)
    shared = SharedCache(redis_url, prefix=f"t-{uuid.uuid4().hex[:8]}")
    seen: list[EmbeddingCall] = []
    first = CachingEmbedder(inner, shared, size=2)
    first.on_usage = seen.append
    a = await first.embed_batch(["Where is the pool?", "wifi"])
    b = await first.embed_batch(["where is the POOL?", "Where is the pool?"])
    assert inner.computed == ["Where is the pool?", "wifi"]
    assert np.allclose(a[0], b[0])
    assert np.allclose(b[0], b[1])
    assert [(c.cached, len(c.texts)) for c in seen] == [(False, 2), (True, 2)]
    # Another replica: its own (empty) LRU, the same Redis.
    other = CachingEmbedder(inner, shared, size=2)
    other.on_usage = None
    c = await other.embed_batch(["wifi"])
    assert inner.computed == ["Where is the pool?", "wifi"], "from Redis, not computed again"
    assert np.allclose(c[0], a[1])
    # The LRU holds two: a third text pushes the oldest out of memory (Redis keeps it).
    await first.embed_batch(["gym", "spa"])
    assert len(first) == 2


async def test_concurrent_questions_share_one_model_call(runtime: Runtime) -> None:
    batching, _ = e5_embedders(batch_wait_ms=5)
    questions = [f"question number {n} about the pool" for n in range(40)]
    together = await asyncio.gather(*(batching.embed_batch([q]) for q in questions))
    assert batching.batcher.batches <= 4, batching.batcher.batches
    alone = await runtime.embedder.embed_batch(questions)  # the same role: passages
    assert np.allclose(np.vstack(together), alone, atol=1e-5)


async def test_the_cache_warm_command_embeds_the_most_asked_questions(
    runtime: Runtime, redis_url: str, current_stay: StayFinder
) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    async with _client(runtime) as http:
        auth = await log_in(http, await current_stay("manglar"))
        for question in ("a warm question about towels", "a warm question about towels"):
            await http.post("/api/guest/chat", json={"message": question}, headers=auth)
    env = {
        **os.environ,
        "POSADA_DATABASE_URL": runtime.database_url,
        "POSADA_DATA_DIR": str(runtime.settings.data_dir),
        "POSADA_REDIS_URL": redis_url,
        "POSADA_REDIS_PREFIX": prefix,
    }
    done = await asyncio.to_thread(run_cli, env, "cache", "warm", "--days", "1", "--limit", "1000")
    assert done.returncode == 0, done.stderr
    assert "warmed" in done.stdout
    client = Redis.from_url(redis_url)
    try:
        assert len(await client.keys(f"{prefix}:emb:*")) >= 1
    finally:
        await client.aclose()
    again = await asyncio.to_thread(run_cli, env, "cache", "warm", "--days", "1", "--limit", "1000")
    assert " 0 embedded now" in again.stdout, again.stdout


# --- two replicas --------------------------------------------------------------------------


async def test_two_replicas_share_answers_and_an_ingest_through_one_reaches_both(
    runtime: Runtime, redis_url: str, tmp_path: Path
) -> None:
    tenant = await _tenant(runtime)
    await _ingest(runtime, tenant, tmp_path, "18:00")
    async with runtime.pool.connection() as conn:
        await import_reservations(
            conn,
            tenant=tenant,
            csv_text="external_ref,unit,guest_name,phone_last4,check_in,check_out,status\n"
            f"R-1,torre,Ana,1234,{date.today()},2099-01-01,checked_in\n",
        )
    env = {
        "POSADA_REDIS_URL": redis_url,
        "POSADA_REDIS_PREFIX": f"t-{uuid.uuid4().hex[:8]}",
        "POSADA_EMBEDDING_CACHE": "true",
        "POSADA_ANSWER_CACHE": "true",
        "POSADA_SEMANTIC_CACHE": "true",
    }
    login = {
        "tenant": tenant.slug,
        "check_in": str(date.today()),
        "phone_last4": "1234",
    }
    for one in serve_posada(runtime, env=env):
        for two in serve_posada(runtime, env=env):
            async with httpx.AsyncClient(timeout=30) as http:

                async def ask(base: str, question: str) -> dict[str, Any]:
                    token = (await http.post(f"{base}/api/guest/login", json=login)).json()["token"]
                    response = await http.post(
                        f"{base}/api/guest/chat",
                        json={"message": question},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    assert response.status_code == 200, response.text
                    return dict(response.json())

                assert (await ask(one, "¿A qué hora abre el bar?"))["layer"] == "faq"
                second = await ask(two, "¿A qué hora abre el bar?")
                assert second["layer"] == "exact", "answered by the other replica, found in Redis"
                # An ingest from a third process (the operator's CLI) reaches both.
                write_docs(
                    tmp_path / tenant.slug,
                    {"faq.md": "# FAQ\n\n## ¿A qué hora abre el bar?\nEl bar abre a las 20:45.\n"},
                )
                cli_env = {
                    **os.environ,
                    "POSADA_DATABASE_URL": runtime.database_url,
                    "POSADA_DATA_DIR": str(runtime.settings.data_dir),
                }
                done = await asyncio.to_thread(
                    run_cli, cli_env, "ingest", str(tmp_path / tenant.slug), "--tenant", tenant.slug
                )
                assert done.returncode == 0, done.stderr
                await asyncio.sleep(0.5)  # the notification is delivered at commit
                # Neither serves the old answer: the first asked answers anew, the other
                # finds that new answer in Redis.
                fresh = await ask(one, "¿A qué hora abre el bar?")
                shared = await ask(two, "¿A qué hora abre el bar?")
                assert (fresh["layer"], shared["layer"]) == ("faq", "exact")
                assert "20:45" in fresh["answer"]
                assert shared["answer"] == fresh["answer"]


async def test_a_units_answer_reaches_no_other_unit_by_any_reuse_path(
    variant: Variant, runtime: Runtime, current_stay: StayFinder
) -> None:
    rt = variant()
    question = "cual es la clave del wifi de mi habitacion"
    async with _client(rt) as http:
        caracola = await log_in(http, await current_stay("caracola"))
        coral = await log_in(http, await current_stay("coral"))
        own = (
            await http.post("/api/guest/chat", json={"message": question}, headers=caracola)
        ).json()
        assert "ConchaRosada#71" in own["answer"]
        async with runtime.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT u.slug FROM answer_cache a JOIN units u ON u.id = a.unit_id "
                "WHERE a.question = %s",
                (question,),
            )
            assert await cur.fetchall() == [("caracola",)], "kept for its unit only"
        # The same words from another unit: never Caracola's entry.
        other = (
            await http.post("/api/guest/chat", json={"message": question}, headers=coral)
        ).json()
        assert other["layer"] != "exact"
        assert "ConchaRosada#71" not in other["answer"]
        # A rewording from Coral may reuse an answer given to Coral, never Caracola's.
        again = (
            await http.post(
                "/api/guest/chat",
                json={"message": "me pasas la clave del wifi de mi habitacion?"},
                headers=coral,
            )
        ).json()
        assert "ConchaRosada#71" not in again["answer"], again


# --- the question's facts, found once -------------------------------------------------------


async def test_a_question_s_language_and_follow_up_are_found_once(
    variant: Variant, quick_llm: str, demo_tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through every stage (exact cache, lookup, semantic cache, FAQ, prompt, LLM), the
    guest's question is run through language detection and the follow-up test once."""
    import posada.answers.caching
    import posada.answers.extractive
    import posada.answers.prompt
    import posada.answers.routing
    import posada.answers.turn
    import posada.cache.guard

    question = f"Where can I rent a kayak near the hotel, {uuid.uuid4().hex[:6]}?"
    seen: dict[str, int] = {"detect_language": 0, "is_follow_up": 0}

    def counting(name: str, real: Callable[[str], Any]) -> Callable[[str], Any]:
        def wrapper(text: str) -> Any:
            seen[name] += text == question
            return real(text)

        return wrapper

    modules = (
        posada.answers.caching, posada.answers.extractive, posada.answers.prompt,
        posada.answers.routing, posada.answers.turn, posada.cache.guard,
    )  # fmt: skip
    for module in modules:
        for name in seen:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, counting(name, getattr(module, name)))
    rt = variant(quick_llm)
    answer, counts = await _ask(rt, Visibility(demo_tenant.id, None), question)
    assert answer.layer == "llm"
    assert counts["llm"] == 1
    assert seen == {"detect_language": 1, "is_follow_up": 1}
