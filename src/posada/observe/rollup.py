"""The persisted figures' writer: per-minute sums of this process's requests, in PostgreSQL.

Each finished request is added in memory (a few dict operations, no I/O) to the sums of its
UTC minute, per hotel and route, answer layer, model and embedding provider. A background
task writes them every `flush_s` with one upsert per table (migration 0014), so every worker
of a replica adds into the same rows. A failed write keeps the sums for the next try, up to
`max_rows` rows; past that the oldest minutes are dropped, and the log says how much.

The roll-up (`roll_up`) moves old minutes into hours and old hours into days, each move one
statement (the delete feeds the insert), so a reader summing every grain never counts a
request twice; it runs on one replica at a time, under an advisory lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from posada.core import context
from posada.core.config import Settings
from posada.core.context import RequestStats
from posada.db.pool import AsyncConn, Pool
from posada.observe import histogram
from posada.observe.window import RequestRecord

log = logging.getLogger(__name__)

# One replica rolls up at a time: the others find this lock taken and skip their turn.
ROLLUP_LOCK = 0x706F7361_64610010  # "posada", issue 16


@dataclass(frozen=True)
class Table:
    """One table of migration 0014: its key column and its summed columns (name, SQL type)."""

    name: str
    key: str
    sums: tuple[tuple[str, str], ...]
    histogram: bool = False  # a `latency` column, summed element by element


def _table(
    name: str, key: str, counts: tuple[str, ...], amounts: tuple[str, ...] = (), **kw: bool
) -> Table:
    """A table whose sums are counts (bigint) and amounts (double precision)."""
    sums = tuple((c, "bigint") for c in counts) + tuple((a, "double precision") for a in amounts)
    return Table(name, key, sums, **kw)


REQUESTS = _table("metric_requests", "route", ("requests", "errors", "slow"),
                  ("latency_ms_sum",), histogram=True)  # fmt: skip
LAYERS = _table("metric_layers", "layer", ("hits", "misses"))
ANSWERS = _table("metric_answers", "layer", ("answers",))
LLM = _table("metric_llm", "model", ("calls", "input_tokens", "output_tokens"), ("cost_usd",))
EMBEDDINGS = _table("metric_embeddings", "provider", ("computed", "cached", "api_calls"),
                    ("cost_usd",))  # fmt: skip
TABLES = (REQUESTS, LAYERS, ANSWERS, LLM, EMBEDDINGS)

# (minute since the epoch, tenant id or None, the table's key): a row of one table.
Key = tuple[int, int | None, str]


class Sums:
    """Rows not yet written: per table, a key's sums (and per route, its histogram)."""

    def __init__(self) -> None:
        self.rows: dict[Table, dict[Key, list[float]]] = {t: {} for t in TABLES}
        self.latency: dict[Key, list[int]] = {}

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.rows.values())

    def row(self, table: Table, key: Key) -> list[float]:
        """The sums of `key` in `table`, zero if new."""
        rows = self.rows[table]
        found = rows.get(key)
        if found is None:
            found = rows[key] = [0.0] * len(table.sums)
            if table.histogram:
                self.latency[key] = histogram.empty()
        return found

    def merge(self, other: Sums) -> None:
        """Add `other`'s rows into these."""
        for table, rows in other.rows.items():
            for key, sums in rows.items():
                mine = self.row(table, key)
                for i, value in enumerate(sums):
                    mine[i] += value
        for key, counts in other.latency.items():
            self.latency[key] = histogram.merge([self.latency[key], counts])

    def drop_before(self, minute: int) -> tuple[int, int]:
        """Forget the minutes before `minute`: the rows and requests forgotten."""
        rows = requests = 0
        for table, table_rows in self.rows.items():
            for key in [k for k in table_rows if k[0] < minute]:
                sums = table_rows.pop(key)
                rows += 1
                if table.histogram:
                    requests += int(sums[0])
                    del self.latency[key]
        return rows, requests


