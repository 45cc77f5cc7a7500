"""Reads of the persisted figures (posada.observe.rollup): a window of one hotel, or of all.

A window [since, until) sums the rows of every grain whose bucket starts in it: minutes,
hours and days never overlap (the roll-up moves rows, it does not copy them), so nothing is
counted twice; at a window's edge, an hour or day row counts whole or not at all.
`tenant_id=None` reads every hotel and the requests of none (the operators' view); a
hotel's staff always pass their hotel's id. `replicas=None` reads every replica.
Percentiles come from the merged latency histograms (posada.observe.histogram): each is the
upper bound of the bucket holding the exact nearest-rank value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from posada.db.pool import AsyncConn
from posada.observe import histogram

# Every read's filter: the hotel (or all), the replicas (or all), the window.
_WHERE = """
WHERE (%(tenant)s::bigint IS NULL OR tenant_id = %(tenant)s)
  AND (%(replicas)s::text[] IS NULL OR replica = ANY(%(replicas)s::text[]))
  AND bucket >= %(since)s AND bucket < %(until)s"""


@dataclass(frozen=True)
class RouteFigures:
    """One route (`METHOD /template`) over a window."""

    route: str
    requests: int
    errors: int  # status >= 500
    slow: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    latency: tuple[int, ...]  # the merged histogram, for merging further

    def as_dict(self) -> dict[str, Any]:
        """JSON form, without the histogram."""
        out = asdict(self)
        del out["latency"]
        return out


@dataclass(frozen=True)
class LayerFigures:
    """Lookups in one answer layer (exact, semantic, faq...) over a window."""

    layer: str
    hits: int
    misses: int
    hit_rate: float  # hits / lookups; 0 with no lookups


@dataclass(frozen=True)
class AnswerFigures:
    """Answers given over a window, by the layer that gave them."""

    total: int
    by_layer: dict[str, int]

    @property
    def cache_faq_share(self) -> float | None:
        """The share answered with no LLM call (REUSE_LAYERS); None without answers."""
        return reuse_share(self.by_layer)


# Answers that cost no LLM call and no retrieval: the two answer caches and the FAQ.
REUSE_LAYERS = ("exact", "semantic", "faq")


def reuse_share(by_layer: Mapping[str, int]) -> float | None:
    """Answers of REUSE_LAYERS over all answers; None when there were none."""
    total = sum(by_layer.values())
    return sum(by_layer.get(layer, 0) for layer in REUSE_LAYERS) / total if total else None


@dataclass(frozen=True)
class ModelFigures:
    """One LLM's use over a window."""

    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class ProviderFigures:
    """One embedding provider's use over a window."""

    provider: str
    computed: int
    cached: int
    api_calls: int
    cost_usd: float


def _params(
    tenant_id: int | None, since: datetime, until: datetime, replicas: Sequence[str] | None
) -> dict[str, Any]:
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("a window's since and until must be aware datetimes (UTC)")
    listed = None if replicas is None else list(replicas)
    return {"tenant": tenant_id, "since": since, "until": until, "replicas": listed}


ROUTES_SQL = f"""
WITH picked AS (
    SELECT route, requests, errors, slow, latency_ms_sum, latency FROM metric_requests
    {_WHERE}
), latency AS (
    SELECT route, array_agg(n ORDER BY i) AS latency
    FROM (SELECT p.route, u.i, sum(u.n)::bigint AS n
          FROM picked p, unnest(p.latency) WITH ORDINALITY AS u(n, i)
          GROUP BY p.route, u.i) AS per_bucket
    GROUP BY route
)
SELECT s.route, s.requests, s.errors, s.slow, s.latency_ms_sum, coalesce(h.latency, '{{}}')
FROM (SELECT route, sum(requests)::bigint AS requests, sum(errors)::bigint AS errors,
             sum(slow)::bigint AS slow, sum(latency_ms_sum) AS latency_ms_sum
      FROM picked GROUP BY route) AS s
LEFT JOIN latency h ON h.route = s.route
ORDER BY s.route"""  # noqa: S608 (constants only)


