"""Capturing `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` plans as statements run, and reading them.

A cursor class hands each statement to a `Capture` before running it; the capture runs
the same statement with the same parameters under EXPLAIN ANALYZE inside a savepoint it
rolls back at once, so a write is not done twice and the caller still gets its result.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Self

import psycopg
from psycopg import sql
from psycopg.abc import Params, QueryNoTemplate
from psycopg.rows import Row

from posada.db.pool import AsyncConn

Plan = dict[str, Any]
FlagKind = Literal["seq-scan", "index-miss", "slow"]
Work = Callable[[AsyncConn, "Capture"], Awaitable[None]]

EXPLAIN = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)\n"
_EXPLAINABLE = re.compile(
    r"^(?:\s|--[^\n]*\n|/\*.*?\*/)*(select|insert|update|delete|with|values|merge|table)\b",
    re.IGNORECASE | re.DOTALL,
)
_SEQ_SCANS = ("Seq Scan", "Parallel Seq Scan")


@dataclass(frozen=True)
class Captured:
    """One statement's plan and what it cost."""

    function: str
    case: str
    query: str
    plan: Plan
    execution_ms: float
    planning_ms: float
    shared_hit: int
    shared_read: int


@dataclass(frozen=True)
class Flag:
    """One thing worth a look in one statement's plan."""

    kind: FlagKind
    function: str
    case: str
    detail: str


def function_name(fn: Callable[..., Any]) -> str:
    """`guests.service.log_in`: where to look for the statement."""
    return f"{fn.__module__.removeprefix('posada.')}.{fn.__qualname__}"


class Capture:
    """The plans of the statements run while `calling` names a function."""

    def __init__(self) -> None:
        self.statements: list[Captured] = []
        self._calling: tuple[str, str] | None = None

    @contextmanager
    def calling(self, fn: Callable[..., Any], case: str) -> Iterator[None]:
        """Explain every statement run in the block as `fn`'s."""
        self._calling = (function_name(fn), case)
        try:
            yield
        finally:
            self._calling = None

    async def explain(
        self, conn: psycopg.AsyncConnection[Any], query: QueryNoTemplate, params: Params | None
    ) -> None:
        """Keep the plan of `query` run with `params`, leaving no trace of running it."""
        if self._calling is None:
            return
        text, explained = _explained(conn, query)
        if explained is None:
            return
        # A plain cursor: this module's own would explain the EXPLAIN.
        async with conn.transaction(force_rollback=True), psycopg.AsyncCursor(conn) as cur:
            await cur.execute(explained, params)
            row = await cur.fetchone()
        assert row is not None
        result: dict[str, Any] = row[0][0]
        plan: Plan = result["Plan"]
        self.statements.append(
            Captured(
                *self._calling,
                query=text,
                plan=plan,
                execution_ms=float(result["Execution Time"]),
                planning_ms=float(result["Planning Time"]),
                shared_hit=int(plan.get("Shared Hit Blocks", 0)),
                shared_read=int(plan.get("Shared Read Blocks", 0)),
            )
        )


def _explained(
    conn: psycopg.AsyncConnection[Any], query: QueryNoTemplate
) -> tuple[str, QueryNoTemplate | None]:
    """The statement's text and its EXPLAIN, or None for what EXPLAIN cannot take (SET, ...)."""
    explained: QueryNoTemplate
    if isinstance(query, sql.Composable):
        text = query.as_string(conn)
        explained = sql.Composed([sql.SQL(EXPLAIN), query])
    elif isinstance(query, bytes):
        text, explained = query.decode(), EXPLAIN.encode() + query
    else:
        text, explained = query, EXPLAIN + query
    return text, explained if _EXPLAINABLE.match(text) else None


def explaining_cursor(capture: Capture) -> type[psycopg.AsyncCursor[Any]]:
    """A cursor class that hands each statement to `capture` before running it."""

    class ExplainingCursor(psycopg.AsyncCursor[Row]):
        async def execute(  # type: ignore[override]
            self,
            query: QueryNoTemplate,
            params: Params | None = None,
            *,
            prepare: bool | None = None,
            binary: bool | None = None,
        ) -> Self:
            await capture.explain(self.connection, query, params)
            return await super().execute(query, params, prepare=prepare, binary=binary)

    return ExplainingCursor


