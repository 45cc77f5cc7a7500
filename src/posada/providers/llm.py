"""Chat models: one streaming Protocol; OpenAI-compatible and Anthropic implementations.

Every implementation yields `Delta`s as text arrives and ends with one `Finished`
carrying the usage. Any failure of the upstream (timeout, connection, 429, 5xx, a
refused key, a malformed stream) is raised as `ProviderError` naming the cause, so that
the caller can move on to the next model. The SDKs' own retries are off: the fallback
chain decides, within its own time cap.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import httpx2

from posada.core.errors import PosadaError

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One message of a prompt."""

    role: Role
    content: str


@dataclass(frozen=True)
class Usage:
    """Tokens in and out; `estimated` when the provider did not say."""

    input_tokens: int
    output_tokens: int
    estimated: bool = False


@dataclass(frozen=True)
class Delta:
    """A piece of the answer, as generated."""

    text: str


@dataclass(frozen=True)
class Finished:
    """The end of a generation."""

    usage: Usage


StreamEvent = Delta | Finished


class ProviderError(PosadaError):
    """An upstream model failed; `cause` is timeout, connection, rate_limit, server or refused."""

    def __init__(self, provider: str, model: str, cause: str, detail: str) -> None:
        super().__init__(f"{provider}/{model}: {cause}: {detail}")
        self.provider = provider
        self.model = model
        self.cause = cause


@runtime_checkable
class ChatModel(Protocol):
    """A model that streams an answer to a list of messages."""

    provider: str
    model: str
    price_in: float  # USD per million input tokens
    price_out: float  # USD per million output tokens

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, request_timeout: float
    ) -> AsyncIterator[StreamEvent]:
        """Yield `Delta`s, then one `Finished`; raise `ProviderError` on any failure."""
        ...


def estimate_tokens(text: str) -> int:
    """A local token estimate (about four characters a token, as for GPT and Claude)."""
    return max(1, math.ceil(len(text) / 4)) if text else 0


def cost_usd(model: ChatModel, usage: Usage) -> float:
    """What a generation cost at the model's configured prices."""
    return (usage.input_tokens * model.price_in + usage.output_tokens * model.price_out) / 1e6


def _cause(exc: Exception, status: int | None) -> str:
    name = type(exc).__name__
    if "Timeout" in name:
        return "timeout"
    if "Connection" in name:
        return "connection"
    if status == 429:
        return "rate_limit"
    if status is not None and status >= 500:
        return "server"
    if status is not None:
        return "refused"
    return "bad_response"


@contextmanager
def _translated(provider: str, model: str, sdk_error: type[Exception]) -> Iterator[None]:
    """Any failure of the upstream, raised as the one `ProviderError` naming its cause.

    The one place the SDKs' errors are translated: `sdk_error` (the SDK's own base, which
    carries the HTTP status), the transport's, and garbage from the upstream (not JSON,
    missing fields), which is as good as no answer.
    """
    try:
        yield
    except sdk_error as exc:
        status = getattr(exc, "status_code", None)
        raise ProviderError(provider, model, _cause(exc, status), str(exc)) from exc
    except httpx2.HTTPError as exc:
        raise ProviderError(provider, model, "connection", str(exc)) from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProviderError(provider, model, "bad_response", repr(exc)) from exc


class _Priced:
    """What every chat model knows of itself: its name, its prices, whether it streams.

    `streaming=False` (the benchmark's baseline) asks for the whole answer at once and
    yields it as one `Delta`: the guest waits for all of it.
    """

    def __init__(
        self, *, model: str, price_in: float, price_out: float, streaming: bool = True
    ) -> None:
        self.model = model
        self.price_in = price_in
        self.price_out = price_out
        self.streaming = streaming


