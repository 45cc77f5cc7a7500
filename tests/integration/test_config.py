"""Settings: defaults for the embedded demo, refusals outside dev."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from posada.core.config import Settings


def test_prod_refuses_a_missing_or_short_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="POSADA_JWT_SECRET must be set"):
        Settings(_env_file=None, env="prod", data_dir=tmp_path)
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(
            _env_file=None,
            env="prod",
            jwt_secret=SecretStr("short"),
            database_url=SecretStr("postgresql://db/posada"),
        )


def test_prod_needs_a_database_url() -> None:
    with pytest.raises(ValidationError, match="POSADA_DATABASE_URL"):
        Settings(_env_file=None, env="prod", jwt_secret=SecretStr("x" * 40))


def test_dev_generates_a_secret_once_and_keeps_it(tmp_path: Path) -> None:
    first = Settings(_env_file=None, data_dir=tmp_path).signing_secret
    second = Settings(_env_file=None, data_dir=tmp_path).signing_secret
    assert first == second
    assert len(first) >= 32
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o777 == 0o600


def test_environment_variables_use_the_posada_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSADA_RETRIEVAL_K", "7")
    monkeypatch.setenv("POSADA_DATA_DIR", "/srv/posada")
    settings = Settings(_env_file=None)
    assert settings.retrieval_k == 7
    assert settings.data_dir == Path("/srv/posada")


def test_openai_embeddings_need_a_key() -> None:
    with pytest.raises(ValidationError, match="POSADA_OPENAI_API_KEY"):
        Settings(_env_file=None, embedding_provider="openai")


def test_an_llm_tier_is_a_group_read_from_its_flat_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """POSADA_LLM_SMALL_MODEL and the like fill `llm_small`; what is not set keeps the
    tier's own default (not the other tier's), from the environment, `.env` or code."""
    monkeypatch.setenv("POSADA_LLM_SMALL_MODEL", "tiny-model")
    monkeypatch.setenv("POSADA_LLM_LARGE_PRICE_OUT", "12.5")
    dotenv = tmp_path / ".env"
    dotenv.write_text("POSADA_LLM_LARGE_PROVIDER=anthropic\nPOSADA_LLM_LARGE_API_KEY=sk-x\n")
    settings = Settings(_env_file=dotenv)
    assert settings.tier("small").model == "tiny-model"
    assert settings.llm_small.price_in == 0.15  # the small tier's default
    large = settings.tier("large")
    assert (large.model, large.provider, large.price_in, large.price_out) == (
        "gpt-4o", "anthropic", 2.50, 12.5,
    )  # fmt: skip
    assert large.api_key is not None
    assert large.api_key.get_secret_value() == "sk-x"
    flat = Settings(_env_file=None, llm_large_model="big", llm_small_price_in=0.5)
    assert (flat.llm_large.model, flat.llm_small.price_in) == ("big", 0.5)
    assert Settings(_env_file=None, **flat.model_dump()).llm_large == flat.llm_large
    monkeypatch.setenv("POSADA_STAFF_LOGIN_BURST", "4")
    staff = Settings(_env_file=None, staff_session_hours=2).staff  # any group, flat or not
    assert (staff.session_hours, staff.login_burst, staff.login_free) == (2, 4, 5)


def test_a_misspelt_or_wrong_tier_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSADA_LLM_SMALL_PRICE_IN", "cheap")
    with pytest.raises(ValidationError, match=r"llm_small\.price_in"):
        Settings(_env_file=None)
    monkeypatch.delenv("POSADA_LLM_SMALL_PRICE_IN")
    monkeypatch.setenv("POSADA_LLM_LARGE_MODLE", "gpt-x")
    with pytest.raises(ValidationError, match=r"llm_large\.modle"):
        Settings(_env_file=None)


def test_the_prompt_context_switches_are_their_own_group(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).context.passages is None  # today's: as many as fit
    monkeypatch.setenv("POSADA_CONTEXT_PASSAGES", "3")
    monkeypatch.setenv("POSADA_CONTEXT_WINDOW", "2")
    monkeypatch.setenv("POSADA_PROMPT_BUDGET_TOKENS", "900")  # the flat name next to it
    settings = Settings(_env_file=None)
    assert (settings.context.passages, settings.context.window) == (3, 2)
    assert settings.prompt_budget_tokens == 900
    monkeypatch.setenv("POSADA_CONTEXT_WINDOW", "-1")
    with pytest.raises(ValidationError, match=r"context\.window"):
        Settings(_env_file=None)
