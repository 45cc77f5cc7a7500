"""What a running posada holds open: the database pool, the embedding model, the caches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from psycopg_pool import AsyncConnectionPool

from posada.cache.answers import ExactCache
from posada.cache.embeddings import CachingEmbedder
from posada.cache.shared import SharedCache
from posada.cache.swr import StaleWhileRevalidate
from posada.cache.versions import KnowledgeVersions
from posada.core import language
from posada.core.config import Settings
from posada.db.embedded import watch_embedded
from posada.db.migrate import migrate
from posada.db.pool import AsyncConn, open_pool, resolve_database_url, resolve_direct_url
from posada.guests.live import hub_for
from posada.knowledge.reembed import require_embedding_model
from posada.observe.ledger import UsageLedger, usage_recorder
from posada.observe.prom import (
    forget_this_process,
    knowledge_figures,
    multiprocess_dir,
    pool_figures,
)
from posada.providers.embeddings import build_embedders
from posada.providers.llm import ChatModel
from posada.providers.registry import Tier, build_chat_models
from posada.providers.types import Embedder

log = logging.getLogger(__name__)

_POOL_FIGURES_S = 2.0  # how fresh a worker's pool figures are when another serves /metrics


@dataclass
class Caches:
    """The caches of one process: Redis (shared), the exact answers, the public routes."""

    shared: SharedCache
    versions: KnowledgeVersions
    answers: ExactCache
    public: StaleWhileRevalidate

    @classmethod
    def build(
        cls, settings: Settings, *, shared: SharedCache, versions: KnowledgeVersions
    ) -> Caches:
        """Fresh in-process caches over `shared` Redis; they forget a tenant on its ingest."""
        caches = cls(
            shared=shared,
            versions=versions,
            answers=ExactCache(
                shared, size=settings.answer_cache_size, ttl_s=settings.answer_cache_ttl_s
            ),
            public=StaleWhileRevalidate(
                max_age_s=settings.public_max_age_s, stale_s=settings.public_stale_s
            ),
        )
        versions.subscribe(caches.answers.forget)
        versions.subscribe(caches.public.invalidate)
        return caches


def question_embedder(settings: Settings, embedder: Embedder, shared: SharedCache) -> Embedder:
    """The embedder for guests' questions: behind the embedding cache when it is on."""
    if not settings.embedding_cache:
        return embedder
    return CachingEmbedder(
        embedder,
        shared,
        size=settings.embedding_cache_size,
        ttl_s=settings.embedding_cache_ttl_s,
    )


