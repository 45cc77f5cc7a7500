"""Retrieval: one statement, fused ranking, and nothing another unit or tenant may not see."""

from __future__ import annotations

import numpy as np
import pytest

from posada.knowledge.retrieval import Retrieved, Visibility, retrieve
from posada.runtime import Runtime
from posada.tenants.service import Tenant, ensure_tenant
from tests.support.crowd import crowd_index
from tests.support.helpers import StayFinder

QUESTIONS = [
    "What is the wifi password?",
    "¿Cuál es la clave del wifi de mi habitación?",
    "door code",
    "¿cuál es el código de la caja fuerte?",
    "What time is check-out?",
    "¿Dónde puedo bucear?",
    "How do I get from the airport?",
]


async def _unit_ids(runtime: Runtime, tenant: Tenant) -> dict[str, int]:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute("SELECT slug, id FROM units WHERE tenant_id = %s", (tenant.id,))
        return dict(await cur.fetchall())


async def _search(
    runtime: Runtime,
    visibility: Visibility,
    question: str,
    *,
    k: int,
    weights: tuple[float, float] = (1.0, 1.0),
) -> Retrieved:
    """Embed the question with the real model and run the one retrieval statement."""
    embedding = (await runtime.embedder.embed_batch([question]))[0]
    async with runtime.pool.connection() as conn:
        return await retrieve(
            conn, visibility=visibility, text=question, embedding=embedding, k=k, weights=weights
        )


async def test_a_guest_sees_only_their_hotel_their_unit_and_tourism(
    runtime: Runtime, demo_tenant: Tenant
) -> None:
    units = await _unit_ids(runtime, demo_tenant)
    assert len(units) >= 4
    for unit_id in units.values():
        for question in QUESTIONS:
            found = await _search(runtime, Visibility(demo_tenant.id, unit_id), question, k=10)
            for hit in [*found.chunks, *found.faqs]:
                assert hit.tenant_id in (demo_tenant.id, None)
                assert (hit.scope == "tourism") == (hit.tenant_id is None)
                if hit.scope == "unit":
                    assert hit.unit_id == unit_id, f"{question!r} reached another unit's manual"


async def test_own_unit_private_chunk_is_found(
    runtime: Runtime, demo_tenant: Tenant, current_stay: StayFinder
) -> None:
    stay = await current_stay("caracola")
    question = "¿Cuál es la clave del wifi de mi habitación?"
    found = await _search(runtime, Visibility(demo_tenant.id, stay.unit_id), question, k=3)
    assert any(h.scope == "unit" and h.unit_id == stay.unit_id for h in found.chunks)


async def test_a_guest_of_no_unit_sees_no_private_chunk(
    runtime: Runtime, demo_tenant: Tenant
) -> None:
    question = "door code wifi password safe code"
    found = await _search(runtime, Visibility(demo_tenant.id, None), question, k=20)
    assert found.chunks
    assert all(h.scope != "unit" for h in [*found.chunks, *found.faqs])


async def test_another_tenant_never_gets_the_demo_hotels_chunks(runtime: Runtime) -> None:
    async with runtime.pool.connection() as conn:
        empty = await ensure_tenant(conn, slug="empty-hotel")
    question = "¿A qué hora es el check-out?"
    found = await _search(runtime, Visibility(empty.id, None), question, k=10)
    assert found.chunks, "tourism content is shared"
    assert all(h.scope == "tourism" and h.tenant_id is None for h in found.chunks + found.faqs)


@pytest.mark.parametrize("weights", [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)])
async def test_each_side_of_the_fusion_can_be_measured_alone(
    runtime: Runtime, demo_tenant: Tenant, weights: tuple[float, float]
) -> None:
    question = "¿A qué hora es el check-out?"
    found = await _search(runtime, Visibility(demo_tenant.id, None), question, k=3, weights=weights)
    assert len(found.chunks) == 3
    top = found.chunks[0]
    if weights == (1.0, 0.0):
        assert top.vector_rank == 1
    elif weights == (0.0, 1.0):
        assert top.text_rank == 1
    assert "11:00" in top.text, top


async def test_a_small_tenant_among_many_still_gets_k_vector_hits(runtime: Runtime) -> None:
    """HNSW filters after the scan; iterative scans must still fill k rows for one tenant."""
    rng = np.random.default_rng(7)
    async with runtime.pool.connection() as conn:
        crowd = await ensure_tenant(conn, slug="crowded-hotel")
        small = await ensure_tenant(conn, slug="small-hotel")
        probe = await crowd_index(
            conn, rng=rng, counts={crowd.id: 3000, small.id: 6}, model=runtime.embedder.model
        )
        hits = {}
        for scan in ("relaxed_order", "off"):
            async with conn.transaction():
                # So few visible rows would be sorted exactly through the visibility index;
                # the HNSW scan is what the iterative setting is for, so force it here.
                await conn.execute("SET LOCAL enable_seqscan = off")
                await conn.execute("SET LOCAL enable_bitmapscan = off")
                await conn.execute(f"SET LOCAL hnsw.iterative_scan = {scan}")
                found = await retrieve(
                    conn,
                    visibility=Visibility(small.id, None),
                    text="qqq",
                    embedding=probe,
                    k=40,
                    candidates=40,
                    weights=(1.0, 0.0),
                )
            hits[scan] = [h for h in found.chunks if h.vector_rank is not None]
            if scan == "relaxed_order":
                assert found.chunks[0].tenant_id == small.id
    # 6 own chunks + the shared tourism ones are visible: the vector side must fill all 40
    # candidates from them, not the 40 nearest of the crowd filtered down to a handful.
    assert len(hits["relaxed_order"]) == 40
    assert all(h.tenant_id in (small.id, None) for h in hits["relaxed_order"])
    # The control: without the iterative scan the same plan stops short.
    assert len(hits["off"]) < 40
