"""The stages of an answer that a profile may do its own way, and the choice of profile.

posada's own steps are the fast ones: one embedding, the one-statement lookup, the
question stored with its checks and history in one statement, no LLM call beside the
answer. The benchmark's baseline (`posada_bench.baseline`) does the same steps naively,
to show what posada saves. `steps_for` picks the baseline, once per runtime, when a
setting only it implements is set (`NAIVE_SWITCHES`); it is found through the
`posada.steps` entry point, so posada never imports the benchmark.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from psycopg_pool import AsyncConnectionPool

from posada.answers.lookup import Lookup, lookup
from posada.core.config import Settings
from posada.core.context import RequestStats
from posada.core.errors import ConfigurationError
from posada.db.pool import AsyncConn
from posada.guests.conversations import Recorded, record_answer, record_guest_message
from posada.guests.tokens import GuestClaims
from posada.knowledge.retrieval import Hit
from posada.providers.llm import ChatMessage, ChatModel
from posada.providers.registry import Tier
from posada.providers.types import Embedder, Vectors
from posada.runtime import Runtime

# Settings only the baseline's steps read (`config.BASELINE` sets them all at once).
NAIVE_SWITCHES = (
    "embedding_calls",
    "lookup",
    "conversation_store",
    "follow_up_rewrite",
    "intent_detection",
    "compaction_every",
    "llm_needs_context",
    "stage_delay_ms",
)
ENTRY_POINTS = "posada.steps"


@dataclass(frozen=True)
class Stored:
    """A stored answer's id (None: a person took the conversation meanwhile, so it was not
    kept), and the conversation's message count when the steps know it."""

    message_id: int | None
    count: int | None = None


class Steps:
    """posada's own way of each stage. A subclass may do any of them otherwise."""

    @property
    def rewrites_follow_ups(self) -> bool:
        """Whether a follow-up is rewritten before it is embedded (so not embedded early)."""
        return False

    # How the question is stored (the baseline's steps store it step by step).
    record_question = staticmethod(record_guest_message)

    def __init__(
        self,
        *,
        settings: Settings,
        pool: AsyncConnectionPool[AsyncConn],
        embedder: Embedder,
        chat_models: dict[Tier, ChatModel],
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.embedder = embedder
        self.chat_models = chat_models

    async def embed(self, text: str) -> Vectors:
        """The question's one embedding."""
        row: Vectors = (await self.embedder.embed_batch([text]))[0]
        return row

    async def store_question(
        self, conn: AsyncConn, *, guest: GuestClaims, conversation_id: int | None, content: str
    ) -> Recorded:
        """The question stored with the stay's and the conversation's checks, in one statement."""
        return await self.record_question(
            conn,
            guest=guest,
            conversation_id=conversation_id,
            content=content,
            history_turns=self.settings.history_turns,
        )

    async def rewrite(
        self, question: str, history: list[ChatMessage], timer: RequestStats
    ) -> str | None:
        """A follow-up rewritten to stand alone; None: searched with the turn before it."""
        return None

    async def classify(self, question: str, timer: RequestStats) -> None:
        """What the guest wants, before answering (posada needs no call for it)."""
        return

    async def lookup(self, conn: AsyncConn, **search: Any) -> Lookup:
        """Chunks, FAQ candidates and cached answers in one round trip."""
        return await lookup(conn, **search)

    def passages(self, retrieved: Lookup, relevant: list[Hit]) -> list[Hit]:
        """What an LLM is sent: the relevant passages (none: no call)."""
        return relevant

    async def store_answer(self, conn: AsyncConn, **answer: Any) -> Stored:
        """The answer stored (with its cache entry): its id, and the message count when it
        is known."""
        return Stored(await record_answer(conn, **answer))

    async def after_answer(
        self, guest: GuestClaims, conversation_id: int, count: int | None, timer: RequestStats
    ) -> None:
        """Whatever follows the stored answer on the request path (posada: nothing)."""
        return

    async def after(self, stage: str) -> None:
        """Called at the end of each stage (embed, lookup, generate, store)."""
        return


_CHOSEN: weakref.WeakKeyDictionary[Runtime, Steps] = weakref.WeakKeyDictionary()


def naive(settings: Settings) -> list[str]:
    """The settings set that only the baseline's steps implement."""
    fields = Settings.model_fields
    return [
        name
        for name in NAIVE_SWITCHES
        if getattr(settings, name) != fields[name].get_default(call_default_factory=True)
    ]


def steps_for(runtime: Runtime) -> Steps:
    """The steps of this runtime's profile, chosen at its first question and kept."""
    chosen = _CHOSEN.get(runtime)
    if chosen is None:
        chosen = _choose(runtime)
        _CHOSEN[runtime] = chosen
    return chosen


def _choose(runtime: Runtime) -> Steps:
    kind: type[Steps] = Steps
    switches = naive(runtime.settings)
    if switches:
        found = [p for p in entry_points(group=ENTRY_POINTS) if p.name == "baseline"]
        if not found:
            raise ConfigurationError(
                f"{', '.join(switches)}: only the benchmark's baseline implements "
                "these; install posada with its bench extra, or leave them unset"
            )
        kind = found[0].load()
    return kind(
        settings=runtime.settings,
        pool=runtime.pool,
        embedder=runtime.query_embedder,
        chat_models=runtime.chat_models,
    )
