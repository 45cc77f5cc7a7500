"""The pipeline's lookup: the retrieval's rows, the semantic cache's candidates and the
knowledge version in one statement, each typed, and no other hotel's cached answers."""

from __future__ import annotations

from posada.answers.lookup import lookup
from posada.cache.semantic import CacheEntry, store_entry
from posada.core import context
from posada.knowledge.retrieval import Visibility, retrieve
from posada.runtime import Runtime
from posada.tenants.service import Tenant, ensure_tenant

QUESTION = "What time is breakfast served?"


async def _version(runtime: Runtime, tenant_id: int) -> int:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT knowledge_version FROM tenants WHERE id = %s", (tenant_id,)
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def test_one_statement_gives_the_search_the_cached_answers_and_the_version(
    runtime: Runtime, demo_tenant: Tenant
) -> None:
    embedding = (await runtime.embedder.embed_batch([QUESTION]))[0]
    visibility = Visibility(demo_tenant.id, None)
    version = await _version(runtime, demo_tenant.id)
    entry = CacheEntry(
        tenant_id=demo_tenant.id, unit_id=None, version=version, language="en",
        question=QUESTION, normalized="lookup-test " + QUESTION, embedding=embedding,
        answer="Breakfast is from 7:30.", layer="llm", model="test-model",
        sources=[{"title": "T", "heading": "H", "source": "s.md", "scope": "hotel"}],
        evidence=None,
    )  # fmt: skip
    async with runtime.pool.connection() as conn:
        await store_entry(conn, entry=entry)
        alone = await retrieve(conn, visibility=visibility, text=QUESTION, embedding=embedding)
        with context.measure() as stats:
            found = await lookup(
                conn, visibility=visibility, text=QUESTION, embedding=embedding,
                cache=True, language="en",
            )  # fmt: skip
        other = await ensure_tenant(conn, slug="lookup-other-hotel")
        elsewhere = await lookup(
            conn, visibility=Visibility(other.id, None), text=QUESTION, embedding=embedding,
            cache=True, language="en",
        )  # fmt: skip
        spanish = await lookup(
            conn, visibility=visibility, text=QUESTION, embedding=embedding,
            cache=True, language="es",
        )  # fmt: skip
        off = await lookup(
            conn, visibility=visibility, text=QUESTION, embedding=embedding,
            cache=False, language="en",
        )  # fmt: skip
    assert stats.db_queries == 1
    assert [h.id for h in found.chunks] == [h.id for h in alone.chunks]
    assert [h.id for h in found.faqs] == [h.id for h in alone.faqs]
    assert found.version == version
    mine = [c for c in found.cached if c.question == QUESTION and c.model == "test-model"]
    assert len(mine) == 1
    cached = mine[0]
    assert (cached.answer, cached.layer, cached.scope) == (
        "Breakfast is from 7:30.",
        "llm",
        "hotel",
    )
    assert cached.sources == entry.sources
    assert cached.similarity > 0.99
    assert elsewhere.cached == []
    assert elsewhere.version == await _version(runtime, other.id)
    assert all(c.question != QUESTION for c in spanish.cached)
    assert off.cached == []
    assert off.version == version


async def test_the_version_comes_back_when_nothing_is_found(
    runtime: Runtime, demo_tenant: Tenant
) -> None:
    embedding = (await runtime.embedder.embed_batch([QUESTION]))[0]
    async with runtime.pool.connection() as conn:
        found = await lookup(
            conn, visibility=Visibility(demo_tenant.id, None), text=QUESTION,
            embedding=embedding, cache=False, language="en", k=0, faq_k=0,
        )  # fmt: skip
    assert (found.chunks, found.faqs, found.cached) == ([], [], [])
    assert found.version == await _version(runtime, demo_tenant.id)