class Rollups:
    """One process's figures on their way to the database; `add` is all a request costs."""

    def __init__(
        self,
        *,
        replica: str,
        flush_s: float = 10.0,
        max_rows: int = 50_000,
        rollup_s: float = 300.0,
        retention: Retention | None = None,
    ) -> None:
        self.replica = replica
        self.flush_s = flush_s
        self.max_rows = max_rows
        self.rollup_s = rollup_s
        self.retention = retention or Retention()
        self.dropped_requests = 0
        self._sums = Sums()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def add(self, record: RequestRecord, stats: RequestStats) -> None:
        """Count a finished request into its minute."""
        sums = self._sums
        before = len(sums.latency)
        minute, tenant = int(record.at // 60), stats.tenant_id
        key = (minute, tenant, record.key)
        row = sums.row(REQUESTS, key)
        row[0] += 1
        row[1] += record.status >= 500
        row[2] += record.slow
        row[3] += record.duration_ms
        histogram.add(sums.latency[key], record.duration_ms)
        for layer, outcome in stats.cache:
            sums.row(LAYERS, (minute, tenant, layer))[0 if outcome == "hit" else 1] += 1
        for layer in stats.answers:
            sums.row(ANSWERS, (minute, tenant, layer))[0] += 1
        for use in stats.llm:
            row = sums.row(LLM, (minute, tenant, use.model))
            row[0] += 1
            row[1] += use.input_tokens
            row[2] += use.output_tokens
            row[3] += use.cost_usd
        if stats.embed_computed or stats.embed_cached or stats.embed_api_calls:
            row = sums.row(EMBEDDINGS, (minute, tenant, stats.embed_provider or "none"))
            row[0] += stats.embed_computed
            row[1] += stats.embed_cached
            row[2] += stats.embed_api_calls
            row[3] += stats.embed_cost_usd
        if len(sums.latency) > before and len(sums) > self.max_rows:
            self._shed()

    @property
    def pending(self) -> int:
        """Rows not yet written."""
        return len(self._sums)

    def _shed(self) -> None:
        """Over `max_rows` (the database away a long while): drop the oldest minutes."""
        minutes = sorted({k[0] for rows in self._sums.rows.values() for k in rows})
        rows = requests = 0
        # Up to the newest minute itself, should it alone be over the bound.
        for minute in [*minutes[1:], minutes[-1] + 1]:
            dropped = self._sums.drop_before(minute)
            rows, requests = rows + dropped[0], requests + dropped[1]
            if len(self._sums) <= self.max_rows * 0.9:
                break
        self.dropped_requests += requests
        log.warning(
            "persisted figures: %d rows waiting is over POSADA_METRICS_MAX_ROWS; dropped %d "
            "rows (%d requests) of the oldest minutes",
            len(self._sums) + rows,
            rows,
            requests,
        )

    async def flush(self, pool: Pool) -> int:
        """Write the waiting rows now, in one transaction; on failure they wait for the next."""
        async with self._lock:
            taken, self._sums = self._sums, Sums()
            if not len(taken):
                return 0
            try:
                with context.unmeasured():
                    async with pool.connection() as conn, conn.transaction():
                        for table in TABLES:
                            if taken.rows[table]:
                                await conn.execute(UPSERT[table], self._params(table, taken))
            except Exception as exc:
                taken.merge(self._sums)
                self._sums = taken
                log.warning("could not write %d rows of figures: %s", len(taken), exc)
                if len(taken) > self.max_rows:
                    self._shed()
                return 0
            return len(taken)

    def _params(self, table: Table, sums: Sums) -> dict[str, object]:
        # In one order everywhere: the workers of a replica, writing the same rows at once,
        # then lock them in the same order and never deadlock.
        keys = sorted(sums.rows[table], key=lambda k: (k[0], k[1] or 0, k[1] is None, k[2]))
        params: dict[str, object] = {
            "replica": self.replica,
            "bucket": [datetime.fromtimestamp(k[0] * 60, UTC) for k in keys],
            "tenant": [k[1] for k in keys],
            "key": [k[2] for k in keys],
        }
        for i, (name, kind) in enumerate(table.sums):
            values = [sums.rows[table][k][i] for k in keys]
            params[name] = [int(v) for v in values] if kind == "bigint" else values
        if table.histogram:
            params["latency"] = [_array_text(sums.latency[k]) for k in keys]
        return params

    def start(self, pool: Pool) -> None:
        """Write every `flush_s`, and roll up every `rollup_s`, in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(pool), name="posada-rollups")

    async def _run(self, pool: Pool) -> None:
        next_rollup = time.monotonic()
        while True:
            await asyncio.sleep(self.flush_s)
            await self.flush(pool)
            if time.monotonic() >= next_rollup:
                next_rollup = time.monotonic() + self.rollup_s
                try:
                    with context.unmeasured():
                        async with pool.connection() as conn:
                            await roll_up(conn, now=datetime.now(UTC), retention=self.retention)
                except Exception as exc:
                    log.warning("rolling up the persisted figures failed: %s", exc)

    async def close(self, pool: Pool) -> None:
        """Stop the background task and write what is left."""
        if self._task is not None:
            async with self._lock:  # never cut a write short: its rows would be lost
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush(pool)


def rollups_for(settings: Settings) -> Rollups | None:
    """This worker's writer, as POSADA_METRICS_* say; None when they (or timing) are off."""
    m = settings.metrics
    if not (settings.instrumentation and m.enabled):
        return None
    retention = Retention(m.minute_hours, m.hour_days, m.day_days)
    return Rollups(replica=m.replica, flush_s=m.flush_s, max_rows=m.max_rows,
                   rollup_s=m.rollup_s, retention=retention)  # fmt: skip


def _array_text(counts: list[int]) -> str:
    """A histogram as a PostgreSQL array literal, without its trailing zeros."""
    end = len(counts)
    while end and not counts[end - 1]:
        end -= 1
    return "{" + ",".join(map(str, counts[:end])) + "}"


def _columns(table: Table) -> list[str]:
    return [name for name, _ in table.sums] + (["latency"] if table.histogram else [])


def _adding(table: Table) -> str:
    sets = [f"{name} = t.{name} + excluded.{name}" for name, _ in table.sums]
    if table.histogram:
        sets.append("latency = posada_hist_add(t.latency, excluded.latency)")
    return ", ".join(sets)


def _upsert(table: Table) -> str:
    """Add a batch of minute rows (one array per column) into the table: one statement."""
    names = ", ".join(_columns(table))
    arrays = [f"%({name})s::{kind}[]" for name, kind in table.sums]
    values = [f"u.{name}" for name, _ in table.sums]
    if table.histogram:  # arrays of arrays would flatten: each histogram goes as text
        arrays.append("%(latency)s::text[]")
        values.append("u.latency::bigint[]")
    return f"""
INSERT INTO {table.name} AS t (grain, bucket, replica, tenant_id, {table.key}, {names})
SELECT 'm', u.bucket, %(replica)s, u.tenant_id, u.key, {", ".join(values)}
FROM unnest(%(bucket)s::timestamptz[], %(tenant)s::bigint[], %(key)s::text[],
            {", ".join(arrays)}) AS u(bucket, tenant_id, key, {names})
-- A hotel deleted since its requests: its rows go too, rather than fail every later write.
WHERE u.tenant_id IS NULL OR u.tenant_id IN (SELECT id FROM tenants)
ON CONFLICT (grain, bucket, replica, tenant_id, {table.key}) DO UPDATE SET {_adding(table)}
"""  # noqa: S608 (constants only)


def _move(table: Table) -> str:
    """Move one grain's rows before a cutoff into the next grain's, summed: one statement,
    the delete feeding the insert, so no reader sees a row in both."""
    key, sums = table.key, [name for name, _ in table.sums]
    group = f"bucket, replica, tenant_id, {key}"
    latency, join, pick = "", "", ", ".join(f"s.{name}" for name in sums)
    if table.histogram:  # summed bucket by bucket
        latency = f""", latency AS (
    SELECT {group}, array_agg(n ORDER BY i) AS latency
    FROM (SELECT {group}, u.i, sum(u.n)::bigint AS n
          FROM moved, unnest(moved.latency) WITH ORDINALITY AS u(n, i)
          GROUP BY {group}, u.i) AS per_bucket
    GROUP BY {group})"""  # noqa: S608 (constants only)
        join = f"""LEFT JOIN latency h ON (h.bucket, h.replica, h.{key}) = (s.bucket, s.replica,
    s.{key}) AND h.tenant_id IS NOT DISTINCT FROM s.tenant_id"""
        pick += ", coalesce(h.latency, '{}')"
    return f"""
WITH moved AS (
    DELETE FROM {table.name} WHERE grain = %(from)s AND bucket < %(cutoff)s
    RETURNING date_trunc(%(unit)s, bucket, 'UTC') AS bucket, replica, tenant_id, {key},
        {", ".join(_columns(table))}
), summed AS (
    SELECT {group}, {", ".join(f"sum({name}) AS {name}" for name in sums)}
    FROM moved GROUP BY {group}
){latency}
INSERT INTO {table.name} AS t (grain, {group}, {", ".join(_columns(table))})
SELECT %(into)s, s.bucket, s.replica, s.tenant_id, s.{key}, {pick}
FROM summed s {join}
ON CONFLICT (grain, {group}) DO UPDATE SET {_adding(table)}
"""  # noqa: S608 (constants only)


# Built once from the table specs above: no input reaches the statements' text.
UPSERT = {table: _upsert(table) for table in TABLES}
MOVE = {table: _move(table) for table in TABLES}
EXPIRE = {
    table: f"DELETE FROM {table.name} WHERE grain = 'd' AND bucket < %(cutoff)s"  # noqa: S608
    for table in TABLES
}


@dataclass(frozen=True)
class Retention:
    """How long each grain is kept (POSADA_METRICS_*): minutes, then hours, then days."""

    minute_hours: float = 48
    hour_days: float = 35
    day_days: float = 400


@dataclass(frozen=True)
class RollupReport:
    """What one roll-up did: rows written into hours and days, day rows deleted."""

    hours: int
    days: int
    deleted: int


def _floor(moment: datetime, unit: str) -> datetime:
    """The start of the UTC hour or day `moment` is in."""
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if unit == "day" else moment


async def roll_up(conn: AsyncConn, *, now: datetime, retention: Retention) -> RollupReport | None:
    """Minutes before `now - minute_hours` into hours, hours into days, old days deleted;
    None when another replica holds the lock (it is doing the same)."""
    if now.tzinfo is None:
        raise ValueError("roll_up needs an aware `now` (UTC)")
    # Whole hours and days: an hour row is made once, from all of its minutes.
    minute_cut = _floor(now - timedelta(hours=retention.minute_hours), "hour")
    hour_cut = _floor(now - timedelta(days=retention.hour_days), "day")
    day_cut = _floor(now - timedelta(days=retention.day_days), "day")
    hours = days = deleted = 0
    async with conn.transaction():
        cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (ROLLUP_LOCK,))
        locked = await cur.fetchone()
        if not (locked and locked[0]):
            return None
        for table in TABLES:
            into_hours = {"from": "m", "into": "h", "unit": "hour", "cutoff": minute_cut}
            hours += (await conn.execute(MOVE[table], into_hours)).rowcount
            into_days = {"from": "h", "into": "d", "unit": "day", "cutoff": hour_cut}
            days += (await conn.execute(MOVE[table], into_days)).rowcount
            deleted += (await conn.execute(EXPIRE[table], {"cutoff": day_cut})).rowcount
    return RollupReport(hours=hours, days=days, deleted=deleted)