async def capture_plans(conn: AsyncConn, *, work: Work) -> tuple[list[Captured], dict[str, float]]:
    """Run `work` explained, in a transaction rolled back; its plans and their tables' sizes."""
    capture = Capture()
    own_factory = conn.cursor_factory
    conn.cursor_factory = explaining_cursor(capture)
    try:
        async with conn.transaction(force_rollback=True):
            await work(conn, capture)
            conn.cursor_factory = own_factory
            # Inside the transaction: the plan's table names resolve on the same search_path.
            # The planner's own estimate: reltuples scaled to the table's size now. A table
            # never analysed has none (relpages 0); the statistics' live count stands in.
            cur = await conn.execute(
                """SELECT n, CASE WHEN c.relpages > 0
                                  THEN c.reltuples / c.relpages * pg_relation_size(c.oid)
                                       / current_setting('block_size')::float8
                                  ELSE coalesce(s.n_live_tup, 0)::float8 END
                   FROM unnest(%s::text[]) n
                   LEFT JOIN pg_class c ON c.oid = to_regclass(quote_ident(n))
                   LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid""",
                (sorted({name for s in capture.statements for name in relations(s.plan)}),),
            )
            table_rows = {name: float(rows or 0) for name, rows in await cur.fetchall()}
    finally:
        conn.cursor_factory = own_factory
    return capture.statements, table_rows


def walk(plan: Plan, depth: int = 0) -> Iterator[tuple[int, Plan]]:
    """Every node of a plan tree with its depth, parents first."""
    yield depth, plan
    for child in plan.get("Plans", []):
        yield from walk(child, depth + 1)


def relations(plan: Plan) -> set[str]:
    """The tables the plan scans, by the name the plan gives."""
    return {node["Relation Name"] for _, node in walk(plan) if "Relation Name" in node}


def removed_by_filter(node: Plan) -> int:
    """Rows a node's filter threw away over all its loops (EXPLAIN shows them per loop)."""
    return round(float(node.get("Rows Removed by Filter", 0)) * int(node.get("Actual Loops", 1)))


def describe(node: Plan) -> str:
    """`Index Scan using x on chunks c`, as EXPLAIN's text format names a node."""
    parts = [node["Node Type"]]
    if "Index Name" in node:
        parts.append(f"using {node['Index Name']}")
    if "Relation Name" in node:
        relation = node["Relation Name"]
        alias = node.get("Alias", relation)
        parts.append(f"on {relation}" if alias == relation else f"on {relation} {alias}")
    elif "CTE Name" in node:
        parts.append(f"on {node['CTE Name']}")
    return " ".join(parts)


def summary_lines(plan: Plan) -> list[str]:
    """One line per node: what it is, its actual rows and time, what its filter removed."""
    lines = []
    for depth, node in walk(plan):
        label = node.get("Subplan Name") or node.get("Parent Relationship")
        head = f"[{label}] " if depth and label not in ("Outer", "Inner", "Member") else ""
        loops = int(node.get("Actual Loops", 1))
        if loops == 0:
            lines.append(f"{'  ' * depth}-> {head}{describe(node)} (never executed)")
            continue
        # EXPLAIN gives rows and time per loop; say so where there are several.
        each = f" loops={loops}" if loops != 1 else ""
        per = "/loop" if each else ""
        facts = [
            f"rows={node.get('Actual Rows', 0):g}{each}",
            f"{float(node.get('Actual Total Time', 0.0)):.3f} ms{per}",
        ]
        removed = removed_by_filter(node)
        if removed:
            facts.append(f"removed by filter={removed}")
        lines.append(f"{'  ' * depth}-> {head}{describe(node)} ({', '.join(facts)})")
    return lines


def plan_flags(
    captured: Captured, *, table_rows: Mapping[str, float], large_rows: int, slow_ms: float
) -> list[Flag]:
    """Seq scans of large tables, filters doing an index's work, and a slow statement."""
    flags = []

    def flag(kind: FlagKind, detail: str) -> None:
        flags.append(Flag(kind, captured.function, captured.case, detail))

    for _, node in walk(captured.plan):
        if node.get("Actual Loops") == 0:
            continue  # planned but never run (a CASE or coalesce did not need it)
        relation = node.get("Relation Name")
        where = f" (filter: {node['Filter']})" if "Filter" in node else ""
        rows = table_rows.get(relation, 0.0) if relation else 0.0
        if node["Node Type"] in _SEQ_SCANS and rows > large_rows:
            flag("seq-scan", f"{describe(node)}: the table holds ~{rows:.0f} rows{where}")
        removed = removed_by_filter(node)
        if relation and removed > large_rows:
            flag("index-miss", f"{describe(node)}: its filter removed {removed} rows{where}")
    if captured.execution_ms > slow_ms:
        flag("slow", f"executed in {captured.execution_ms:.1f} ms (> {slow_ms:g} ms)")
    return flags