class OpenAIChatModel(_Priced):
    """Any OpenAI-compatible endpoint: OpenAI, vLLM, Ollama, llama.cpp server, LiteLLM."""

    provider = "openai"

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        price_in: float = 0.0,
        price_out: float = 0.0,
        http_client: httpx2.AsyncClient | None = None,
        streaming: bool = True,
    ) -> None:
        from openai import AsyncOpenAI

        super().__init__(model=model, price_in=price_in, price_out=price_out, streaming=streaming)
        # Local servers (Ollama, llama.cpp) take any key; the SDK insists on one.
        self._client = AsyncOpenAI(
            api_key=api_key or "unused", base_url=base_url, http_client=http_client, max_retries=0
        )

    async def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, request_timeout: float
    ) -> AsyncIterator[StreamEvent]:
        """Stream with `include_usage`, so the last chunk carries the real token counts."""
        import openai

        prompt: Any = [{"role": m.role, "content": m.content} for m in messages]
        written: list[str] = []
        usage: Usage | None = None
        with _translated(self.provider, self.model, openai.APIError):
            if self.streaming:
                # Closed at once when the caller stops reading: that ends the upstream.
                async with aclosing(self._chunks(prompt, max_tokens, request_timeout)) as chunks:
                    async for piece in chunks:
                        if isinstance(piece, Usage):
                            usage = piece
                        elif piece:
                            written.append(piece)
                            yield Delta(piece)
            else:
                text, usage = await self._whole(prompt, max_tokens, request_timeout)
                if text:
                    written.append(text)
                    yield Delta(text)
        if not written:
            raise ProviderError(self.provider, self.model, "bad_response", "an empty answer")
        if usage is None:
            usage = _estimated(messages, "".join(written))
        yield Finished(usage)

    async def _chunks(
        self, prompt: Any, max_tokens: int, request_timeout: float
    ) -> AsyncGenerator[str | Usage | None, None]:
        """The streamed text as it comes, and the usage when the last chunk carries it."""
        chunks: Any = await self._client.chat.completions.create(
            model=self.model,
            messages=prompt,
            max_tokens=max_tokens,
            stream=True,
            stream_options={"include_usage": True},
            timeout=request_timeout,
        )
        # Leaving the block closes the HTTP response, so a guest who leaves mid-answer
        # ends the upstream generation at once rather than when it is collected.
        async with chunks:
            async for chunk in chunks:
                if chunk.usage is not None:
                    yield Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for choice in chunk.choices:
                    yield choice.delta.content if choice.delta else None

    async def _whole(
        self, prompt: Any, max_tokens: int, request_timeout: float
    ) -> tuple[str | None, Usage | None]:
        whole: Any = await self._client.chat.completions.create(
            model=self.model, messages=prompt, max_tokens=max_tokens, timeout=request_timeout
        )
        usage = whole.usage
        text = whole.choices[0].message.content if whole.choices else None
        return text, Usage(usage.prompt_tokens, usage.completion_tokens) if usage else None


class AnthropicChatModel(_Priced):
    """Anthropic's Messages API; the system prompt goes in its own parameter."""

    provider = "anthropic"

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        price_in: float = 0.0,
        price_out: float = 0.0,
        http_client: httpx2.AsyncClient | None = None,
        streaming: bool = True,
    ) -> None:
        from anthropic import AsyncAnthropic

        super().__init__(model=model, price_in=price_in, price_out=price_out, streaming=streaming)
        self._client = AsyncAnthropic(
            api_key=api_key, base_url=base_url, http_client=http_client, max_retries=0
        )

    async def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int, request_timeout: float
    ) -> AsyncIterator[StreamEvent]:
        """Stream text deltas, then the final message's usage."""
        import anthropic

        system = "\n\n".join(m.content for m in messages if m.role == "system")
        turns: Any = [
            {"role": m.role, "content": m.content} for m in messages if m.role != "system"
        ]
        with _translated(self.provider, self.model, anthropic.APIError):
            if not self.streaming:
                whole: Any = await self._client.messages.create(
                    model=self.model,
                    system=system,
                    messages=turns,
                    max_tokens=max_tokens,
                    timeout=request_timeout,
                )
                text = "".join(getattr(b, "text", "") for b in whole.content)
                if not text:
                    raise ProviderError(
                        self.provider, self.model, "bad_response", "an empty answer"
                    )
                yield Delta(text)
                yield Finished(Usage(whole.usage.input_tokens, whole.usage.output_tokens))
                return
            async with self._client.messages.stream(
                model=self.model,
                system=system,
                messages=turns,
                max_tokens=max_tokens,
                timeout=request_timeout,
            ) as stream:
                wrote = False
                async for text in stream.text_stream:
                    if text:
                        wrote = True
                        yield Delta(text)
                final = await stream.get_final_message()
            if not wrote:
                raise ProviderError(self.provider, self.model, "bad_response", "an empty answer")
        yield Finished(Usage(final.usage.input_tokens, final.usage.output_tokens))


def prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    """A local estimate of the prompt's tokens (each message's framing counted as 4)."""
    return sum(estimate_tokens(m.content) + 4 for m in messages)


def _estimated(messages: Sequence[ChatMessage], answer: str) -> Usage:
    return Usage(prompt_tokens(messages), estimate_tokens(answer), estimated=True)
