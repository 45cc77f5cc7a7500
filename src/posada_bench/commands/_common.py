"""What `posada bench` and `posada scaletest` share: the results file, the real hotels
whose fresh rewordings they ask, and how a figure is shown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

JsonOption = Annotated[Path | None, typer.Option("--json", help="write the results here")]
CorpusOption = Annotated[Path, typer.Option(help="real hotels' documents, for fresh rewordings")]
RewordingsOption = Annotated[
    Path, typer.Option(help="labelled set over the corpus (its test half is asked)")
]
CORPUS = Path("../shared/corpus")
REWORDINGS = Path("bench/labels/real")


def real_sources(corpus: Path, rewordings: Path, *, console: Console) -> tuple[Path, Path] | None:
    """The corpus and its labels when both are there; else None, and the run says so."""
    if corpus.is_dir() and rewordings.is_dir():
        return corpus, rewordings
    console.print(
        f"[yellow]no fresh rewordings:[/yellow] {corpus} or {rewordings} is missing; "
        "only the workload's own wordings are asked"
    )
    return None


def write_results(path: Path | None, results: dict[str, Any]) -> None:
    """The results as JSON at `path` (its folder made), if one was given."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", "utf-8")


def cell(value: Any, pattern: str) -> str:
    """`value` in `pattern`, or a dash when there is none."""
    return "—" if value is None else pattern.format(value)
