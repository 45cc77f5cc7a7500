"""The embedding audit: what embedding cost over the last days, from the usage ledger."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from posada.db.pool import AsyncConn


@dataclass(frozen=True)
class ProviderUse:
    """One provider and model's share."""

    provider: str
    model: str
    calls: int
    texts: int
    tokens: int
    cost_usd: float


@dataclass(frozen=True)
class EmbeddingAudit:
    """Calls, tokens, cost, repeats and cache hits over `days`."""

    days: int
    tenant: str | None
    calls: int  # batches computed (one API call each for an API provider)
    api_calls: int
    texts: int  # texts computed
    cached: int  # texts served from a cache
    tokens: int
    cost_usd: float
    projected_monthly_usd: float
    covered_days: float  # how much of the window has rows; the projection scales from it
    repeated_texts: int  # distinct texts computed more than once
    wasted_embeddings: int  # computations a cache would have saved
    hit_rate: float
    providers: list[ProviderUse] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


async def audit_embeddings(
    conn: AsyncConn, *, days: int, tenant_id: int | None = None, tenant: str | None = None
) -> EmbeddingAudit:
    """Read the ledger of the last `days` (of one tenant when given) in one statement."""
    cur = await conn.execute(
        """WITH rows AS (
               SELECT * FROM embedding_usage
               WHERE created_at >= now() - make_interval(days => %(days)s)
                 AND (%(tenant)s::bigint IS NULL OR tenant_id = %(tenant)s)),
           repeats AS (
               SELECT count(*) AS n FROM rows WHERE NOT cached
               GROUP BY text_hash HAVING count(*) > 1)
           SELECT count(DISTINCT call_id) FILTER (WHERE NOT cached),
                  count(DISTINCT call_id) FILTER (WHERE api AND NOT cached),
                  count(*) FILTER (WHERE NOT cached),
                  count(*) FILTER (WHERE cached),
                  coalesce(sum(tokens) FILTER (WHERE NOT cached), 0),
                  coalesce(sum(cost_usd), 0)::float8,
                  extract(epoch FROM now() - min(created_at))::float8 / 86400,
                  (SELECT count(*) FROM repeats),
                  (SELECT coalesce(sum(n - 1), 0) FROM repeats),
                  (SELECT coalesce(json_agg(json_build_array(provider, model, calls, texts,
                                                             tokens, cost) ORDER BY cost DESC,
                                                             texts DESC), '[]')
                   FROM (SELECT provider, model,
                                count(DISTINCT call_id) FILTER (WHERE NOT cached) AS calls,
                                count(*) FILTER (WHERE NOT cached) AS texts,
                                coalesce(sum(tokens) FILTER (WHERE NOT cached), 0) AS tokens,
                                coalesce(sum(cost_usd), 0)::float8 AS cost
                         FROM rows GROUP BY provider, model) p)
           FROM rows""",
        {"days": days, "tenant": tenant_id},
    )
    row = await cur.fetchone()
    assert row is not None
    calls, api_calls, texts, cached, tokens, cost, age_days, repeated, wasted, providers = row
    # Scale from the part of the window that has data: a ledger started yesterday says
    # little about 30 days, but its daily rate is the best guess there is.
    covered = min(float(days), max(float(age_days or 0), 1 / 24))
    looked_up = texts + cached
    return EmbeddingAudit(
        days=days,
        tenant=tenant,
        calls=int(calls),
        api_calls=int(api_calls),
        texts=int(texts),
        cached=int(cached),
        tokens=int(tokens),
        cost_usd=round(float(cost), 8),
        projected_monthly_usd=round(float(cost) / covered * 30, 8) if texts or cached else 0.0,
        covered_days=round(covered, 4) if texts or cached else 0.0,
        repeated_texts=int(repeated),
        wasted_embeddings=int(wasted),
        hit_rate=round(cached / looked_up, 4) if looked_up else 0.0,
        providers=[ProviderUse(p, m, c, t, k, round(x, 8)) for p, m, c, t, k, x in providers],
    )
