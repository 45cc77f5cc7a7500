"""Health endpoints, public info and migrations on the real database."""

from __future__ import annotations

import httpx
import pytest

from posada.core.errors import ConfigurationError
from posada.db.migrate import load_migrations, migrate
from posada.runtime import Runtime


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "database": True, "model": True}


async def test_public_info_and_unknown_hotel(client: httpx.AsyncClient) -> None:
    info = await client.get("/api/public/casa-azul/info")
    assert info.json() == {"slug": "casa-azul", "name": "Hotel Casa Azul"}
    assert (await client.get("/api/public/nowhere/info")).status_code == 404


def test_migrations_are_numbered_and_applied_once(runtime: Runtime) -> None:
    versions = [m.version for m in load_migrations()]
    assert versions == sorted(set(versions))
    assert versions[0] == 1
    assert migrate(runtime.database_url, embedding_dim=384) == []


def test_a_database_of_another_dimension_is_refused(runtime: Runtime) -> None:
    with pytest.raises(ConfigurationError, match="384-dimension"):
        migrate(runtime.database_url, embedding_dim=1536)


async def test_schema_has_the_indexes_retrieval_needs(runtime: Runtime) -> None:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('chunks', 'faq')"
        )
        indexes: dict[str, str] = dict(await cur.fetchall())
    assert "USING hnsw (embedding vector_cosine_ops)" in indexes["chunks_embedding_idx"]
    assert "USING gin (tsv)" in indexes["chunks_tsv_idx"]
    assert "USING hnsw" in indexes["faq_embedding_idx"]


async def test_full_text_folds_accents_and_both_languages(runtime: Runtime) -> None:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT to_tsvector('posada_es', 'Habitación')"
            " @@ to_tsquery('posada_es', 'habitacion'),"
            " to_tsvector('posada_en', 'the rooms') @@ to_tsquery('posada_en', 'room'),"
            " length(to_tsvector('posada_en', 'el la los de que'))"
        )
        row = await cur.fetchone()
    assert row == (True, True, 0)
