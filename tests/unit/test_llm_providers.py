"""Chat model providers through the real SDKs, with an injected HTTP transport."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx2
import pytest

from posada.providers.llm import (
    AnthropicChatModel,
    ChatMessage,
    ChatModel,
    Delta,
    Finished,
    OpenAIChatModel,
    ProviderError,
    StreamEvent,
    Usage,
    cost_usd,
)

PROMPT = [ChatMessage("system", "Eres el conserje."), ChatMessage("user", "¿Hay piscina?")]
Handler = Callable[[httpx2.Request], httpx2.Response]


def _client(handler: Handler) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.MockTransport(handler))


def _sse(events: list[tuple[str | None, object]]) -> bytes:
    lines = []
    for event, data in events:
        if event:
            lines.append(f"event: {event}")
        lines.append(f"data: {data if isinstance(data, str) else json.dumps(data)}\n")
    return "\n".join(lines).encode() + b"\n"


def _openai_chunk(text: str | None, usage: dict[str, int] | None = None) -> dict[str, object]:
    choices = [] if text is None else [{"index": 0, "delta": {"content": text}}]
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": choices,
        "usage": usage,
    }


async def _collect(model: ChatModel) -> list[StreamEvent]:
    return [event async for event in model.stream(PROMPT, max_tokens=50, request_timeout=5)]


async def test_openai_compatible_streams_text_then_usage() -> None:
    seen: list[dict[str, object]] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append({"url": str(request.url), **json.loads(request.content)})
        body = _sse(
            [
                (None, _openai_chunk("Sí, ")),
                (None, _openai_chunk("de 8:00 a 20:00.")),
                (
                    None,
                    _openai_chunk(
                        None, {"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40}
                    ),
                ),
                (None, "[DONE]"),
            ]
        )
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    model = OpenAIChatModel(
        model="small-1",
        base_url="http://llm.test/v1",
        price_in=1.0,
        price_out=2.0,
        http_client=_client(handle),
    )
    events = await _collect(model)
    assert events == [Delta("Sí, "), Delta("de 8:00 a 20:00."), Finished(Usage(31, 9))]
    assert seen[0]["url"] == "http://llm.test/v1/chat/completions"
    assert seen[0]["model"] == "small-1"
    assert seen[0]["stream"] is True
    assert seen[0]["stream_options"] == {"include_usage": True}
    assert seen[0]["messages"] == [
        {"role": "system", "content": "Eres el conserje."},
        {"role": "user", "content": "¿Hay piscina?"},
    ]
    assert cost_usd(model, Usage(31, 9)) == pytest.approx((31 * 1.0 + 9 * 2.0) / 1e6)


async def test_openai_compatible_without_usage_is_estimated() -> None:
    def handle(request: httpx2.Request) -> httpx2.Response:
        body = _sse([(None, _openai_chunk("Sí.")), (None, "[DONE]")])
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    events = await _collect(
        OpenAIChatModel(model="m", base_url="http://llm.test/v1", http_client=_client(handle))
    )
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.usage.estimated
    assert finished.usage.input_tokens > 0
    assert finished.usage.output_tokens == 1


@pytest.mark.parametrize(
    ("status", "cause"), [(429, "rate_limit"), (500, "server"), (503, "server"), (401, "refused")]
)
async def test_openai_compatible_errors_name_their_cause(status: int, cause: str) -> None:
    def handle(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, json={"error": {"message": "nope"}})

    model = OpenAIChatModel(model="m", base_url="http://llm.test/v1", http_client=_client(handle))
    with pytest.raises(ProviderError) as caught:
        await _collect(model)
    assert caught.value.cause == cause
    assert caught.value.provider == "openai"


async def test_openai_compatible_connection_failure_and_timeout() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    def slow(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("slow", request=request)

    for handler, cause in ((refuse, "connection"), (slow, "timeout")):
        model = OpenAIChatModel(
            model="m", base_url="http://llm.test/v1", http_client=_client(handler)
        )
        with pytest.raises(ProviderError) as caught:
            await _collect(model)
        assert caught.value.cause == cause


def _anthropic_stream(texts: list[str]) -> bytes:
    events: list[tuple[str | None, object]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-x",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 27, "output_tokens": 1},
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    events += [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
        )
        for t in texts
    ]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 7},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return _sse(events)


async def test_anthropic_streams_text_then_usage_with_system_apart() -> None:
    seen: list[dict[str, object]] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append(
            {
                "url": str(request.url),
                "key": request.headers.get("authorization"),
                **json.loads(request.content),
            }
        )
        return httpx2.Response(
            200,
            content=_anthropic_stream(["Yes, ", "until 20:00."]),
            headers={"content-type": "text/event-stream"},
        )

    model = AnthropicChatModel(
        model="claude-x",
        api_key="sk-ant-test",
        base_url="http://anthropic.test",
        http_client=_client(handle),
    )
    events = await _collect(model)
    assert events == [Delta("Yes, "), Delta("until 20:00."), Finished(Usage(27, 7))]
    assert seen[0]["url"] == "http://anthropic.test/v1/messages"
    assert seen[0]["key"] == "Bearer sk-ant-test"
    assert seen[0]["system"] == "Eres el conserje."
    assert seen[0]["messages"] == [{"role": "user", "content": "¿Hay piscina?"}]


@pytest.mark.parametrize(("status", "cause"), [(429, "rate_limit"), (529, "server")])
async def test_anthropic_errors_name_their_cause(status: int, cause: str) -> None:
    def handle(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            status, json={"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
        )

    model = AnthropicChatModel(
        model="claude-x", api_key="k", base_url="http://anthropic.test", http_client=_client(handle)
    )
    with pytest.raises(ProviderError) as caught:
        await _collect(model)
    assert caught.value.cause == cause
    assert caught.value.provider == "anthropic"


@pytest.mark.parametrize(
    "body",
    [b"data: {not json\n\n", b'data: {"choices": [{"delta": 5}]}\n\n', b"<html>oops</html>"],
)
async def test_garbage_from_the_upstream_is_a_provider_error(body: bytes) -> None:
    def handle(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    model = OpenAIChatModel(model="m", base_url="http://llm.test/v1", http_client=_client(handle))
    with pytest.raises(ProviderError) as caught:
        await _collect(model)
    assert caught.value.cause == "bad_response"
