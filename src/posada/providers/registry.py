"""Chat models from settings: the small and the large tier, each only if configured."""

from __future__ import annotations

from typing import Literal

import httpx2

from posada.core.config import Settings
from posada.providers.llm import AnthropicChatModel, ChatModel, OpenAIChatModel

Tier = Literal["small", "large"]


def build_chat_models(
    settings: Settings, *, http_client: httpx2.AsyncClient | None = None
) -> dict[Tier, ChatModel]:
    """The configured tiers; an empty dict means the extractive responder answers alone."""
    models: dict[Tier, ChatModel] = {}
    tiers: tuple[Tier, Tier] = ("small", "large")
    for tier in tiers:
        own = settings.tier(tier)
        base_url = own.base_url or settings.llm_base_url
        key = own.api_key or settings.llm_api_key
        if base_url is None and key is None:
            continue
        kind = AnthropicChatModel if own.provider == "anthropic" else OpenAIChatModel
        models[tier] = kind(
            model=own.model,
            api_key=key.get_secret_value() if key is not None else None,
            base_url=base_url,
            price_in=own.price_in,
            price_out=own.price_out,
            http_client=http_client,
            streaming=settings.llm_streaming,
        )
    return models


def fallback_order(models: dict[Tier, ChatModel], tier: Tier) -> list[ChatModel]:
    """The asked tier first, then the other; the same endpoint and model only once."""
    ordered = [models[t] for t in (tier, "large" if tier == "small" else "small") if t in models]
    seen: set[tuple[str, str]] = set()
    unique = []
    for model in ordered:
        key = (model.provider, model.model)
        if key not in seen:
            seen.add(key)
            unique.append(model)
    return unique
