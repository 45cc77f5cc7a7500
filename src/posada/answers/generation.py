"""Generation with fallbacks: each model in turn, within one time cap, never an error.

A model that fails before writing anything (timeout, connection, 429, 5xx, refusal) is
logged with its cause and the next one is tried; when all have failed, or the time cap
is reached first, the caller falls back to the extractive answer. A model that fails
part-way ends the answer where it stopped, marked incomplete.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

from posada.core import context as observe
from posada.providers.llm import (
    ChatMessage,
    ChatModel,
    Delta,
    ProviderError,
    Usage,
    prompt_tokens,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answering:
    """This model is answering (sent before its first delta)."""

    model: ChatModel


@dataclass(frozen=True)
class Generated:
    """The model finished (or stopped part-way: `incomplete`)."""

    model: ChatModel
    usage: Usage
    incomplete: bool = False


@dataclass(frozen=True)
class Exhausted:
    """No model answered; fall back to the extractive answer."""

    failures: list[str] = field(default_factory=list)


GenerationEvent = Answering | Delta | Generated | Exhausted


async def generate(
    models: Sequence[ChatModel],
    messages: Sequence[ChatMessage],
    *,
    max_tokens: int,
    request_timeout: float,
    total_timeout: float,
) -> AsyncGenerator[GenerationEvent, None]:
    """Stream from the first model that answers; end with `Generated` or `Exhausted`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total_timeout
    failures: list[str] = []
    for model in models:
        remaining = deadline - loop.time()
        if remaining <= 0:
            failures.append(f"{model.provider}/{model.model}: not tried, time cap reached")
            break
        written, answering = 0, False
        observe.count_llm_call()
        sent = time.perf_counter()  # the prompt goes out on the stream's first read
        stream = model.stream(
            messages, max_tokens=max_tokens, request_timeout=min(request_timeout, remaining)
        )
        try:
            while True:
                # The cap covers waiting on the model, never the caller's handling of an
                # event: a timeout scope left open across a yield would cancel the caller.
                async with asyncio.timeout_at(deadline):
                    try:
                        event = await anext(stream)
                    except StopAsyncIteration:
                        break
                if not answering:
                    answering = True
                    # The first token (or, from a model that sends none, its whole answer):
                    # what the guest waited for before any text (TTFT).
                    observe.record_first_token(
                        model=model.model, seconds=time.perf_counter() - sent
                    )
                    yield Answering(model)
                if isinstance(event, Delta):
                    written += len(event.text)
                    yield event
                else:
                    yield Generated(model, event.usage)
                    return
        except (ProviderError, TimeoutError) as exc:
            cause = exc.cause if isinstance(exc, ProviderError) else "time cap"
            log.warning("LLM %s/%s failed (%s): %s", model.provider, model.model, cause, exc)
            failures.append(f"{model.provider}/{model.model}: {cause}")
            if written:
                # The model read the whole prompt: a cut answer costs its input too.
                estimate = Usage(prompt_tokens(messages), written // 4, estimated=True)
                yield Generated(model, estimate, incomplete=True)
                return
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
    yield Exhausted(failures)
