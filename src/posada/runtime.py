"""What a running posada holds open: the database pool and the embedding model."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from psycopg_pool import AsyncConnectionPool

from posada.config import Settings
from posada.db.migrate import migrate
from posada.db.pool import AsyncConn, open_pool, resolve_database_url
from posada.observe.ledger import UsageLedger, usage_recorder
from posada.providers.embeddings import Embedder, LocalEmbedder, build_embedder
from posada.providers.llm import ChatModel
from posada.providers.registry import Tier, build_chat_models

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Shared by the web app and the CLI; opened once per process."""

    settings: Settings
    database_url: str
    pool: AsyncConnectionPool[AsyncConn]
    embedder: Embedder
    chat_models: dict[Tier, ChatModel] = field(default_factory=dict)
    model_ready: bool = field(default=False)
    ledger: UsageLedger | None = None

    @classmethod
    async def open(cls, settings: Settings, *, embedder: Embedder | None = None) -> Runtime:
        """Start or find the database, apply migrations, open the pool, load the model."""
        url = await asyncio.to_thread(resolve_database_url, settings)
        applied = await asyncio.to_thread(migrate, url, embedding_dim=settings.embedding_dim)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        pool = await open_pool(
            url, min_size=settings.pool_min_size, max_size=settings.pool_max_size
        )
        embedder = embedder or build_embedder(settings)
        ledger = UsageLedger(
            pool,
            count_tokens=getattr(embedder, "count_tokens", None),
            flush_interval_s=settings.ledger_flush_s,
        )
        embedder.on_usage = usage_recorder(ledger, api_price_per_m=settings.embedding_price_per_m)
        ledger.start()
        runtime = cls(settings, url, pool, embedder, build_chat_models(settings), ledger=ledger)
        await runtime.load_model()
        return runtime

    async def load_model(self) -> None:
        """Load the local model off the event loop, so a first question does not wait for it."""
        if isinstance(self.embedder, LocalEmbedder):
            await asyncio.to_thread(self.embedder.load)
        self.model_ready = True

    async def close(self) -> None:
        """Write the usage ledger, close the pool; the embedded server stops at exit."""
        if self.ledger is not None:
            await self.ledger.close()
        await self.pool.close()
