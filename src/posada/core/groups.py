"""Groups of settings read as one: each is a field of `Settings`, and its variables are
POSADA_<GROUP>_<FIELD> (the nested delimiter is the underscore, split once after the
group's name), so a group keeps the flat names operators set."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class TierSettings(BaseModel):
    """One LLM tier: `POSADA_LLM_SMALL_*` or `POSADA_LLM_LARGE_*` (`settings.llm_small`).

    An unset `base_url` or `api_key` falls back to POSADA_LLM_BASE_URL / POSADA_LLM_API_KEY.
    Prices are USD per million input / output tokens.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["openai", "anthropic"] = "openai"
    model: str
    base_url: str | None = None
    api_key: SecretStr | None = None
    price_in: float = Field(ge=0)
    price_out: float = Field(ge=0)


# Each tier's defaults, which a tier's variables refine one by one.
TIER_DEFAULTS: dict[str, dict[str, Any]] = {
    "llm_small": {"model": "gpt-4o-mini", "price_in": 0.15, "price_out": 0.60},
    "llm_large": {"model": "gpt-4o", "price_in": 2.50, "price_out": 10.0},
}


class StaffSettings(BaseModel):
    """The hotel staff's accounts: `POSADA_STAFF_*` (`settings.staff`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # A session cookie lasts this long (a shift and then some); logging out ends it.
    session_hours: float = Field(default=12, gt=0, le=24 * 30)
    # Login attempts per account (hotel and e-mail), from any address: at most burst +
    # per_hour * T in T hours; from the `free`-th on each waits the guest login's back-off.
    login_burst: int = Field(default=10, ge=1)
    login_per_hour: float = Field(default=10, gt=0)
    login_free: int = Field(default=5, ge=1)
    # Passwords shorter than this are refused when an account is made.
    password_min_length: int = Field(default=10, ge=8, le=128)
    # The body of an upload from the staff page (Markdown files or a zip; a reservations
    # CSV); every other request keeps POSADA_MAX_BODY_BYTES.
    upload_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
