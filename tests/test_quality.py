"""Lint and types are part of the test command, so CI keeps them green (STYLE.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (it comes with the dev extra)")
    return found


def test_ruff_is_clean() -> None:
    out = subprocess.run([_tool("ruff"), "check", "src", "tests", "benchmarks", "graders",
                          "examples"],
                         cwd=REPO, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout[-3000:]


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    out = subprocess.run([_tool("mypy")], cwd=REPO, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout[-3000:]


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The mlgrade modules ``path`` imports, at load time or lazily inside functions (imports
    under ``if TYPE_CHECKING:`` are for annotations only and do not count)."""
    import ast

    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                visit_list(child.orelse)
                continue
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for alias in child.names:
                    name = f"{child.module}.{alias.name}"
                    found.add(name if name in modules else child.module)
            elif isinstance(child, ast.Import):
                found.update(a.name for a in child.names)
            visit(child)

    def visit_list(nodes: list[ast.stmt]) -> None:
        for n in nodes:
            visit(ast.Module(body=[n], type_ignores=[]))

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in modules}


def test_modules_depend_downward_only() -> None:
    """No import cycle between mlgrade's modules (the brief's smells: sandbox -> config ->
    assignments -> sandbox, bridge.client <-> grading.files). A package's ``__init__``
    re-exporting its own submodules, which import from it, is the one pattern allowed."""
    src = REPO / "src"
    paths = {".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (src / "mlgrade").rglob("*.py")}
    graph = {name: _imports(path, set(paths)) - {name} for name, path in paths.items()}
    for name in graph:  # importing mlgrade.a.b runs mlgrade.a's __init__ first
        parent = name.rsplit(".", 1)[0]
        if parent not in (name, "mlgrade") and parent in graph:
            graph[name].add(parent)

    def reaches(start: str, goal: str) -> list[str] | None:
        seen, todo = {start}, [[start]]
        while todo:
            trail = todo.pop()
            for nxt in graph[trail[-1]]:
                if nxt == goal:
                    return [*trail, nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append([*trail, nxt])
        return None

    cycles = []
    for name in graph:
        trail = reaches(name, name)
        if trail and not all(m == trail[0] or m.startswith(trail[0] + ".") or
                             trail[0].startswith(m + ".") or m.rsplit(".", 1)[0] ==
                             trail[0].rsplit(".", 1)[0] for m in trail):
            cycles.append(" -> ".join(trail))
    assert cycles == []
