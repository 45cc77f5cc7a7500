"""Ingest against the real database: idempotency, update, prune, broken files, units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posada.core.errors import InvalidInput
from posada.knowledge.ingest import IngestReport, ingest_folder
from posada.providers.embeddings import questions_of
from posada.runtime import Runtime
from posada.tenants.service import Tenant, get_tenant
from tests.support.helpers import write_docs

FAQ = (
    "---\ntitle: FAQ\nlanguage: es\n---\n# FAQ\n\n## ¿Hay piscina?\nSí, abierta de 8:00 a 19:45.\n"
)
ROOM = (
    "---\ntitle: Suite Ola\ncategory: accommodations\nunit_slug: ola\nunit_name: Ola\n"
    "accommodation:\n  unit_type: suite\n  capacity: 3\n---\n# Suite Ola\nVista al mar.\n"
)
MANUAL = (
    "---\ntitle: Manual Ola\naccess_level: guest_only\nunit_reference:\n  unit_name: Ola\n---\n"
    "# Manual Ola\n\n## Código de la puerta\nEl código es 7391.\n"
)


async def _count(runtime: Runtime, sql: str, *params: object) -> int:
    async with runtime.pool.connection() as conn:
        row = await (await conn.execute(sql, params)).fetchone()
    assert row is not None
    return int(row[0])


async def _version(runtime: Runtime, tenant: Tenant) -> int:
    async with runtime.pool.connection() as conn:
        return (await get_tenant(conn, slug=tenant.slug)).knowledge_version


async def test_ingest_is_idempotent_updates_and_prunes(
    runtime: Runtime, new_tenant: Tenant, tmp_path: Path
) -> None:
    root = write_docs(tmp_path, {"faq.md": FAQ, "units/ola.md": ROOM, "manuals/ola.md": MANUAL})

    async def ingest(prune: bool = False) -> IngestReport:
        return await ingest_folder(
            pool=runtime.pool,
            embedder=runtime.embedder,
            root=root,
            tenant=new_tenant,
            prune=prune,
        )

    first = await ingest()
    assert sorted(first.added) == ["faq.md", "manuals/ola.md", "units/ola.md"]
    assert first.faqs == 1
    assert await _version(runtime, new_tenant) == 1
    assert (
        await _count(
            runtime,
            "SELECT count(*) FROM chunks c JOIN units u ON u.id = c.unit_id "
            "WHERE c.tenant_id = %s AND c.scope = 'unit' AND u.slug = 'ola'",
            new_tenant.id,
        )
        == 1
    )
    assert (
        await _count(
            runtime,
            "SELECT count(*) FROM units WHERE tenant_id = %s AND name = 'Ola' AND capacity = 3",
            new_tenant.id,
        )
        == 1
    )

    again = await ingest()
    assert sorted(again.unchanged) == ["faq.md", "manuals/ola.md", "units/ola.md"]
    assert not again.changed
    assert await _version(runtime, new_tenant) == 1, "a no-op ingest keeps cached answers valid"

    (root / "faq.md").write_text(FAQ.replace("19:45", "21:15"), encoding="utf-8")
    changed = await ingest()
    assert changed.updated == ["faq.md"]
    assert await _version(runtime, new_tenant) == 2
    texts = "SELECT count(*) FROM chunks WHERE tenant_id = %s AND content LIKE %s"
    assert await _count(runtime, texts, new_tenant.id, "%21:15%") == 1
    assert await _count(runtime, texts, new_tenant.id, "%19:45%") == 0
    assert (
        await _count(runtime, "SELECT count(*) FROM faq WHERE tenant_id = %s", new_tenant.id) == 1
    )

    (root / "faq.md").unlink()
    kept = await ingest(prune=False)
    assert kept.deleted == []
    pruned = await ingest(prune=True)
    assert pruned.deleted == ["faq.md"]
    assert (
        await _count(runtime, "SELECT count(*) FROM documents WHERE tenant_id = %s", new_tenant.id)
        == 2
    )
    assert (
        await _count(runtime, "SELECT count(*) FROM faq WHERE tenant_id = %s", new_tenant.id) == 0
    )


async def test_a_broken_file_is_reported_and_the_rest_ingest(
    runtime: Runtime, new_tenant: Tenant, tmp_path: Path
) -> None:
    root = write_docs(tmp_path, {"faq.md": FAQ, "rules.md": "# Reglas\nSilencio a las 22:00.\n"})
    await ingest_folder(pool=runtime.pool, embedder=runtime.embedder, root=root, tenant=new_tenant)

    # rules.md breaks; a new file arrives beside it
    write_docs(
        root,
        {
            "rules.md": "---\ntitle: [Reglas\n---\n# Reglas\n",
            "bar.md": "# Bar\nAbierto hasta las 23:30.\n",
            "blob.md": "\x00\x01binary",
        },
    )
    report = await ingest_folder(
        pool=runtime.pool, embedder=runtime.embedder, root=root, tenant=new_tenant, prune=True
    )
    assert report.added == ["bar.md"]
    assert sorted(f.source for f in report.failed) == ["blob.md", "rules.md"]
    assert any(f.message.startswith("rules.md:3: invalid YAML") for f in report.failed)
    assert report.deleted == [], "a broken file is not pruned: its last good version stays"
    assert (
        await _count(
            runtime,
            "SELECT count(*) FROM chunks WHERE tenant_id = %s AND content LIKE %s",
            new_tenant.id,
            "%22:00%",
        )
        == 1
    )


async def test_unit_option_needs_an_existing_unit(
    runtime: Runtime, new_tenant: Tenant, tmp_path: Path
) -> None:
    root = write_docs(tmp_path, {"codes.md": "# Códigos\nPuerta 5511.\n"})
    with pytest.raises(InvalidInput, match="unit 'nope' does not exist"):
        await ingest_folder(
            pool=runtime.pool,
            embedder=runtime.embedder,
            root=root,
            tenant=new_tenant,
            unit_slug="nope",
        )


async def test_unit_option_makes_documents_private_to_that_unit(
    runtime: Runtime, new_tenant: Tenant, tmp_path: Path
) -> None:
    rooms = write_docs(tmp_path / "rooms", {"ola.md": ROOM})
    await ingest_folder(pool=runtime.pool, embedder=runtime.embedder, root=rooms, tenant=new_tenant)
    codes = write_docs(tmp_path / "codes", {"codes.md": "# Códigos\nPuerta 5511.\n"})
    report = await ingest_folder(
        pool=runtime.pool,
        embedder=runtime.embedder,
        root=codes,
        tenant=new_tenant,
        unit_slug="ola",
    )
    assert report.added == ["codes.md"]
    assert (
        await _count(
            runtime,
            "SELECT count(*) FROM chunks c JOIN units u ON u.id = c.unit_id "
            "WHERE c.tenant_id = %s AND c.scope = 'unit' AND u.slug = 'ola' AND c.content LIKE %s",
            new_tenant.id,
            "%5511%",
        )
        == 1
    )


async def test_tourism_content_rejects_unit_documents(runtime: Runtime, tmp_path: Path) -> None:
    root = write_docs(tmp_path, {"manual.md": MANUAL})
    report = await ingest_folder(
        pool=runtime.pool, embedder=runtime.embedder, root=root, tenant=None
    )
    assert [f.source for f in report.failed] == ["manual.md"]
    assert "use --tenant" in report.failed[0].message
    assert not report.changed


async def test_missing_path_is_a_clear_error(runtime: Runtime, new_tenant: Tenant) -> None:
    with pytest.raises(InvalidInput, match="no such file or folder"):
        await ingest_folder(
            pool=runtime.pool,
            embedder=runtime.embedder,
            root=Path("/nonexistent/docs"),
            tenant=new_tenant,
        )


async def test_prune_refuses_a_single_file(
    runtime: Runtime, new_tenant: Tenant, tmp_path: Path
) -> None:
    root = write_docs(tmp_path, {"faq.md": FAQ})
    with pytest.raises(InvalidInput, match="--prune needs the folder"):
        await ingest_folder(
            pool=runtime.pool,
            embedder=runtime.embedder,
            root=root / "faq.md",
            tenant=new_tenant,
            prune=True,
        )


async def test_concurrent_ingests_do_not_collide(
    runtime: Runtime, new_tenant: Tenant, tmp_path: Path
) -> None:
    import asyncio

    from posada.tenants.service import ensure_tenant

    async with runtime.pool.connection() as conn:
        other = await ensure_tenant(conn, slug=f"{new_tenant.slug}-b")
    root = write_docs(tmp_path, {"faq.md": FAQ, "units/ola.md": ROOM})
    reports = await asyncio.gather(
        *(
            ingest_folder(pool=runtime.pool, embedder=runtime.embedder, root=root, tenant=t)
            for t in (new_tenant, new_tenant, other)
        )
    )
    assert all(not r.failed for r in reports), [r.failed for r in reports]
    for tenant in (new_tenant, other):
        assert (
            await _count(runtime, "SELECT count(*) FROM documents WHERE tenant_id = %s", tenant.id)
            == 2
        )


async def test_faq_questions_are_embedded_as_questions_when_no_embedder_is_named(
    runtime: Runtime, new_tenant: Tenant, tmp_path: Path
) -> None:
    # Only the passage embedder given, as most callers do: e5 reads FAQ questions with its
    # question prefix all the same, since guests' questions are compared with them.
    root = write_docs(tmp_path / "faq", {"faq.md": FAQ})
    await ingest_folder(pool=runtime.pool, embedder=runtime.embedder, root=root, tenant=new_tenant)
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT question, embedding FROM faq WHERE tenant_id = %s", (new_tenant.id,)
        )
        [(question, vector)] = await cur.fetchall()
    stored = np.asarray(vector.to_numpy())
    as_question = (await questions_of(runtime.embedder).embed_batch([question]))[0]
    as_passage = (await runtime.embedder.embed_batch([question]))[0]
    assert np.allclose(stored, as_question, atol=1e-4)
    assert not np.allclose(stored, as_passage, atol=1e-4)
