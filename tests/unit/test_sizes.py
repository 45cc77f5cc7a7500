"""Sizes the architecture promises (docs/architecture.md): no module of `src/posada` over
400 lines, the pipeline under 200, no function over 60. The benchmark package is free."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "posada"
MODULE_LINES, PIPELINE_LINES, FUNCTION_LINES = 400, 200, 60


def too_long(root: Path) -> list[str]:
    """Every module and function of `root` past its limit, as 'path: what (lines)'."""
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        limit = PIPELINE_LINES - 1 if path.name == "pipeline.py" else MODULE_LINES
        if lines > limit:
            found.append(f"{path.relative_to(root)}: module ({lines})")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > FUNCTION_LINES:
                    found.append(f"{path.relative_to(root)}: {node.name} ({length})")
    return found


def test_no_module_or_function_is_too_long() -> None:
    assert too_long(SRC) == []


def test_the_check_sees_a_long_function_and_a_long_pipeline(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(FUNCTION_LINES))
    (tmp_path / "pipeline.py").write_text("def f():\n" + body + "\n")
    assert too_long(tmp_path) == ["pipeline.py: f (61)"]
    (tmp_path / "pipeline.py").write_text("x = 1\n" * PIPELINE_LINES)
    assert too_long(tmp_path) == ["pipeline.py: module (200)"]
