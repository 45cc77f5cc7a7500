"""Many random passages for some tenants at once, to crowd the vector index in tests."""

from __future__ import annotations

import numpy as np

from posada.db.pool import AsyncConn


async def crowd_index(
    conn: AsyncConn, *, rng: np.random.Generator, counts: dict[int, int], model: str
) -> np.ndarray:
    """`count` random passages for each tenant (in place of its documents); a probe near the
    last one's first."""
    async with conn.transaction():
        for tenant_id, count in counts.items():
            await conn.execute("DELETE FROM documents WHERE tenant_id = %s", (tenant_id,))
            cur = await conn.execute(
                "INSERT INTO documents (tenant_id, scope, source, title, content_hash) "
                "VALUES (%s, 'hotel', 'bulk.md', 'Bulk', 'x') RETURNING id",
                (tenant_id,),
            )
            row = await cur.fetchone()
            assert row is not None
            vectors = rng.normal(size=(count, 384)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            async with conn.cursor() as insert:
                await insert.executemany(
                    "INSERT INTO chunks (document_id, tenant_id, scope, ordinal, heading,"
                    " content, embedding, embedding_model) "
                    "VALUES (%s, %s, 'hotel', %s, 'h', 'zzz', %s, %s)",
                    [(row[0], tenant_id, i, v, model) for i, v in enumerate(vectors)],
                )
    await conn.execute("ANALYZE chunks")
    probe: np.ndarray = vectors[0] + 0.05 * rng.normal(size=384).astype(np.float32)
    return probe
