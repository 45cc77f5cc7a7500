"""Live conversation events: one listening connection per process, fanned out to its streams.

Every statement that adds a message or changes a conversation's handoff sends
`pg_notify('posada_conversations', 'tenant:conversation:message ids')` in the same
statement, so it is delivered when that transaction commits, to every posada process
listening, on this machine or another. A notification carries ids only: a stream reads
the rows itself, with its own tenant (and, for a guest, the stay's checks) as parameters.

The listener connects to the server itself (`resolve_direct_url`), never through a
transaction pooler, where LISTEN would hold on a borrowed server connection; the
statements that notify may go through one (the pooler delivers NOTIFY at commit).

A process listens only while one of its streams is open: the first subscriber starts the
listener, the last to leave stops it. A listener that loses its connection reconnects and
tells every subscriber to read again (`RESET`), since notifications may have been missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import psycopg

from posada.db.pool import Pool

log = logging.getLogger(__name__)

CHANNEL = "posada_conversations"
_POLL_S = 1.0  # how often the listener looks up from `notifies()` (to stop, see versions.py)
_CONNECT_TIMEOUT_S = 5
_READY_S = 10.0
_BACKLOG = 1000  # notes a slow stream may hold before it is told to read again instead


@dataclass(frozen=True)
class Note:
    """A conversation got these messages (none: only its handoff changed)."""

    tenant_id: int
    conversation_id: int
    message_ids: tuple[int, ...]


RESET = None  # in a subscriber's notes: some may have been missed; read everything again


def notify_sql(conversation: str, ids: str) -> str:
    """The pg_notify call of a statement, as SQL: the `%(tenant)s` parameter, the SQL
    expressions of the conversation's id and of its new messages' ids (comma-joined text)."""
    payload = f"%(tenant)s::bigint || ':' || ({conversation}) || ':' || coalesce(({ids}), '')"
    return f"pg_notify('{CHANNEL}', {payload})"


def parse(payload: str) -> Note | None:
    """The note a payload names, or None if it is malformed."""
    tenant, _, rest = payload.partition(":")
    conversation, _, ids = rest.partition(":")
    try:
        numbers = tuple(int(i) for i in ids.split(",") if i)
        return Note(int(tenant), int(conversation), numbers)
    except ValueError:
        return None


@dataclass(eq=False)
class Subscription:
    """One open stream's interest: a hotel's conversations, or one of them."""

    tenant_id: int
    conversation_id: int | None
    _notes: list[Note | None] = field(default_factory=list)
    _woken: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, note: Note) -> bool:
        """Whether the note concerns this stream."""
        if note.tenant_id != self.tenant_id:
            return False
        return self.conversation_id is None or note.conversation_id == self.conversation_id

    def put(self, note: Note | None) -> None:
        """Keep the note for the stream's next `wait`."""
        if len(self._notes) >= _BACKLOG:
            self._notes = [RESET]
        else:
            self._notes.append(note)
        self._woken.set()

    async def wait(self, timeout_s: float) -> list[Note | None]:
        """The notes since the last call, waiting up to `timeout_s` for one ([]: none came)."""
        if not self._notes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), timeout=timeout_s)
        notes, self._notes = self._notes, []
        self._woken.clear()
        return notes


class Hub:
    """A process's listener on CHANNEL and the streams it serves."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._subscriptions: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @contextlib.asynccontextmanager
    async def subscribe(
        self, *, tenant_id: int, conversation_id: int | None = None
    ) -> AsyncIterator[Subscription]:
        """Notes for a hotel (or one conversation) from the moment this returns, until exit."""
        subscription = Subscription(tenant_id, conversation_id)
        self._subscriptions.add(subscription)
        try:
            if self._task is None:
                self._ready = asyncio.Event()
                self._task = asyncio.create_task(self._listen(), name="posada-live-listener")
            with contextlib.suppress(TimeoutError):
                # Not listening yet (the database is down): the stream reads what is stored
                # and is told to read again once the listener connects.
                await asyncio.wait_for(self._ready.wait(), timeout=_READY_S)
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    @property
    def listening(self) -> bool:
        """Whether a listener runs (it stops when the last stream closes)."""
        return self._task is not None

    def _dispatch(self, payload: str) -> None:
        note = parse(payload)
        if note is None:
            log.warning("ignoring a malformed conversation notification: %r", payload[:200])
            return
        for subscription in self._subscriptions:
            if subscription.wants(note):
                subscription.put(note)

    async def _listen(self) -> None:
        delay, connected_before = 0.5, False
        try:
            while self._subscriptions:
                try:
                    await self._serve(reset=connected_before)
                    return
                except Exception as exc:
                    log.warning("conversation listener lost (%s); reconnecting", exc)
                    self._ready.set()
                    connected_before = True
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30)
        finally:
            if self._task is asyncio.current_task():
                self._task = None

    async def _serve(self, *, reset: bool) -> None:
        conn = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_S
        )
        try:
            await conn.execute(f"LISTEN {CHANNEL}")
            self._ready.set()
            if reset:
                for subscription in self._subscriptions:
                    subscription.put(RESET)
            while self._subscriptions:
                async for note in conn.notifies(timeout=_POLL_S):
                    self._dispatch(note.payload)
            # The last stream left: a stream opened from now on starts a listener of its own.
            self._task = None
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=_CONNECT_TIMEOUT_S)


_HUBS: weakref.WeakKeyDictionary[Pool, Hub] = weakref.WeakKeyDictionary()


def hub_for(pool: Pool, url: str) -> Hub:
    """The process's hub for this database (one per pool), listening at `url`.

    The first call makes it: the runtime does, with the server's own (direct) address,
    so a later caller's `url` (perhaps the pooler's) changes nothing.
    """
    hub = _HUBS.get(pool)
    if hub is None:
        hub = _HUBS[pool] = Hub(url)
    return hub