@dataclass(eq=False)  # one per process, known by identity (answers.steps keys on it)
class Runtime:
    """Shared by the web app and the CLI; opened once per process.

    `embedder` embeds documents (ingest); `query_embedder` embeds questions, through the
    embedding cache when it is on. `database_url` is what the pool connects to (perhaps a
    pooler); `direct_url` the server itself, for what holds a session: LISTEN, migrations.
    """

    settings: Settings
    database_url: str
    pool: AsyncConnectionPool[AsyncConn]
    embedder: Embedder
    caches: Caches
    query_embedder: Embedder
    chat_models: dict[Tier, ChatModel] = field(default_factory=dict)
    model_ready: bool = field(default=False)
    ledger: UsageLedger | None = None
    watchdog: asyncio.Task[None] | None = None  # restarts the embedded server if it dies
    direct_url: str = ""  # set by `open`; empty: the same as `database_url`
    pool_figures: asyncio.Task[None] | None = None  # this worker's pool use, for /metrics

    def __post_init__(self) -> None:
        self.direct_url = self.direct_url or self.database_url

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        query_embedder: Embedder | None = None,
        check_embeddings: bool = True,
    ) -> Runtime:
        """Start or find the database, apply migrations, open the pool, load the model.

        `embedder` (and `query_embedder`, else the same) replace the configured ones.
        Unless `check_embeddings` is off (`posada reembed`), a database whose stored
        vectors come from another model is refused: `knowledge.reembed`.
        """
        url, direct, pool = await _open_database(settings)
        if embedder is None:
            embedder, query_embedder = build_embedders(settings)
        query_embedder = embedder if query_embedder is None else query_embedder
        if check_embeddings:
            try:
                async with pool.connection() as conn:
                    await require_embedding_model(conn, model=embedder.model)
            except BaseException:
                await pool.close()
                raise
        ledger = _ledger(pool, settings, embedder, query_embedder)
        redis = settings.redis_url.get_secret_value() if settings.redis_url else None
        shared = SharedCache(
            redis,
            prefix=settings.redis_prefix,
            timeout_s=settings.redis_timeout_ms / 1000,
            retry_after_s=settings.redis_retry_s,
        )
        versions = KnowledgeVersions(pool, direct)
        versions.subscribe(knowledge_figures().heard)
        # The live streams' listener too (made now: the routes ask for it by pool).
        hub_for(pool, direct)
        runtime = cls(
            settings,
            url,
            pool,
            embedder,
            Caches.build(settings, shared=shared, versions=versions),
            question_embedder(settings, query_embedder, shared),
            build_chat_models(settings),
            ledger=ledger,
            direct_url=direct,
        )
        try:
            await runtime._start()
        except BaseException:  # nothing left running behind a runtime that did not open
            await runtime.close()
            raise
        return runtime

    async def _start(self) -> None:
        await self.caches.versions.start()
        _report_pool(self)
        if self.settings.database_url is None:
            self.watchdog = asyncio.create_task(
                watch_embedded(self.settings.data_dir, interval_s=self.settings.embedded_watch_s),
                name="posada-embedded-watchdog",
            )
        await self.load_model()

    async def load_model(self) -> None:
        """Load the local model off the event loop, so a first question does not wait for it."""
        # A local model (e5's two roles share one engine); an API has nothing to load.
        load = getattr(self.embedder, "load", None)
        if load is not None:
            await asyncio.to_thread(load)
        await asyncio.to_thread(language.load)  # the language detector's, too
        self.model_ready = True

    async def close(self, *, timeout_s: float = 10.0) -> None:
        """Stop the listener, write the usage ledger, close Redis and the pool.

        Every step has its share of `timeout_s`: a command returns when its work is done,
        whatever a background task or a dead database is waiting on.
        """
        for task in (self.watchdog, self.pool_figures):
            if task is not None:
                task.cancel()
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("knowledge-version listener", self.caches.versions.close)
        ]
        if self.ledger is not None:
            steps.append(("usage ledger", self.ledger.close))
        steps += [
            ("redis", self.caches.shared.close),
            ("database pool", lambda: self.pool.close(timeout=timeout_s / 4)),
        ]
        for name, step in steps:
            try:
                await asyncio.wait_for(step(), timeout=timeout_s / 2)
            except TimeoutError:
                log.warning("closing the %s took over %.1f s; left behind", name, timeout_s / 2)
            except Exception as exc:
                log.warning("closing the %s failed: %s", name, exc)
        if self.pool_figures is not None:
            forget_this_process()  # a worker gone: its gauges leave the merged /metrics


async def _open_database(
    settings: Settings,
) -> tuple[str, str, AsyncConnectionPool[AsyncConn]]:
    """The database's address (starting the embedded server if none is set), the server's
    own (past a pooler), migrated through it (a session lock), and the pool."""
    url = await asyncio.to_thread(resolve_database_url, settings)
    # The embedded server has no pooler in front: its address is both.
    direct = url if settings.database_url is None else resolve_direct_url(settings)
    applied = await asyncio.to_thread(migrate, direct, embedding_dim=settings.embedding_dim)
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    pool = await open_pool(
        url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout_s=settings.pool_timeout_s,
        pooled=settings.database_pooler == "transaction",
    )
    return url, direct, pool


def _ledger(
    pool: AsyncConnectionPool[AsyncConn],
    settings: Settings,
    embedder: Embedder,
    query_embedder: Embedder,
) -> UsageLedger:
    """The usage ledger, started, told of every embedding both embedders compute."""
    ledger = UsageLedger(
        pool,
        count_tokens=getattr(embedder, "count_tokens", None),
        flush_interval_s=settings.ledger_flush_s,
    )
    embedder.on_usage = usage_recorder(ledger, api_price_per_m=settings.embedding_price_per_m)
    query_embedder.on_usage = embedder.on_usage
    ledger.start()
    return ledger


def _report_pool(runtime: Runtime) -> None:
    """The pool's use on /metrics: read at each scrape, and by each of several workers."""
    pool_figures().watch(runtime.pool)
    if multiprocess_dir():
        runtime.pool_figures = asyncio.create_task(
            pool_figures().refresh_every(_POOL_FIGURES_S), name="posada-pool-figures"
        )
