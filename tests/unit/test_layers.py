"""The packages of `src/posada` are floors: each imports only from the floors below it.

The order is written down in docs/architecture.md. Every import counts, at the top of a
module or inside a function, except those under `if TYPE_CHECKING:` (types only, never
run). No import may go up a floor, no two modules may import each other, even through
others, and posada never imports the benchmark (`posada_bench`), which stands on top of
it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

# Lowest first. A package may import its own modules and any package listed before it.
LAYERS = (
    "core",  # settings, errors, text and language, the request's figures
    "db",  # pool, counting connection, embedded server, migrations
    "providers",  # embedders and chat models behind small Protocols
    "tenants",
    "knowledge",  # documents, chunks, FAQ, retrieval, the knowledge version's notice
    "cache",  # exact, semantic and embedding caches, knowledge versions, the reuse guard
    "limits",  # token buckets and attempt throttles
    "guests",  # tokens, logins, conversations
    "staff",  # the hotel's staff: accounts, roles, sessions, their login throttle
    "observe",  # request window, Prometheus, usage ledger, audits
    "runtime",  # builds the parts
    "answers",  # the answering pipeline
    "demo",
    "api",  # the app, its dependencies, routes and the guest page
    "cli",
    "__main__",
)


def _type_checking_only(tree: ast.Module) -> set[int]:
    """The ids of nodes under `if TYPE_CHECKING:`."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            for inner in node.body:
                skipped.update(id(n) for n in ast.walk(inner))
    return skipped


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(root: Path, package: str = "posada") -> dict[str, set[str]]:
    """Module -> the modules of `root` (and posada_bench) it imports."""
    files = {module_name(p, root): p for p in (root / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text("utf-8"))
        skipped = _type_checking_only(tree)
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.add(sub if sub in files else base)
        graph[name] = {
            f for f in found if f in files or f.split(".")[0] in (package, "posada_bench")
        }
    return graph


def floor(module: str) -> str:
    """The package a module of posada belongs to ("posada.answers.pipeline": answers)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import against the order, and every package missing from it."""
    problems = []
    for module, targets in sorted(graph.items()):
        mine = floor(module)
        if mine and mine not in LAYERS:
            problems.append(f"{module}: package {mine!r} has no floor in LAYERS")
            continue
        for target in sorted(targets):
            if target.split(".")[0] == "posada_bench":
                problems.append(f"{module} imports the benchmark ({target})")
                continue
            theirs = floor(target)
            if not mine or not theirs or theirs == mine or theirs not in LAYERS:
                continue
            if LAYERS.index(theirs) > LAYERS.index(mine):
                problems.append(f"{module} ({mine}) imports {target} ({theirs}), a floor up")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                found.append(sorted(group))

    for node in sorted(graph):  # a few hundred modules: well within the recursion limit
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return imports(SRC)


def test_no_import_goes_up_a_floor(graph: dict[str, set[str]]) -> None:
    assert upward(graph) == []


def test_no_modules_import_each_other(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_every_floor_exists(graph: dict[str, set[str]]) -> None:
    """LAYERS names every package there is, and nothing else."""
    assert {floor(m) for m in graph} - {""} == set(LAYERS)


def test_the_checks_see_what_they_forbid(tmp_path: Path) -> None:
    """A tree with an upward import, a cycle, a function-level import, a TYPE_CHECKING
    one and a benchmark import: the first four are reported, the TYPE_CHECKING one not."""
    pkg = tmp_path / "posada"
    for folder in ("core", "db", "answers"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "text.py").write_text("def f():\n    from posada.db import pool\n")
    (pkg / "db" / "pool.py").write_text("from posada.core import text\n")
    (pkg / "db" / "migrate.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from posada.answers import x\n"
    )
    (pkg / "answers" / "x.py").write_text("import posada_bench.runner\n")
    graph = imports(tmp_path)
    problems = upward(graph)
    assert any("posada.core.text (core) imports posada.db.pool (db)" in p for p in problems)
    assert any("imports the benchmark" in p for p in problems)
    assert not any("posada.db.migrate" in p for p in problems)
    assert cycles(graph) == [["posada.core.text", "posada.db.pool"]]


def test_serving_loads_no_benchmark_code() -> None:
    """`posada serve`'s modules, and the command line, import nothing of posada_bench."""
    probe = (
        "import sys, posada.api.app, posada.cli, posada.cli.serve; "
        "print(sorted(m for m in sys.modules if m.startswith('posada_bench')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unit_tests_cannot_reach_the_database_or_the_model() -> None:
    """tests/unit/conftest.py refuses both, so a test that needs them must live elsewhere."""
    from posada.core.config import Settings
    from posada.providers.e5 import E5Engine
    from posada.runtime import Runtime

    with pytest.raises(AssertionError, match="tests/integration"):
        Runtime.open(Settings(_env_file=None))  # type: ignore[unused-coroutine]
    with pytest.raises(AssertionError, match="e5 model"):
        E5Engine().load()
