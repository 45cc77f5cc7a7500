"""Groups of settings read as one: each is a field of `Settings`, and its variables are
POSADA_<GROUP>_<FIELD> (the nested delimiter is the underscore, split once after the
group's name), so a group keeps the flat names operators set."""

from __future__ import annotations

import socket
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


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


class MetricsSettings(BaseModel):
    """The persisted figures (posada.observe.rollup): `POSADA_METRICS_*` (`settings.metrics`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Off: requests are still measured (window, Prometheus), nothing is written.
    enabled: bool = True
    # Every worker of one replica adds into the same rows; replicas stay apart.
    replica: str = Field(default_factory=socket.gethostname, min_length=1, max_length=200)
    # Each process writes its minutes this often, one statement per table.
    flush_s: float = Field(default=10, gt=0, le=3600)
    # Rows waiting to be written (the database away) at most; past it the oldest go.
    max_rows: int = Field(default=50_000, ge=100)
    # Minutes older than this become hours, hours days, and days are deleted.
    minute_hours: float = Field(default=48, gt=0)
    hour_days: float = Field(default=35, gt=0)
    day_days: float = Field(default=400, gt=0)
    # How often one replica (an advisory lock) rolls up and deletes.
    rollup_s: float = Field(default=300, gt=0, le=86_400)

    @model_validator(mode="after")
    def _grains_in_order(self) -> MetricsSettings:
        if self.minute_hours > self.hour_days * 24 or self.hour_days > self.day_days:
            raise ValueError(
                "POSADA_METRICS_MINUTE_HOURS <= 24 * POSADA_METRICS_HOUR_DAYS and "
                "POSADA_METRICS_HOUR_DAYS <= POSADA_METRICS_DAY_DAYS"
            )
        return self


class BudgetSettings(BaseModel):
    """Monthly AI budgets (posada.tenants.budgets): `POSADA_BUDGET_*` (`settings.budget`).

    A hotel's own budget (set on the staff page, tenants.settings "budget") wins over
    these defaults; unset `monthly_usd` and no hotel budget means no budget.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # USD a month, LLM and embedding spend together.
    monthly_usd: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    # Once the month's spend reaches the budget: keep going, large tier off, or LLM off.
    action: Literal["continue", "small_only", "no_llm"] = "continue"
    # The projected month over the budget at which the log warns (and the alert fires).
    warn_ratio: float = Field(default=0.8, gt=0, le=10, allow_inf_nan=False)
    # Each process reads a hotel's spend at most this often (the lag an action may take).
    refresh_s: float = Field(default=60, gt=0, le=3600)


class PromptSettings(BaseModel):
    """What an LLM is sent of the passages: `POSADA_CONTEXT_*` (`settings.context`; not
    `prompt`, whose prefix POSADA_PROMPT_BUDGET_TOKENS already has).

    Measured by bench/prompt_size.py on the real corpus's labels: every smaller context
    held the fact less often than today's (five whole passages), so the defaults are
    today's; the switches trade the fact's presence for tokens (docs/costs.md).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # At most this many relevant passages (the token budget may take fewer); unset, as
    # many as the budget takes of the POSADA_RETRIEVAL_K looked up.
    passages: int | None = Field(default=None, ge=1, le=50)
    # Each passage whole (0), or only its best-matching sentence and this many either side.
    window: int = Field(default=0, ge=0, le=20)
