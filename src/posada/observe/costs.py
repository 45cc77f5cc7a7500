"""What a hotel's month cost, day by day: from the persisted figures (migration 0014).

A day is a UTC day; every row whose bucket falls in it counts for it, whatever its grain
(minute, hour or day): the roll-up moves minutes into hours and hours into days in one
transaction, so nothing is counted twice. Spend is LLM and embedding cost together. The
cache-and-FAQ share is what the exact cache, the semantic cache and the FAQ answered,
over every answer. The projection is `tenants.budgets.project`, the same the budget
check uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from posada.core.errors import NotFound
from posada.db.pool import AsyncConn
from posada.observe.figures import reuse_share
from posada.tenants.budgets import Month, project

# The layers that answered without retrieval or a model: the savings posada is built for.

# One statement for the three tables, in one shape: (kind, tenant, day, key, four sums).
_ROWS = """
SELECT 'llm', tenant_id, (bucket AT TIME ZONE 'UTC')::date, model,
       sum(calls)::bigint, sum(input_tokens)::bigint, sum(output_tokens)::bigint,
       sum(cost_usd)
FROM metric_llm
WHERE tenant_id = ANY(%(tenants)s) AND bucket >= %(since)s AND bucket < %(until)s
GROUP BY 2, 3, 4
UNION ALL
SELECT 'embedding', tenant_id, (bucket AT TIME ZONE 'UTC')::date, provider,
       sum(computed)::bigint, sum(cached)::bigint, sum(api_calls)::bigint, sum(cost_usd)
FROM metric_embeddings
WHERE tenant_id = ANY(%(tenants)s) AND bucket >= %(since)s AND bucket < %(until)s
GROUP BY 2, 3, 4
UNION ALL
SELECT 'answers', tenant_id, (bucket AT TIME ZONE 'UTC')::date, layer,
       sum(answers)::bigint, 0, 0, 0::double precision
FROM metric_answers
WHERE tenant_id = ANY(%(tenants)s) AND bucket >= %(since)s AND bucket < %(until)s
GROUP BY 2, 3, 4
"""


@dataclass
class ModelUse:
    """One model's calls, tokens and cost."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class EmbeddingUse:
    """One embedding provider's texts (computed, served from cache), API calls and cost."""

    computed: int = 0
    cached: int = 0
    api_calls: int = 0
    cost_usd: float = 0.0


Use = TypeVar("Use", ModelUse, EmbeddingUse)


def _add_uses(into: dict[str, Use], more: dict[str, Use], new: Callable[[], Use]) -> None:
    """Add each use of `more` into the same name's in `into`, field by field."""
    for name, use in more.items():
        mine = into.setdefault(name, new())
        for f in fields(use):
            setattr(mine, f.name, getattr(mine, f.name) + getattr(use, f.name))


@dataclass
class Costs:
    """A day's (or a month's) figures."""

    models: dict[str, ModelUse] = field(default_factory=dict)
    embeddings: dict[str, EmbeddingUse] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)

    @property
    def llm_usd(self) -> float:
        return sum(use.cost_usd for use in self.models.values())

    @property
    def embedding_usd(self) -> float:
        return sum(use.cost_usd for use in self.embeddings.values())

    @property
    def spend_usd(self) -> float:
        return self.llm_usd + self.embedding_usd

    @property
    def answers_total(self) -> int:
        return sum(self.answers.values())

    @property
    def cache_faq_share(self) -> float | None:
        """Answers from the exact and semantic caches and the FAQ over all; None if none."""
        return reuse_share(self.answers)

    def add(self, other: Costs) -> None:
        """Add another day's figures into these."""
        _add_uses(self.models, other.models, ModelUse)
        _add_uses(self.embeddings, other.embeddings, EmbeddingUse)
        for layer, count in other.answers.items():
            self.answers[layer] = self.answers.get(layer, 0) + count

    def as_dict(self) -> dict[str, Any]:
        """The shape of a day in GET /api/staff/costs and `posada costs report --json`."""
        share = self.cache_faq_share
        models = self.models.values()
        return {
            "llm_usd": round(self.llm_usd, 6),
            "embedding_usd": round(self.embedding_usd, 6),
            "spend_usd": round(self.spend_usd, 6),
            "llm_calls": sum(use.calls for use in models),
            "input_tokens": sum(use.input_tokens for use in models),
            "output_tokens": sum(use.output_tokens for use in models),
            "models": [
                {"model": name, **_rounded(vars(self.models[name]))} for name in sorted(self.models)
            ],
            "embeddings": [
                {"provider": name, **_rounded(vars(self.embeddings[name]))}
                for name in sorted(self.embeddings)
            ],
            "answers": dict(sorted(self.answers.items())),
            "answers_total": self.answers_total,
            "cache_faq_share": None if share is None else round(share, 4),
        }


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in values.items()}


