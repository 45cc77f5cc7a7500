"""Chat limits: requests per stay and per address, LLM calls per conversation, streams."""

from __future__ import annotations

import asyncio
import dataclasses

from pydantic import SecretStr

from posada.providers.registry import build_chat_models
from posada.runtime import Runtime
from tests.support.abuse import app_client, with_settings
from tests.support.helpers import StayFinder, log_in, serve_fake_llm

SPA = "How much is a relaxing massage at the spa?"


def _with_llm(runtime: Runtime, base_url: str) -> Runtime:
    settings = runtime.settings.model_copy(
        update={"llm_base_url": base_url, "llm_api_key": SecretStr("test")}
    )
    return dataclasses.replace(runtime, chat_models=build_chat_models(settings))


async def test_one_stay_over_its_rate_gets_429_while_another_is_answered(
    runtime: Runtime, current_stay: StayFinder
) -> None:
    async with app_client(runtime, chat_token_burst=3, chat_token_per_minute=0.1) as http:
        coral = await log_in(http, await current_stay("coral"))
        other = await log_in(http, await current_stay("caracola"))
        statuses = []
        for _ in range(5):
            response = await http.post("/api/guest/chat", json={"message": "wifi?"}, headers=coral)
            statuses.append(response.status_code)
        assert statuses == [200, 200, 200, 429, 429]
        assert int(response.headers["Retry-After"]) > 60
        assert "please try again in" in response.json()["detail"]
        stream = await http.post("/api/guest/chat/stream", json={"message": "wifi?"}, headers=coral)
        assert stream.status_code == 429, "the stream counts with the chat"
        assert (
            await http.post("/api/guest/chat", json={"message": "wifi?"}, headers=other)
        ).status_code == 200


async def test_one_address_over_its_rate_gets_429(
    runtime: Runtime, current_stay: StayFinder
) -> None:
    async with app_client(runtime, chat_address_burst=3, chat_address_per_minute=0.1) as http:
        guests = [await log_in(http, await current_stay(u)) for u in ("coral", "caracola")]
        statuses = [
            (
                await http.post("/api/guest/chat", json={"message": "wifi?"}, headers=guests[n % 2])
            ).status_code
            for n in range(4)
        ]
        assert statuses == [200, 200, 200, 429]


async def test_a_conversation_over_its_llm_cap_is_answered_without_an_llm(
    runtime: Runtime, current_stay: StayFinder, quick_llm: str
) -> None:
    rt = _with_llm(runtime, quick_llm)
    async with app_client(rt, chat_llm_per_conversation_hour=2) as http:
        auth = await log_in(http, await current_stay("coral"))
        first = (await http.post("/api/guest/chat", json={"message": SPA}, headers=auth)).json()
        layers = [first["layer"]]
        for _ in range(3):
            body = {"message": SPA, "conversation_id": first["conversation_id"]}
            response = await http.post("/api/guest/chat", json=body, headers=auth)
            assert response.status_code == 200
            layers.append(response.json()["layer"])
            assert response.json()["answer"]
        assert layers[:2] == ["llm", "llm"]
        assert "llm" not in layers[2:], layers
        # A new conversation has its own cap.
        fresh = await http.post("/api/guest/chat", json={"message": SPA}, headers=auth)
        assert fresh.json()["layer"] == "llm"


async def test_streams_past_the_bound_get_429(runtime: Runtime, current_stay: StayFinder) -> None:
    for slow in serve_fake_llm("--ttft-ms", "1500", "--tokens-per-s", "1000"):
        rt = with_settings(_with_llm(runtime, slow))
        async with app_client(rt, chat_streams_per_token=1) as http:
            auth = await log_in(http, await current_stay("coral"))
            other = await log_in(http, await current_stay("caracola"))

            async def stream(headers: dict[str, str]) -> int:
                body = {"message": SPA}
                response = await http.post("/api/guest/chat/stream", json=body, headers=headers)
                return response.status_code

            first = asyncio.ensure_future(stream(auth))
            await asyncio.sleep(0.5)  # the first is waiting for its first token
            assert await stream(auth) == 429
            assert await stream(other) == 200
            assert await first == 200
            assert await stream(auth) == 200, "the slot is given back when the stream ends"
