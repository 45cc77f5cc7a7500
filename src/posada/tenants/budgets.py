"""A hotel's monthly AI budget: what it is, where the month stands, and what it allows.

The budget is the hotel's own (tenants.settings "budget", set by its owner on the staff
page) or else the default of settings (POSADA_BUDGET_*); with neither there is none.
Spend is LLM and embedding cost together, read from the persisted figures (the metric_llm
and metric_embeddings rows of migration 0014, of every grain). The month's projection is
its spend so far over the elapsed share of the month.

Once the month's spend reaches the budget the hotel's action applies: `continue` (keep
going), `small_only` (the large tier is never chosen) or `no_llm` (FAQ, caches and
extractive answers only). `BudgetGuard` keeps each hotel's figures in process memory, so
that a question costs no query for this.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, get_args

from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from posada.core.context import unmeasured
from posada.core.errors import InvalidInput, NotFound
from posada.core.groups import BudgetSettings
from posada.db.pool import AsyncConn, Pool
from posada.providers.registry import Tier

log = logging.getLogger(__name__)

Action = Literal["continue", "small_only", "no_llm"]
ACTIONS: tuple[str, ...] = get_args(Action)
Source = Literal["hotel", "default", "none"]
Clock = Callable[[], datetime]
M = TypeVar("M")


def utc_now() -> datetime:
    """The wall clock, in UTC (tests give the guard and the report a clock of their own)."""
    return datetime.now(UTC)


class Budget(BaseModel):
    """A monthly budget in USD and what happens once the month's spend reaches it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    monthly_usd: float = Field(gt=0, le=1e9, allow_inf_nan=False)
    action: Action = "continue"


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month in UTC."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """`YYYY-MM`, else InvalidInput (422) saying so."""
        found = _MONTH.match(text.strip())
        if found is None or not (1 <= int(found[2]) <= 12 and 1970 <= int(found[1]) <= 9998):
            raise InvalidInput(f"month {text!r} is not a month: give it as YYYY-MM (2026-03)")
        return cls(int(found[1]), int(found[2]))

    @classmethod
    def of(cls, moment: datetime) -> Month:
        """The month holding this moment (UTC)."""
        moment = moment.astimezone(UTC)
        return cls(moment.year, moment.month)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The start of the next month."""
        if self.month == 12:
            return datetime(self.year + 1, 1, 1, tzinfo=UTC)
        return datetime(self.year, self.month + 1, 1, tzinfo=UTC)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def elapsed(self, now: datetime) -> float:
        """The share of the month gone by at `now`: 0 before it, 1 after it."""
        share = (now - self.start) / (self.end - self.start)
        return min(1.0, max(0.0, share))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


# The first hours of a month would project any spend into a huge month ($0.05 by 00:10 on
# the 1st: $216) and fire the warning and alerts on noise: the pace is taken over at least
# one day's share of the month.
MIN_ELAPSED_DAYS = 1.0


def project(*, spent: float, elapsed: float, days: int = 30) -> float:
    """The month's spend at this pace: spent over the elapsed share, at least a day's of
    the month's `days` (a finished month: its total; one not begun: what it holds)."""
    if elapsed >= 1 or elapsed <= 0:
        return spent
    return spent / max(elapsed, MIN_ELAPSED_DAYS / days)


@dataclass(frozen=True)
class BudgetStatus:
    """Where a hotel's month stands against its budget."""

    budget: Budget | None
    source: Source
    warn_ratio: float
    month: str
    spent_usd: float
    projected_usd: float

    @property
    def ratio(self) -> float | None:
        """Projected spend over the budget (1 = the budget); None without a budget."""
        return None if self.budget is None else self.projected_usd / self.budget.monthly_usd

    @property
    def warning(self) -> bool:
        return self.ratio is not None and self.ratio >= self.warn_ratio

    @property
    def over(self) -> bool:
        return self.budget is not None and self.spent_usd >= self.budget.monthly_usd

    @property
    def applied(self) -> Action:
        """The action in force now: the budget's once over it, else keep going."""
        return self.budget.action if self.budget is not None and self.over else "continue"

    def as_dict(self) -> dict[str, Any]:
        """The shape of GET /api/staff/budget."""
        ratio = self.ratio
        return {
            "monthly_usd": None if self.budget is None else self.budget.monthly_usd,
            "action": "continue" if self.budget is None else self.budget.action,
            "source": self.source,
            "warn_ratio": self.warn_ratio,
            "month": self.month,
            "spent_usd": round(self.spent_usd, 6),
            "projected_usd": round(self.projected_usd, 6),
            "ratio": None if ratio is None else round(ratio, 4),
            "warning": self.warning,
            "over": self.over,
            "applied": self.applied,
        }