@dataclass
class MonthCosts:
    """A hotel's month (or every hotel's, `tenant` None): its days, totals, projection."""

    tenant: str | None
    name: str | None
    month: Month
    now: datetime
    days: dict[date, Costs]
    totals: Costs = field(default_factory=Costs)

    def __post_init__(self) -> None:
        for day in self.days.values():
            self.totals.add(day)

    @property
    def elapsed(self) -> float:
        return self.month.elapsed(self.now)

    @property
    def projected_usd(self) -> float:
        return project(spent=self.totals.spend_usd, elapsed=self.elapsed, days=self.month.days)

    def as_dict(self) -> dict[str, Any]:
        """The shape of GET /api/staff/costs (without its budget)."""
        return {
            "tenant": self.tenant,
            "name": self.name,
            "month": str(self.month),
            "days": [
                {"day": day.isoformat(), **costs.as_dict()} for day, costs in self.days.items()
            ],
            "totals": self.totals.as_dict(),
            "projection": {
                "spent_usd": round(self.totals.spend_usd, 6),
                "elapsed_fraction": round(self.elapsed, 6),
                "projected_usd": round(self.projected_usd, 6),
                "days_in_month": self.month.days,
                "finished": self.elapsed >= 1,
            },
        }


def month_days(month: Month, now: datetime) -> list[date]:
    """The month's days up to today: all of a finished month, none of one to come."""
    if now < month.start:
        return []
    last = min(now.astimezone(UTC), month.end - timedelta(microseconds=1)).date()
    first = month.start.date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


async def read_costs(
    conn: AsyncConn, *, tenant_ids: list[int], month: Month, now: datetime
) -> dict[int, dict[date, Costs]]:
    """Each hotel's figures of the month by day (days without figures are zeros)."""
    days = month_days(month, now)
    found: dict[int, dict[date, Costs]] = {t: {d: Costs() for d in days} for t in tenant_ids}
    cur = await conn.execute(
        _ROWS, {"tenants": tenant_ids, "since": month.start, "until": month.end}
    )
    for kind, tenant_id, day, key, a, b, c, cost in await cur.fetchall():
        costs = found[tenant_id].setdefault(day, Costs())  # a day to come (rows ahead)
        if kind == "llm":
            costs.models[key] = ModelUse(a, b, c, float(cost))
        elif kind == "embedding":
            costs.embeddings[key] = EmbeddingUse(a, b, c, float(cost))
        else:
            costs.answers[key] = a
    return {t: dict(sorted(by_day.items())) for t, by_day in found.items()}


async def hotel_costs(
    conn: AsyncConn, *, tenant_id: int, month: Month, now: datetime
) -> MonthCosts:
    """One hotel's month (the staff page's cost panel)."""
    cur = await conn.execute("SELECT slug, name FROM tenants WHERE id = %s", (tenant_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound("unknown hotel")
    days = await read_costs(conn, tenant_ids=[tenant_id], month=month, now=now)
    return MonthCosts(row[0], row[1], month, now, days[tenant_id])


async def costs_report(
    conn: AsyncConn, *, month: Month, now: datetime, slug: str | None = None
) -> tuple[list[MonthCosts], MonthCosts]:
    """Every hotel's month (or the one of `slug`), and all of them together."""
    if slug is None:
        cur = await conn.execute("SELECT id, slug, name FROM tenants ORDER BY slug")
    else:
        cur = await conn.execute("SELECT id, slug, name FROM tenants WHERE slug = %s", (slug,))
    hotels = await cur.fetchall()
    if slug is not None and not hotels:
        raise NotFound(f"unknown hotel {slug!r}")
    by_tenant = await read_costs(conn, tenant_ids=[h[0] for h in hotels], month=month, now=now)
    months = [MonthCosts(s, n, month, now, by_tenant[t]) for t, s, n in hotels]
    together: dict[date, Costs] = {}
    for one in months:
        for day, costs in one.days.items():
            together.setdefault(day, Costs()).add(costs)
    return months, MonthCosts(None, None, month, now, dict(sorted(together.items())))
