"""The running request's figures, reachable from anywhere in its task tree.

A ContextVar holds one mutable `RequestStats`; tasks and threads started by the request
copy the context, so they add to the same object. Outside a request (CLI work) there is
none and recording is a no-op, unless `measure()` opened a scope.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class LLMUse:
    """One model's answer within a request."""

    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass
class RequestStats:
    """What one request (or one measured unit of work) did and cost."""

    started: float = field(default_factory=time.perf_counter)
    tenant_id: int | None = None
    tenant: str | None = None
    stages: dict[str, float] = field(default_factory=dict)  # ms, in the order they ran
    db_queries: int = 0
    statements: Counter[str] = field(default_factory=Counter)  # statement shape -> runs
    embed_computed: int = 0  # texts embedded (locally or by an API)
    embed_api_calls: int = 0
    embed_cached: int = 0  # texts whose vector came from a cache
    embed_provider: str | None = None
    embed_cost_usd: float = 0.0  # what the embedding API calls cost
    llm_calls: int = 0
    llm: list[LLMUse] = field(default_factory=list)
    first_tokens: list[tuple[str, float]] = field(default_factory=list)  # (model, seconds)
    cache: list[tuple[str, str]] = field(default_factory=list)  # (layer, hit|miss)
    answers: list[str] = field(default_factory=list)  # the layer of each answer given
    redis_errors: int = 0

    @property
    def input_tokens(self) -> int:
        """LLM input tokens over the request."""
        return sum(u.input_tokens for u in self.llm)

    @property
    def output_tokens(self) -> int:
        """LLM output tokens over the request."""
        return sum(u.output_tokens for u in self.llm)

    @property
    def cost_usd(self) -> float:
        """LLM cost over the request."""
        return sum(u.cost_usd for u in self.llm)

    def elapsed_ms(self) -> float:
        """Milliseconds since the request started."""
        return (time.perf_counter() - self.started) * 1000

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the enclosed block as (part of) stage `name`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            ms = (time.perf_counter() - start) * 1000
            self.stages[name] = round(self.stages.get(name, 0.0) + ms, 3)

    def timings(self) -> dict[str, float]:
        """The stages so far and the total: what an answer is stored and reported with."""
        return {**self.stages, "total": round(self.elapsed_ms(), 3)}

    def counters(self) -> dict[str, float | int]:
        """The counters, as returned to clients and kept in the window."""
        return {
            "db_queries": self.db_queries,
            "embed_computed": self.embed_computed,
            "embed_api_calls": self.embed_api_calls,
            "embed_cached": self.embed_cached,
            "llm_calls": self.llm_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 8),
            "embed_cost_usd": round(self.embed_cost_usd, 10),
        }


_current: ContextVar[RequestStats | None] = ContextVar("posada_request_stats", default=None)


def current() -> RequestStats | None:
    """The running request's figures, if any."""
    return _current.get()


def current_or_new() -> RequestStats:
    """The running request's figures, or figures of its own for work outside a request (the
    CLI's `ask`): the one timer an answer's stages are recorded with."""
    return _current.get() or RequestStats()


@contextmanager
def measure(*, tenant_id: int | None = None) -> Iterator[RequestStats]:
    """Collect figures for the enclosed work (the middleware does this per request)."""
    stats = RequestStats(tenant_id=tenant_id)
    token = _current.set(stats)
    try:
        yield stats
    finally:
        _current.reset(token)


@contextmanager
def unmeasured() -> Iterator[None]:
    """Leave the enclosed work out of the request's figures (the pool's own upkeep)."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def acting_for(tenant_id: int | None) -> Iterator[None]:
    """Attribute the enclosed work (an ingest, say) to this tenant."""
    stats = _current.get()
    if stats is None:
        with measure(tenant_id=tenant_id):
            yield
        return
    before = stats.tenant_id
    stats.tenant_id = tenant_id
    try:
        yield
    finally:
        stats.tenant_id = before


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the enclosed block as stage `name` of the running request, if there is one."""
    stats = _current.get()
    if stats is None:
        yield
        return
    with stats.stage(name):
        yield


def count_statement(shape: str) -> None:
    """One database round trip running this statement shape."""
    stats = _current.get()
    if stats is not None:
        stats.db_queries += 1
        stats.statements[shape] += 1


def count_llm_call() -> None:
    """One request sent to an LLM (answered or not)."""
    stats = _current.get()
    if stats is not None:
        stats.llm_calls += 1


def record_llm(*, model: str, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
    """An LLM's answer and what it cost."""
    stats = _current.get()
    if stats is not None:
        stats.llm.append(LLMUse(model, input_tokens, output_tokens, cost_usd))


def record_first_token(*, model: str, seconds: float) -> None:
    """A model's first token came, this long after posada sent it the prompt (TTFT)."""
    stats = _current.get()
    if stats is not None:
        stats.first_tokens.append((model, seconds))


def record_redis_error() -> None:
    """Redis failed or timed out during this request (it went on without it)."""
    stats = _current.get()
    if stats is not None:
        stats.redis_errors += 1


def record_cache(layer: str, *, hit: bool) -> None:
    """A lookup in an answer layer (faq, exact, semantic...): hit or miss."""
    stats = _current.get()
    if stats is not None:
        stats.cache.append((layer, "hit" if hit else "miss"))


def record_answer(layer: str) -> None:
    """An answer was given, by this layer (faq, exact, semantic, extractive, llm...)."""
    stats = _current.get()
    if stats is not None:
        stats.answers.append(layer)