def check_budget(
    *, own: Budget | None, defaults: BudgetSettings, month: Month, spent: float, now: datetime
) -> BudgetStatus:
    """The month's status: the hotel's own budget, else the default, against its spend."""
    budget = own
    source: Source = "hotel" if own is not None else "none"
    if budget is None and defaults.monthly_usd is not None:
        budget, source = Budget(monthly_usd=defaults.monthly_usd, action=defaults.action), "default"
    return BudgetStatus(
        budget=budget,
        source=source,
        warn_ratio=defaults.warn_ratio,
        month=str(month),
        spent_usd=spent,
        projected_usd=project(spent=spent, elapsed=month.elapsed(now), days=month.days),
    )


# One statement: the hotel, its own budget and the month's spend, rows of every grain.
_READ = """
SELECT t.slug, t.settings -> 'budget',
       (SELECT coalesce(sum(cost_usd), 0) FROM metric_llm
         WHERE tenant_id = t.id AND bucket >= %(since)s AND bucket < %(until)s)
     + (SELECT coalesce(sum(cost_usd), 0) FROM metric_embeddings
         WHERE tenant_id = t.id AND bucket >= %(since)s AND bucket < %(until)s)
FROM tenants t WHERE t.id = %(tenant)s
"""


@dataclass(frozen=True)
class Reading:
    """What the database says of a hotel's month: its slug, own budget and spend."""

    slug: str
    own: Budget | None
    spent: float


async def read_budget(conn: AsyncConn, *, tenant_id: int, month: Month) -> Reading:
    """The hotel's own budget and the month's spend (one statement); NotFound if no hotel."""
    cur = await conn.execute(_READ, {"tenant": tenant_id, "since": month.start, "until": month.end})
    row = await cur.fetchone()
    if row is None:
        raise NotFound("unknown hotel")
    slug, stored, spent = row
    own = None
    if stored is not None:
        try:
            own = Budget.model_validate(stored)
        except ValidationError:
            log.warning("hotel %s has an unreadable budget %r; using the default", slug, stored)
    return Reading(slug, own, float(spent))


async def set_budget(conn: AsyncConn, *, tenant_id: int, budget: Budget | None) -> None:
    """Set the hotel's own budget, or remove it (None: the default applies again)."""
    if budget is None:
        sql = "UPDATE tenants SET settings = settings - 'budget' WHERE id = %(tenant)s"
    else:
        sql = """UPDATE tenants SET settings = jsonb_set(settings, '{budget}', %(budget)s)
                 WHERE id = %(tenant)s"""
    cur = await conn.execute(
        sql, {"tenant": tenant_id, "budget": None if budget is None else Jsonb(budget.model_dump())}
    )
    if cur.rowcount == 0:
        raise NotFound("unknown hotel")


@dataclass
class _Held:
    reading: Reading
    month: Month
    at: datetime


