"""Changing the embedding model: the model recorded per row, the start-up check, `posada reembed`.

Each test has a database of its own on the session's embedded server, filled through
posada's own ingest with all-MiniLM-L6-v2, then re-embedded with multilingual-e5-small
by the real command, as an operator runs it.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from posada.cache.semantic import CacheEntry, store_entry
from posada.core.config import Settings
from posada.core.errors import ConfigurationError
from posada.knowledge.ingest import ingest_folder
from posada.knowledge.markdown import chunk_embedding_text
from posada.providers.e5 import E5_MODEL, e5_embedders
from posada.runtime import Runtime
from posada.tenants.service import ensure_tenant
from posada_bench.servers import free_port
from tests.support.helpers import CliResult, run_cli, write_docs

MINILM = "all-MiniLM-L6-v2"
HOTEL = (
    "---\ntitle: Guía {name}\nlanguage: es\n---\n# Guía\n\n"
    "## ¿A qué hora es el desayuno?\nDe 7:30 a 10:00 en la terraza de {name}.\n\n"
    "## ¿Hay piscina?\nSí, abierta de 8:00 a 19:45.\n\n"
    "## Salida\nLas habitaciones se entregan a las 11:00.\n"
)
TOURISM = (
    "---\ntitle: Buceo\nlanguage: es\n---\n# Buceo en San Andrés\n\n"
    "## ¿Dónde se puede bucear?\nEn la playa de San Luis y en el Acuario.\n"
)

Row = tuple[int | None, str, np.ndarray]  # tenant id, model, vector


@pytest.fixture
async def own_db(
    settings: Settings, runtime: Runtime, tmp_path: Path
) -> AsyncIterator[tuple[Runtime, dict[str, int]]]:
    """A database of this test's own: hotels a and b and tourism, by all-MiniLM-L6-v2."""
    own = settings.model_copy(
        update={"database_name": f"reembed_{uuid.uuid4().hex[:10]}", "embedding_model": MINILM}
    )
    opened = await Runtime.open(own)  # the earlier default model, before e5
    ids: dict[str, int] = {}
    try:
        for slug in ("hotel-a", "hotel-b"):
            async with opened.pool.connection() as conn:
                tenant = await ensure_tenant(conn, slug=slug)
            ids[slug] = tenant.id
            root = write_docs(tmp_path / slug, {"guia.md": HOTEL.format(name=slug)})
            await ingest_folder(
                pool=opened.pool, embedder=opened.embedder, root=root, tenant=tenant
            )
        root = write_docs(tmp_path / "tourism", {"buceo.md": TOURISM})
        await ingest_folder(pool=opened.pool, embedder=opened.embedder, root=root, tenant=None)
        for tenant_id in ids.values():  # after the ingests, which drop older answers
            await _cache_an_answer(opened, tenant_id)
        yield opened, ids
    finally:
        await opened.close()


async def _cache_an_answer(runtime: Runtime, tenant_id: int) -> None:
    """A semantic answer cache entry, as the pipeline stores one."""
    vector = (await runtime.embedder.embed_batch(["¿hay piscina?"]))[0]
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT knowledge_version FROM tenants WHERE id = %s", (tenant_id,)
        )
        row = await cur.fetchone()
        assert row is not None
        entry = CacheEntry(
            tenant_id, None, int(row[0]), "es", "¿Hay piscina?", "hay piscina", vector,
            "Sí, abierta de 8:00 a 19:45.", "extractive", None, [], None,
        )  # fmt: skip
        await store_entry(conn, entry=entry)


def _env(runtime: Runtime, model: str = E5_MODEL) -> dict[str, str]:
    return {
        **os.environ,
        "POSADA_DATABASE_URL": runtime.database_url,
        "POSADA_JWT_SECRET": "reembed-test-secret-0123456789-0123456789",
        "POSADA_DATA_DIR": str(runtime.settings.data_dir),
        "POSADA_EMBEDDING_MODEL": model,
    }


async def _posada(runtime: Runtime, *args: str, model: str = E5_MODEL) -> CliResult:
    result = await asyncio.to_thread(run_cli, _env(runtime, model), *args)
    # Rich wraps long messages at the console's width.
    return CliResult(
        result.returncode, " ".join(result.stdout.split()), " ".join(result.stderr.split())
    )


