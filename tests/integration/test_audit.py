"""The embedding usage ledger and `posada audit embeddings`, on the real database."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from posada.core import context
from posada.observe.audit import audit_embeddings
from posada.observe.ledger import UsageLedger, usage_recorder
from posada.providers.embeddings import OpenAIEmbedder
from posada.providers.types import EmbeddingCall
from posada.runtime import Runtime
from posada.tenants.service import Tenant, ensure_tenant
from tests.support.fake_openai import fake_openai
from tests.support.helpers import CliResult, run_cli


async def _posada(env: dict[str, str], *args: str) -> CliResult:
    # On a thread: the command runs its own event loop.
    return await asyncio.to_thread(run_cli, env, "audit", "embeddings", *args)


async def _audit(runtime: Runtime, tenant: Tenant) -> dict[str, object]:
    assert runtime.ledger is not None
    await runtime.ledger.flush()
    async with runtime.pool.connection() as conn:
        audit = await audit_embeddings(conn, days=7, tenant_id=tenant.id, tenant=tenant.slug)
    return audit.as_dict()


async def test_local_embeddings_are_recorded_with_tokens_repeats_and_cache_hits(
    runtime: Runtime, new_tenant: Tenant
) -> None:
    texts = ["¿A qué hora es el desayuno?", "Where is the pool?", "¿A qué hora es el desayuno?"]
    with context.acting_for(new_tenant.id), context.measure(tenant_id=new_tenant.id) as stats:
        await runtime.embedder.embed_batch(texts)
        # What a cache hit reports (the embedding cache calls the same hook).
        assert runtime.embedder.on_usage is not None
        runtime.embedder.on_usage(
            EmbeddingCall("local", runtime.embedder.model, ["Where is the pool?"], 0, api=False,
                          cached=True)
        )  # fmt: skip
    assert (stats.embed_computed, stats.embed_cached, stats.embed_api_calls) == (3, 1, 0)
    audit = await _audit(runtime, new_tenant)
    # As the model in use reads them (its own tokenizer, prefix included).
    expected_tokens = sum(runtime.embedder.count_tokens(texts))  # type: ignore[attr-defined]
    assert audit == {
        "days": 7,
        "tenant": new_tenant.slug,
        "calls": 1,
        "api_calls": 0,
        "texts": 3,
        "cached": 1,
        "tokens": expected_tokens,
        "cost_usd": 0.0,
        "projected_monthly_usd": 0.0,
        "covered_days": pytest.approx(1 / 24, abs=1e-3),
        "repeated_texts": 1,
        "wasted_embeddings": 1,
        "hit_rate": 0.25,
        "providers": [
            {
                "provider": "local",
                "model": runtime.embedder.model,
                "calls": 1,
                "texts": 3,
                "tokens": expected_tokens,
                "cost_usd": 0.0,
            }
        ],
    }


async def test_api_embeddings_are_charged_at_the_configured_price(
    runtime: Runtime, new_tenant: Tenant
) -> None:
    seen: list[dict[str, object]] = []
    embedder = OpenAIEmbedder(
        api_key="sk-test",
        dimensions=8,
        base_url="http://embeddings.test/v1",
        http_client=fake_openai(seen, 8),
    )
    ledger = UsageLedger(runtime.pool)
    embedder.on_usage = usage_recorder(ledger, api_price_per_m=0.02)
    with context.measure(tenant_id=new_tenant.id) as stats:
        await embedder.embed_batch(["hola", "hello"])
    assert (stats.embed_computed, stats.embed_api_calls) == (2, 1)
    assert await ledger.flush() == 2
    audit = await _audit(runtime, new_tenant)
    assert audit["api_calls"] == 1
    assert audit["tokens"] == 3, "the API's reported usage"
    assert audit["cost_usd"] == pytest.approx(3 * 0.02 / 1e6)
    assert audit["projected_monthly_usd"] == pytest.approx(3 * 0.02 / 1e6 / (1 / 24) * 30, rel=1e-3)


async def test_a_failed_write_keeps_the_rows_for_the_next_try(runtime: Runtime) -> None:
    from psycopg_pool import AsyncConnectionPool

    closed: AsyncConnectionPool = AsyncConnectionPool(runtime.database_url, open=False)
    ledger = UsageLedger(closed)
    ledger.record(EmbeddingCall("local", "m", ["a", "b"], 4, api=False), tenant_id=None, cost_usd=0)
    assert await ledger.flush() == 0
    assert ledger.pending == 2


async def test_one_hotels_audit_never_shows_anothers_usage(
    runtime: Runtime, new_tenant: Tenant
) -> None:
    async with runtime.pool.connection() as conn:
        other = await ensure_tenant(conn, slug=f"{new_tenant.slug}-b", name="Other Hotel")
    with context.acting_for(other.id):
        await runtime.embedder.embed_batch(["the other hotel's private question"])
    with context.acting_for(new_tenant.id):
        await runtime.embedder.embed_batch(["mine"])
    mine = await _audit(runtime, new_tenant)
    theirs = await _audit(runtime, other)
    assert (mine["texts"], theirs["texts"]) == (1, 1)

    env = {
        **os.environ,
        "POSADA_DATABASE_URL": runtime.database_url,
        "POSADA_JWT_SECRET": "cli-test-secret-0123456789-0123456789",
        "POSADA_DATA_DIR": str(runtime.settings.data_dir),
    }
    done = await _posada(env, "--days", "1", "--tenant", new_tenant.slug, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["tenant"] == new_tenant.slug
    assert report["texts"] == 1
    table = await _posada(env, "--days", "1")
    assert table.returncode == 0, table.stderr
    assert "projected monthly cost" in table.stdout
    assert "cache hit rate" in table.stdout
    unknown = await _posada(env, "--tenant", "no-such-hotel")
    assert unknown.returncode == 1
    assert "no-such-hotel" in unknown.stderr