@dataclass(eq=False)
class BudgetGuard:
    """Each hotel's budget figures in this process's memory, read again at most every
    POSADA_BUDGET_REFRESH_S.

    What that lag costs: a process sees a hotel's spend up to refresh_s late (and one
    question more: the one that finds the reading stale goes by it while it is read
    again), on top of the persisted figures' own delay (each process writes its minutes
    every POSADA_METRICS_FLUSH_S), and another process's change of the budget up to refresh_s
    late. So an action starts up to about a minute after the budget is reached, and the
    hotel may overspend by what all replicas spend in that minute: small beside a month's
    budget, and the price of no query per question.
    """

    clock: Clock = utc_now
    # The app's gauge (Metrics.budget_ratio), told each hotel's ratio as it is checked.
    sink: Callable[[str, float], None] | None = None
    _held: dict[int, _Held] = field(default_factory=dict)
    _locks: dict[int, asyncio.Lock] = field(default_factory=dict)
    _told: set[tuple[int, str, str]] = field(default_factory=set)
    # Background reads in flight, one per hotel (referenced, so they are not collected).
    _refreshing: dict[int, asyncio.Task[None]] = field(default_factory=dict)

    async def status(
        self, pool: Pool, *, tenant_id: int, settings: BudgetSettings, fresh: bool = False
    ) -> BudgetStatus:
        """The hotel's status now, from memory: a reading older than refresh_s is read
        again in the background (the question goes on with the one held); only a hotel
        not yet read this month, or `fresh`, waits for the read."""
        now = self.clock()
        month = Month.of(now)
        held = self._held.get(tenant_id)
        if fresh or held is None or held.month != month:
            held = await self._read(pool, tenant_id, month, now, force=fresh)
        elif not _current(held, month, now, settings.refresh_s):
            self._refresh_later(pool, tenant_id, month, now)
        status = check_budget(
            own=held.reading.own, defaults=settings, month=month, spent=held.reading.spent, now=now
        )
        self._report(tenant_id, held.reading.slug, status)
        return status

    async def _read(
        self, pool: Pool, tenant_id: int, month: Month, asked: datetime, *, force: bool = False
    ) -> _Held:
        async with self._locks.setdefault(tenant_id, asyncio.Lock()):
            held = self._held.get(tenant_id)
            if not force and held is not None and held.month == month and held.at >= asked:
                return held  # read by another question while this one waited
            # Upkeep, left out of the question's figures: the first question of a hotel's
            # month in this process waits for this one read; later readings are taken
            # in the background.
            with unmeasured():
                async with pool.connection() as conn:
                    reading = await read_budget(conn, tenant_id=tenant_id, month=month)
            held = self._held[tenant_id] = _Held(reading, month, self.clock())
            return held

    def _refresh_later(self, pool: Pool, tenant_id: int, month: Month, now: datetime) -> None:
        if tenant_id in self._refreshing:
            return

        async def refresh() -> None:
            try:
                await self._read(pool, tenant_id, month, now)
            except Exception as exc:  # keep the reading held; try again at the next question
                log.warning("could not read the budget of hotel %s: %s", tenant_id, exc)
            finally:
                self._refreshing.pop(tenant_id, None)

        with unmeasured():
            self._refreshing[tenant_id] = asyncio.create_task(refresh())

    async def settled(self) -> None:
        """Wait for the background reads in flight."""
        while self._refreshing:
            await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    def forget(self, tenant_id: int | None = None) -> None:
        """Read the hotel (or every hotel) again at its next check, and warn again."""
        if tenant_id is None:
            self._held.clear()
            self._told.clear()
            return
        self._held.pop(tenant_id, None)
        self._told = {told for told in self._told if told[0] != tenant_id}

    def _report(self, tenant_id: int, slug: str, status: BudgetStatus) -> None:
        ratio, budget = status.ratio, status.budget
        if ratio is None or budget is None:
            if self.sink is not None:
                self.sink(slug, 0.0)  # no budget (any more): nothing to alert on
            return
        if self.sink is not None and math.isfinite(ratio):
            self.sink(slug, ratio)
        # Once per hotel, month and kind in this process: not on every question.
        if status.warning and self._tell(tenant_id, status.month, "warning"):
            log.warning(
                "hotel %s is projected to spend $%.2f this month, %.0f%% of its $%.2f budget",
                slug, status.projected_usd, ratio * 100, budget.monthly_usd,
            )  # fmt: skip
        if status.over and self._tell(tenant_id, status.month, "over"):
            log.warning(
                "hotel %s has spent $%.2f, its budget for %s; from now on: %s",
                slug, status.spent_usd, status.month, status.applied,
            )  # fmt: skip

    def _tell(self, tenant_id: int, month: str, kind: str) -> bool:
        key = (tenant_id, month, kind)
        if key in self._told:
            return False
        self._told.add(key)
        return True


def _current(held: _Held | None, month: Month, now: datetime, refresh_s: float) -> bool:
    if held is None or held.month != month:
        return False
    age = (now - held.at).total_seconds()
    return 0 <= age < refresh_s


_GUARDS: weakref.WeakKeyDictionary[Pool, BudgetGuard] = weakref.WeakKeyDictionary()


def guard_for(pool: Pool) -> BudgetGuard:
    """The process's guard over this database (one per pool, so per runtime)."""
    guard = _GUARDS.get(pool)
    if guard is None:
        guard = _GUARDS[pool] = BudgetGuard()
    return guard


async def models_within_budget(
    *, pool: Pool, tenant_id: int, settings: BudgetSettings, models: dict[Tier, M]
) -> dict[Tier, M]:
    """The chat models a hotel may use now: all, the small tier alone, or none."""
    if not models:
        return models
    try:
        status = await guard_for(pool).status(pool, tenant_id=tenant_id, settings=settings)
    except Exception as exc:
        # A budget unread must not cost the guest their answer: keep going, say so.
        log.warning("could not check the budget of hotel %s (%s); going on without", tenant_id, exc)
        return models
    if status.applied == "no_llm":
        return {}
    if status.applied == "small_only":
        return {tier: model for tier, model in models.items() if tier == "small"}
    return models
