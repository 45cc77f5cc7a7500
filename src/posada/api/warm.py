"""Warming the embedding cache with the questions guests asked most in the last days.

After a deploy (new processes, empty LRUs) or a Redis restart, the most asked questions
would each pay one embedding again; `posada cache warm`, or `POSADA_CACHE_WARM_ON_START`,
embeds them ahead of the guests, in batches (which the local model does far faster per
text), into the LRU and Redis.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from posada.cache.embeddings import CachingEmbedder
from posada.core.errors import ConfigurationError
from posada.runtime import Runtime

log = logging.getLogger(__name__)

BATCH = 64


@dataclass(frozen=True)
class WarmReport:
    """What a warm-up did."""

    questions: int  # distinct questions found
    computed: int  # of which were embedded now (the rest were already cached)


async def most_asked(runtime: Runtime, *, days: int, limit: int) -> list[str]:
    """The guests' most asked questions of the last `days`, as they wrote them."""
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT content FROM messages
               WHERE role = 'guest' AND created_at > now() - make_interval(days => %s)
               GROUP BY content ORDER BY count(*) DESC, content LIMIT %s""",
            (days, limit),
        )
        return [str(row[0]) for row in await cur.fetchall()]


async def warm_embeddings(runtime: Runtime, *, days: int, limit: int) -> WarmReport:
    """Embed the most asked questions into the embedding cache."""
    embedder = runtime.query_embedder
    if not isinstance(embedder, CachingEmbedder):
        raise ConfigurationError("the embedding cache is off (POSADA_EMBEDDING_CACHE)")
    questions = await most_asked(runtime, days=days, limit=limit)
    before = runtime.caches.shared.failures
    computed = 0
    for start in range(0, len(questions), BATCH):
        computed += await embedder.warm(questions[start : start + BATCH])
    if runtime.caches.shared.failures > before:
        log.warning("Redis failed while warming; the vectors are in this process only")
    return WarmReport(len(questions), computed)
