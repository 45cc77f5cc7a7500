"""Secrets an example environment leaves as placeholders must not reach production."""

from __future__ import annotations

from pydantic import SecretStr


def refuse_placeholders(**secrets: SecretStr | None) -> None:
    """Raise if a secret is still written `<like this>`, as docs/deploy's example has it."""
    for name, secret in secrets.items():
        value = secret.get_secret_value().strip() if secret is not None else ""
        if value.startswith("<") and value.endswith(">"):
            raise ValueError(f"POSADA_{name.upper()} is still the example's {value}: set your own")
