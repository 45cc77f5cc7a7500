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
