"""Each tenant's knowledge version, known in every process without asking the database.

Cache keys carry the tenant's knowledge version, so an ingest (which bumps it) makes the
old entries unreachable. The versions are read once at start; then an ingest's
`pg_notify('posada_knowledge', ...)`, sent when its transaction commits, reaches every
posada process listening on its own connection, on this machine or another, within
milliseconds. Listeners are told too (the in-process caches drop that tenant's entries).
If the listening connection is lost, it reconnects and reads every version again, since
notifications may have been missed meanwhile. It listens on the server itself
(`resolve_direct_url`): behind a transaction pooler, LISTEN would hold on a server
connection the pooler lends to others, and nothing would reach this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import psycopg
from psycopg_pool import AsyncConnectionPool

from posada.db.pool import AsyncConn
from posada.knowledge.versions import CHANNEL

log = logging.getLogger(__name__)

_POLL_S = 1.0  # how often the listener looks up from `notifies()` to see if it must stop
_CONNECT_TIMEOUT_S = 5
Listener = Callable[[int | None], None]  # a tenant's id, or None: every tenant


class KnowledgeVersions:
    """tenant id -> knowledge version, kept current by notifications.

    `pool` reads the versions (it may go through a pooler); `url` is where to listen:
    the server itself, never a transaction pooler.
    """

    def __init__(self, pool: AsyncConnectionPool[AsyncConn], url: str) -> None:
        self._pool = pool
        self._url = url
        self._versions: dict[int, int] = {}
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._live = False  # listening: the map is current without asking the database
        self._stopping = asyncio.Event()
        self._conn: psycopg.AsyncConnection[object] | None = None

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(tenant_id)` when a tenant's knowledge changes (None: every tenant)."""
        self._listeners.append(listener)

    async def get(self, tenant_id: int) -> int:
        """The tenant's current version: from memory while listening, else the database."""
        version = self._versions.get(tenant_id)
        if version is None or not self._live:
            async with self._pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT knowledge_version FROM tenants WHERE id = %s", (tenant_id,)
                )
                row = await cur.fetchone()
            version = int(row[0]) if row else 0
            self._versions[tenant_id] = max(version, self._versions.get(tenant_id, 0))
        return version

    def known(self, tenant_id: int) -> int | None:
        """The version if already known, without waiting."""
        return self._versions.get(tenant_id)

    async def start(self) -> None:
        """Read every version and listen for changes (returns once listening)."""
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="posada-knowledge-versions")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def _reload(self) -> None:
        async with self._pool.connection() as conn:
            cur = await conn.execute("SELECT id, knowledge_version FROM tenants")
            self._versions = {int(i): int(v) for i, v in await cur.fetchall()}
        self._tell(None)

    def _apply(self, payload: str) -> bool:
        if payload.strip() == "*":
            return False  # every tenant: read them all again
        for part in payload.split(","):
            tenant, _, version = part.partition(":")
            try:
                tenant_id, number = int(tenant), int(version)
            except ValueError:
                log.warning("ignoring a malformed knowledge notification: %r", payload[:200])
                continue
            self._versions[tenant_id] = max(number, self._versions.get(tenant_id, 0))
            self._tell(tenant_id)
        return True

    def _tell(self, tenant_id: int | None) -> None:
        for listener in self._listeners:
            try:
                listener(tenant_id)
            except Exception:
                log.exception("a knowledge-version listener failed")

    async def _listen(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S
                )
                self._conn = conn
                try:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await self._reload()  # after LISTEN: nothing slips between the two
                    self._live = True
                    self._ready.set()
                    delay = 0.5
                    while not self._stopping.is_set():
                        # A bounded wait, then look at the stop flag: a task cancelled
                        # inside `notifies()` was seen to stay "cancelling" for ever, and
                        # with it every command's exit (issue 12).
                        async for note in conn.notifies(timeout=_POLL_S):
                            if not self._apply(note.payload):
                                await self._reload()
                finally:
                    self._conn = None
                    self._live = False
                    await _close_quietly(conn)
            except Exception as exc:
                self._live = False
                if self._stopping.is_set():
                    return
                log.warning("knowledge-version listener lost (%s); reconnecting", exc)
                self._ready.set()  # callers read the database meanwhile (`get`)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                delay = min(delay * 2, 30)

    async def close(self, *, timeout_s: float = 3.0) -> None:
        """Stop listening within `timeout_s`, whatever the listener is waiting on."""
        self._live = False
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            log.warning("knowledge-version listener did not stop in %.1f s; dropping it", timeout_s)
            conn = self._conn
            if conn is not None:
                conn.pgconn.finish()  # the socket goes; a pending wait on it ends with an error
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.warning("knowledge-version listener ended with %r", task.exception())


async def _close_quietly(conn: psycopg.AsyncConnection[object]) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(conn.close(), timeout=_CONNECT_TIMEOUT_S)
