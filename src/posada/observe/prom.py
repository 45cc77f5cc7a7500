"""Prometheus metrics, exposed at `/metrics`.

With several uvicorn workers, `posada serve` points `PROMETHEUS_MULTIPROC_DIR` at a fresh
folder before the workers start; each worker writes its values there and `/metrics`
merges them all (prometheus-client's multiprocess mode). Otherwise the app's own
registry is served.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from psycopg_pool import AsyncConnectionPool

from posada.core.context import RequestStats
from posada.observe.window import RequestRecord

_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_QUERIES = (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 50)
# A model's first token: tens of milliseconds (a local model) to seconds (a busy vendor).
_TTFT = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30)


def multiprocess_dir() -> str | None:
    """The shared folder of multiprocess mode, if it is on."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def forget_this_process() -> None:
    """Drop this process's live gauges from the shared folder (a worker that is leaving)."""
    folder = multiprocess_dir()
    if folder:
        mark_process_dead(os.getpid(), folder)  # type: ignore[no-untyped-call]


class Metrics:
    """posada's metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._add_timings(self.registry)
        self._add_usage(self.registry)
        self._add_outcomes(self.registry)
        for collector in pool_figures().collectors():
            self.registry.register(collector)
        self.registry.register(knowledge_figures().changes)

    def _add_timings(self, r: CollectorRegistry) -> None:
        self.requests = Histogram(
            "posada_request_duration_seconds",
            "Request duration until the last byte, by route template and status.",
            ["route", "method", "status"],
            buckets=_SECONDS,
            registry=r,
        )
        self.stages = Histogram(
            "posada_stage_duration_seconds",
            "Duration of each answering stage.",
            ["stage"],
            buckets=_SECONDS,
            registry=r,
        )
        self.db_queries = Histogram(
            "posada_db_queries_per_request",
            "Database round trips per request.",
            ["route"],
            buckets=_QUERIES,
            registry=r,
        )
        self.llm_ttft = Histogram(
            "posada_llm_ttft_seconds",
            "Time from sending a prompt to a model until its first token, by model.",
            ["model"],
            buckets=_TTFT,
            registry=r,
        )

    def _add_usage(self, r: CollectorRegistry) -> None:
        self.embedded = Counter(
            "posada_embedded_texts",
            "Texts embedded, by provider and cache outcome (computed or cached).",
            ["provider", "outcome"],
            registry=r,
        )
        self.embedding_api_calls = Counter(
            "posada_embedding_api_calls", "Calls to an embedding API.", ["provider"], registry=r
        )
        self.llm_calls = Counter(
            "posada_llm_calls", "Requests sent to LLMs (answered or not).", registry=r
        )
        self.llm_tokens = Counter(
            "posada_llm_tokens",
            "LLM tokens by tenant, model and direction (input or output).",
            ["tenant", "model", "direction"],
            registry=r,
        )
        self.llm_cost = Counter(
            "posada_llm_cost_usd", "LLM cost in USD by tenant and model.", ["tenant", "model"],
            registry=r,
        )  # fmt: skip

    def _add_outcomes(self, r: CollectorRegistry) -> None:
        self.cache = Counter(
            "posada_cache_outcomes",
            "Lookups in each answer layer, by outcome (hit or miss).",
            ["layer", "outcome"],
            registry=r,
        )
        # Labelled by hotel (a few) and layer (a handful), never by guest or question.
        self.answers = Counter(
            "posada_answers",
            "Answers given, by hotel and by the layer that gave them (exact, faq, llm...).",
            ["tenant", "layer"],
            registry=r,
        )
        self.redis_errors = Counter(
            "posada_redis_errors",
            "Redis operations that failed or timed out (posada went on without Redis).",
            registry=r,
        )
        self.slow = Counter(
            "posada_slow_requests", "Requests slower than the threshold.", ["route"], registry=r
        )
        # Set by the budget check (posada.tenants.budgets), not per request. With several
        # workers each reports its own reading; /metrics keeps the most recent of the live
        # ones (a raised or removed budget is not held up by a worker that read it before).
        self.budget_ratio = Gauge(
            "posada_budget_projected_ratio",
            "A hotel's projected spend this month over its monthly budget (1 = the budget).",
            ["tenant"],
            multiprocess_mode="livemostrecent",
            registry=r,
        )
        self.n_plus_one = Counter(
            "posada_n_plus_one_requests",
            "Requests that ran one statement shape more often than allowed.",
            ["route"],
            registry=r,
        )

    def observe(self, record: RequestRecord, stats: RequestStats) -> None:
        """Add a finished request."""
        self.requests.labels(record.route, record.method, str(record.status)).observe(
            record.duration_ms / 1000
        )
        for name, ms in stats.stages.items():
            self.stages.labels(name).observe(ms / 1000)
        self.db_queries.labels(record.route).observe(stats.db_queries)
        provider = stats.embed_provider or "none"
        if stats.embed_computed:
            self.embedded.labels(provider, "computed").inc(stats.embed_computed)
        if stats.embed_cached:
            self.embedded.labels(provider, "cached").inc(stats.embed_cached)
        if stats.embed_api_calls:
            self.embedding_api_calls.labels(provider).inc(stats.embed_api_calls)
        if stats.llm_calls:
            self.llm_calls.inc(stats.llm_calls)
        tenant = stats.tenant or "none"
        for use in stats.llm:
            self.llm_tokens.labels(tenant, use.model, "input").inc(use.input_tokens)
            self.llm_tokens.labels(tenant, use.model, "output").inc(use.output_tokens)
            self.llm_cost.labels(tenant, use.model).inc(use.cost_usd)
        for model, seconds in stats.first_tokens:
            self.llm_ttft.labels(model).observe(seconds)
        for layer, outcome in stats.cache:
            self.cache.labels(layer, outcome).inc()
        for layer in stats.answers:
            self.answers.labels(tenant, layer).inc()
        if stats.redis_errors:
            self.redis_errors.inc(stats.redis_errors)
        if record.slow:
            self.slow.labels(record.route).inc()
        if record.n_plus_one:
            self.n_plus_one.labels(record.route).inc()

    def exposition(self) -> bytes:
        """The text format: every worker's values in multiprocess mode, else this app's."""
        pool_figures().refresh()  # this process's, as of now
        if multiprocess_dir():
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)


class PoolFigures:
    """How this process's database pools are used, from psycopg_pool's own stats.

    Read when /metrics is scraped, and, with several workers (each writes its own values
    for the one serving the scrape to merge), every few seconds by each worker: never per
    request. The gauges are per process (`pid` in multiprocess mode), the counters add up.
    """

    def __init__(self) -> None:
        self._pools: weakref.WeakSet[AsyncConnectionPool[Any]] = weakref.WeakSet()
        # In no registry of their own: each app's Metrics registers them in its own.
        self.connections = Gauge(
            "posada_db_pool_connections",
            "Connections this process's pool holds open, by state (in_use or idle).",
            ["state"], multiprocess_mode="liveall", registry=None,
        )  # fmt: skip
        self.max_size = Gauge(
            "posada_db_pool_max_connections",
            "The most connections this process's pool may open (POSADA_POOL_MAX_SIZE).",
            multiprocess_mode="liveall", registry=None,
        )  # fmt: skip
        self.waiting = Gauge(
            "posada_db_pool_waiting",
            "Requests waiting for a connection now.",
            multiprocess_mode="liveall", registry=None,
        )  # fmt: skip
        self.requests = Counter(
            "posada_db_pool_requests", "Connections asked of the pool.", registry=None
        )
        self.queued = Counter(
            "posada_db_pool_queued_requests",
            "Requests that had to wait for a connection.",
            registry=None,
        )
        self.wait = Counter(
            "posada_db_pool_wait_seconds",
            "Time requests spent waiting for a connection.",
            registry=None,
        )
        self.errors = Counter(
            "posada_db_pool_errors",
            "Requests for a connection that failed (waited past POSADA_POOL_TIMEOUT_S: a 503).",
            registry=None,
        )

    def collectors(self) -> list[Gauge | Counter]:
        """The metrics, for a registry."""
        return [self.connections, self.max_size, self.waiting, self.requests, self.queued,
                self.wait, self.errors]  # fmt: skip

    def watch(self, pool: AsyncConnectionPool[Any]) -> None:
        """Report `pool` from now on (until it is closed or gone)."""
        self._pools.add(pool)

    def refresh(self) -> None:
        """Set the gauges from the pools' state; add their counts since the last refresh."""
        totals = dict.fromkeys(("pool_size", "pool_available", "pool_max", "requests_waiting"), 0)
        for pool in list(self._pools):
            if pool.closed:
                continue
            stats = pool.pop_stats()  # the counts start again from zero
            for key in totals:
                totals[key] += stats.get(key, 0)
            self.requests.inc(stats.get("requests_num", 0))
            self.queued.inc(stats.get("requests_queued", 0))
            self.wait.inc(stats.get("requests_wait_ms", 0) / 1000)
            self.errors.inc(stats.get("requests_errors", 0))
        idle = totals["pool_available"]
        self.connections.labels("in_use").set(max(totals["pool_size"] - idle, 0))
        self.connections.labels("idle").set(idle)
        self.max_size.set(totals["pool_max"])
        self.waiting.set(totals["requests_waiting"])

    async def refresh_every(self, interval_s: float) -> None:
        """Refresh until cancelled (a worker among several: its values for the scrape)."""
        while True:
            self.refresh()
            await asyncio.sleep(interval_s)