async def route_figures(
    conn: AsyncConn,
    *,
    tenant_id: int | None,
    since: datetime,
    until: datetime,
    replicas: Sequence[str] | None = None,
) -> list[RouteFigures]:
    """Per route: requests, errors, slow requests and latency percentiles over the window."""
    cur = await conn.execute(ROUTES_SQL, _params(tenant_id, since, until, replicas))
    out = []
    for route, requests, errors, slow, total_ms, counts in await cur.fetchall():
        merged = histogram.merge([counts])
        out.append(
            RouteFigures(
                route=route,
                requests=requests,
                errors=errors,
                slow=slow,
                p50_ms=histogram.percentile(merged, 50),
                p95_ms=histogram.percentile(merged, 95),
                p99_ms=histogram.percentile(merged, 99),
                mean_ms=round(total_ms / requests, 3) if requests else 0.0,
                latency=tuple(merged),
            )
        )
    return out


LAYERS_SQL = f"""
SELECT layer, sum(hits)::bigint, sum(misses)::bigint FROM metric_layers
{_WHERE}
GROUP BY layer ORDER BY layer"""  # noqa: S608 (constants only)


async def layer_figures(
    conn: AsyncConn,
    *,
    tenant_id: int | None,
    since: datetime,
    until: datetime,
    replicas: Sequence[str] | None = None,
) -> list[LayerFigures]:
    """Per answer layer: hits, misses and the hit rate over the window."""
    cur = await conn.execute(LAYERS_SQL, _params(tenant_id, since, until, replicas))
    return [
        LayerFigures(
            layer, hits, misses, round(hits / (hits + misses), 4) if hits + misses else 0.0
        )
        for layer, hits, misses in await cur.fetchall()
    ]


ANSWERS_SQL = f"""
SELECT layer, sum(answers)::bigint FROM metric_answers
{_WHERE}
GROUP BY layer ORDER BY layer"""  # noqa: S608 (constants only)


async def answer_figures(
    conn: AsyncConn,
    *,
    tenant_id: int | None,
    since: datetime,
    until: datetime,
    replicas: Sequence[str] | None = None,
) -> AnswerFigures:
    """Answers over the window, by layer, and their total."""
    cur = await conn.execute(ANSWERS_SQL, _params(tenant_id, since, until, replicas))
    by_layer: dict[str, int] = dict(await cur.fetchall())
    return AnswerFigures(total=sum(by_layer.values()), by_layer=by_layer)


MODELS_SQL = f"""
SELECT model, sum(calls)::bigint, sum(input_tokens)::bigint, sum(output_tokens)::bigint,
       sum(cost_usd)
FROM metric_llm
{_WHERE}
GROUP BY model ORDER BY model"""  # noqa: S608 (constants only)


async def model_figures(
    conn: AsyncConn,
    *,
    tenant_id: int | None,
    since: datetime,
    until: datetime,
    replicas: Sequence[str] | None = None,
) -> list[ModelFigures]:
    """Per LLM: calls that answered, tokens and cost over the window."""
    cur = await conn.execute(MODELS_SQL, _params(tenant_id, since, until, replicas))
    return [ModelFigures(*row) for row in await cur.fetchall()]


PROVIDERS_SQL = f"""
SELECT provider, sum(computed)::bigint, sum(cached)::bigint, sum(api_calls)::bigint,
       sum(cost_usd)
FROM metric_embeddings
{_WHERE}
GROUP BY provider ORDER BY provider"""  # noqa: S608 (constants only)


async def embedding_figures(
    conn: AsyncConn,
    *,
    tenant_id: int | None,
    since: datetime,
    until: datetime,
    replicas: Sequence[str] | None = None,
) -> list[ProviderFigures]:
    """Per embedding provider: texts embedded, served from a cache, API calls and cost."""
    cur = await conn.execute(PROVIDERS_SQL, _params(tenant_id, since, until, replicas))
    return [ProviderFigures(*row) for row in await cur.fetchall()]
