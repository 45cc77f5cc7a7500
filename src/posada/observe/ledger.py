"""The embedding usage ledger: every text embedded (or served from a cache) gets a row.

Rows are buffered in memory and written by a background task with one COPY, so
recording costs a request nothing on the database; `close()` writes what is left. Local
token counts are taken then too (on a thread), not while the guest waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from posada.core import context
from posada.db.pool import AsyncConn
from posada.providers.llm import estimate_tokens
from posada.providers.types import EmbeddingCall, UsageHook

log = logging.getLogger(__name__)

_COLUMNS = (
    "created_at, tenant_id, provider, model, call_id, text_hash, tokens, cost_usd, api, cached"
)


class UsageLedger:
    """Buffers usage rows and writes them off the request path."""

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConn],
        *,
        count_tokens: Callable[[Sequence[str]], list[int]] | None = None,
        flush_interval_s: float = 2.0,
        max_rows: int = 100_000,
    ) -> None:
        self._pool = pool
        self._count_tokens = count_tokens
        self._interval = flush_interval_s
        self._max_rows = max_rows
        # Each row waits with its text until written: the text is counted then, not kept.
        self._rows: list[tuple[list[Any], str | None]] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.dropped = 0

    def record(self, call: EmbeddingCall, *, tenant_id: int | None, cost_usd: float) -> None:
        """Queue one row per text of the call; tokens and cost are shared out by length."""
        if not call.texts:
            return
        now = datetime.now(UTC)
        call_id = uuid.uuid4()
        total_chars = sum(len(t) for t in call.texts) or 1
        tokens_left, cost_left = call.tokens or 0, cost_usd
        for i, text in enumerate(call.texts):
            last = i == len(call.texts) - 1
            share = len(text) / total_chars
            cost = cost_left if last else cost_usd * share
            cost_left -= cost
            if call.tokens is None:
                tokens, pending = 0, text
            else:  # an API's total for the batch, shared out by length
                tokens = tokens_left if last else round(call.tokens * share)
                tokens_left -= tokens
                pending = None
            digest = hashlib.sha256(text.encode()).digest()
            row = [now, tenant_id, call.provider, call.model, call_id, digest, max(tokens, 0),
                   max(cost, 0.0), call.api, call.cached]  # fmt: skip
            self._rows.append((row, pending))
        if len(self._rows) > self._max_rows:
            # The database has been away a long while: keep the newest rows, say so.
            excess = len(self._rows) - self._max_rows
            del self._rows[:excess]
            self.dropped += excess
            log.warning("embedding usage ledger full; dropped %d oldest rows", excess)

    @property
    def pending(self) -> int:
        """Rows not yet written."""
        return len(self._rows)

    async def flush(self) -> int:
        """Write the buffered rows now; on failure they stay for the next try."""
        async with self._lock:
            rows, self._rows = self._rows, []
            if not rows:
                return 0
            try:
                await self._count(rows)
                async with self._pool.connection() as conn, conn.cursor() as cur:
                    copy_sql = f"COPY embedding_usage ({_COLUMNS}) FROM STDIN"
                    async with cur.copy(copy_sql) as copy:
                        for row, _ in rows:
                            await copy.write_row(row)
            except Exception as exc:
                self._rows[:0] = rows
                log.warning("could not write %d embedding usage rows: %s", len(rows), exc)
                return 0
            return len(rows)

    async def _count(self, rows: list[tuple[list[Any], str | None]]) -> None:
        todo = [(row, text) for row, text in rows if text is not None]
        if not todo:
            return
        texts = [text for _, text in todo]
        if self._count_tokens is not None:
            counts = await asyncio.to_thread(self._count_tokens, texts)
        else:
            counts = [estimate_tokens(text) for text in texts]
        for (row, _), count in zip(todo, counts, strict=True):
            row[6] = count
        rows[:] = [(row, None) for row, _ in rows]  # counted: a retry need not count again

    def start(self) -> None:
        """Write in the background every `flush_interval_s`."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="posada-usage-ledger")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def close(self) -> None:
        """Stop the background writer and write what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()


def usage_recorder(ledger: UsageLedger | None, *, api_price_per_m: float) -> UsageHook:
    """The hook embedders call: count into the running request, queue ledger rows."""

    def record(call: EmbeddingCall) -> None:
        stats = context.current()
        paid = call.api and not call.cached
        cost = (call.tokens or 0) * api_price_per_m / 1e6 if paid else 0.0
        if stats is not None:
            stats.embed_provider = call.provider
            stats.embed_cost_usd += cost
            if call.cached:
                stats.embed_cached += len(call.texts)
            else:
                stats.embed_computed += len(call.texts)
                stats.embed_api_calls += int(call.api)
        if ledger is not None:
            ledger.record(call, tenant_id=stats.tenant_id if stats else None, cost_usd=cost)

    return record