def _counts(stdout: str) -> int:
    """The rows a `posada reembed` says it embedded."""
    said = re.search(r"re-embedded (\d+) chunks and (\d+) FAQ entries", stdout)
    assert said is not None, stdout
    return int(said[1]) + int(said[2])


async def _rows(runtime: Runtime) -> dict[tuple[str, int], Row]:
    """Every stored vector: (table, id) -> (tenant, model, vector)."""
    found: dict[tuple[str, int], Row] = {}
    async with runtime.pool.connection() as conn:
        for table, sql in (
            ("chunks", "SELECT id, tenant_id, embedding_model, embedding FROM chunks"),
            ("faq", "SELECT id, tenant_id, embedding_model, embedding FROM faq"),
        ):
            cur = await conn.execute(sql)
            for id_, tenant_id, model, vector in await cur.fetchall():
                found[(table, id_)] = (
                    tenant_id,
                    model,
                    np.asarray(vector.to_numpy(), dtype=np.float32),
                )
    return found


async def _versions_and_cached(runtime: Runtime) -> dict[str, tuple[int, int]]:
    """Per hotel: its knowledge version and its semantic cache entries."""
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT t.slug, t.knowledge_version, count(a.id) FROM tenants t "
            "LEFT JOIN answer_cache a ON a.tenant_id = t.id GROUP BY t.slug, t.knowledge_version"
        )
        return {str(slug): (int(v), int(n)) for slug, v, n in await cur.fetchall()}


async def _open(runtime: Runtime, model: str) -> Runtime:
    return await Runtime.open(runtime.settings.model_copy(update={"embedding_model": model}))


async def test_reembed_one_hotel_leaves_the_other_and_tourism_untouched(
    own_db: tuple[Runtime, dict[str, int]],
) -> None:
    db, ids = own_db
    before, state = await _rows(db), await _versions_and_cached(db)
    assert state["hotel-b"][1] == 1, "hotel b has a cached answer to keep"
    assert {model for _, model, _ in before.values()} == {MINILM}, "ingest records its model"

    mine = [key for key, (tenant_id, _, _) in before.items() if tenant_id == ids["hotel-a"]]
    chunks = sum(table == "chunks" for table, _ in mine)
    done = await _posada(db, "reembed", "--tenant", "hotel-a")
    assert done.returncode == 0, done.stderr
    assert f"re-embedded {chunks} chunks and {len(mine) - chunks} FAQ entries with {E5_MODEL}" in (
        done.stdout
    )
    assert "knowledge version bumped for 1 hotels (hotel-a)" in done.stdout

    after = await _rows(db)
    assert after.keys() == before.keys()
    passages, questions = e5_embedders()
    async with db.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, heading, content FROM chunks WHERE tenant_id = %s", (ids["hotel-a"],)
        )
        chunk_text = {i: chunk_embedding_text(h, c) for i, h, c in await cur.fetchall()}
        cur = await conn.execute(
            "SELECT id, question FROM faq WHERE tenant_id = %s", (ids["hotel-a"],)
        )
        faq_text: dict[int, str] = dict(await cur.fetchall())
    for key, (tenant_id, model, vector) in after.items():
        old = before[key][2]
        if tenant_id == ids["hotel-a"]:
            assert model == E5_MODEL
            assert float(vector @ old) < 0.9, "a new vector, not the old one relabelled"
            table, id_ = key
            embedder, text = (
                (passages, chunk_text[id_]) if table == "chunks" else (questions, faq_text[id_])
            )
            expected = (await embedder.embed_batch([text]))[0]
            assert np.allclose(vector, expected, atol=1e-4), f"{table} by its role"
        else:  # hotel b and tourism: not one byte changed
            assert model == MINILM
            assert np.array_equal(vector, old)
    now = await _versions_and_cached(db)
    assert now["hotel-a"] == (state["hotel-a"][0] + 1, 0), "version bumped, cached answers gone"
    assert now["hotel-b"] == state["hotel-b"], "hotel b's version and cached answer kept"

    # Hotel b and tourism still hold all-MiniLM-L6-v2 vectors: posada will not start on e5.
    with pytest.raises(ConfigurationError) as refused:
        await _open(db, E5_MODEL)
    message = refused.value.message
    assert f"hotel-b: {chunks} chunks, {len(mine) - chunks} FAQ entries by {MINILM}" in message
    assert "tourism: " in message
    assert "hotel-a" not in message
    assert "Run `posada reembed`" in message
    assert "POSADA_EMBEDDING_MODEL=" not in message, "a mixed database has one way out"