class KnowledgeFigures:
    """The knowledge changes this process has heard of (`LISTEN posada_knowledge`): after
    an ingest on any replica, every replica's count goes up, and its caches forgot."""

    def __init__(self) -> None:
        self.changes = Counter(
            "posada_knowledge_changes",
            "Knowledge changes this process applied: a hotel's new version (notified) or "
            "every hotel's versions read again (reloaded, also at start).",
            ["kind"],
            registry=None,
        )

    def heard(self, tenant_id: int | None) -> None:
        """A `KnowledgeVersions` listener: count one change."""
        self.changes.labels("reloaded" if tenant_id is None else "notified").inc()


_KNOWLEDGE_FIGURES: list[KnowledgeFigures] = []


def knowledge_figures() -> KnowledgeFigures:
    """The process's one KnowledgeFigures (made on first use, as `pool_figures`)."""
    if not _KNOWLEDGE_FIGURES:
        _KNOWLEDGE_FIGURES.append(KnowledgeFigures())
    return _KNOWLEDGE_FIGURES[0]


_POOL_FIGURES: list[PoolFigures] = []


def pool_figures() -> PoolFigures:
    """The process's one PoolFigures (made on first use, after multiprocess mode is set)."""
    if not _POOL_FIGURES:
        _POOL_FIGURES.append(PoolFigures())
    return _POOL_FIGURES[0]