async def test_reembed_resumes_after_a_stop_and_posada_starts_only_once_it_is_done(
    own_db: tuple[Runtime, dict[str, int]],
) -> None:
    db, _ = own_db
    total = len(await _rows(db))
    state = await _versions_and_cached(db)

    # Configured for e5 on a MiniLM database: refused, with what to do.
    with pytest.raises(ConfigurationError, match="Run `posada reembed`") as refused:
        await _open(db, E5_MODEL)
    assert f"or set POSADA_EMBEDDING_MODEL={MINILM}" in refused.value.message
    asked = await _posada(db, "ask", "--tenant", "hotel-a", "¿Hay piscina?")
    assert asked.returncode == 1
    assert "the configured one, multilingual-e5-small" in asked.stderr
    assert "Run `posada reembed` with this configuration" in asked.stderr

    # Interrupted after two batches: what was done stays done, nothing else.
    stopped = await _posada(db, "reembed", "--batch-size", "2", "--batches", "2")
    assert stopped.returncode == 0, stopped.stderr
    first = _counts(stopped.stdout)
    assert 2 <= first <= 4, stopped.stdout
    assert "in 2 batches" in stopped.stdout
    assert f"stopped: {total - first} rows of this database are still of another model" in (
        stopped.stderr
    )
    models = [model for _, model, _ in (await _rows(db)).values()]
    assert models.count(E5_MODEL) == first
    assert await _versions_and_cached(db) == state, "caches are dropped at the end, not before"

    # Run again: it does only the rest, then forgets every hotel's old answers.
    rest = await _posada(db, "reembed", "--batch-size", "2")
    assert rest.returncode == 0, rest.stderr
    assert _counts(rest.stdout) == total - first, "only what the first run left"
    assert "dropped 2 cached answers; knowledge version bumped for 2 hotels" in rest.stdout
    assert {model for _, model, _ in (await _rows(db)).values()} == {E5_MODEL}
    now = await _versions_and_cached(db)
    assert all(now[slug] == (state[slug][0] + 1, 0) for slug in state)

    again = await _posada(db, "reembed")
    assert (
        "nothing to re-embed: every vector of this database is from multilingual-e5-small"
        in again.stdout
    )

    # Now e5 starts (and ingests with its model), and MiniLM is the one refused.
    e5 = await _open(db, E5_MODEL)
    await e5.close()
    with pytest.raises(ConfigurationError, match=f"set POSADA_EMBEDDING_MODEL={E5_MODEL}"):
        await _open(db, MINILM)


async def test_serve_refuses_a_database_of_another_model_with_the_message(
    own_db: tuple[Runtime, dict[str, int]],
) -> None:
    db, _ = own_db
    served = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "posada", "serve", "--port", str(free_port())],
        env=_env(db),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert served.returncode == 1, served.stderr
    stderr = " ".join(served.stderr.split())
    assert "error: this database holds vectors embedded by another model" in stderr
    assert "Run `posada reembed`" in stderr
    assert "Traceback" not in stderr


async def test_reembed_reports_a_bad_hotel_and_an_unreachable_database(
    own_db: tuple[Runtime, dict[str, int]],
) -> None:
    db, _ = own_db
    unknown = await _posada(db, "reembed", "--tenant", "nowhere")
    assert unknown.returncode == 1
    assert "unknown hotel 'nowhere'" in unknown.stderr
    assert {model for _, model, _ in (await _rows(db)).values()} == {MINILM}
    env = {**_env(db), "POSADA_DATABASE_URL": f"postgresql://posada@127.0.0.1:{free_port()}/x"}
    unreachable = await asyncio.to_thread(run_cli, env, "reembed")
    assert unreachable.returncode == 1
    assert "cannot reach the database" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
