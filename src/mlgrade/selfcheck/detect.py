"""Which assignment a notebook is: compare the names it defines with each starter's.

Used by ``mlgrade.check()`` when no assignment is named, and by ``mlgrade check`` to say
"this looks like month3" instead of grading one month's notebook against another's graders.
The names are read from the code's syntax tree (nothing is run); IPython magics and shell
lines are skipped, and a cell that does not parse simply contributes nothing.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from pathlib import Path

from mlgrade.assignments import Assignment

# below this share of a starter's names, a notebook is not that assignment's
MATCH = 0.5


def defined_names(sources: Iterable[str]) -> set[str]:
    """Top-level names bound by ``def``, ``class`` and assignments in ``sources`` (cells)."""
    names: set[str] = set()
    for source in sources:
        lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for sub in ast.walk(target):
                        if isinstance(sub, ast.Name):
                            names.add(sub.id)
    return {n for n in names if not n.startswith("_")}


def notebook_names(path: Path) -> set[str]:
    """The names a notebook file's code cells define (an unreadable file defines none)."""
    from mlgrade.notebook import read_notebook

    try:
        nb, _raw = read_notebook(path)  # the grading path's caps: size, depth, nbformat
    except Exception:  # noqa: BLE001 - reading errors are reported by the grading path itself
        return set()
    return defined_names(c.source for c in nb.cells if c.cell_type == "code")


@functools.lru_cache(maxsize=64)
def _starter_names(path: Path, mtime_ns: int) -> frozenset[str]:
    return frozenset(notebook_names(path))


def starter_names(assignment: Assignment) -> frozenset[str]:
    """The names the assignment's starter notebook defines: what its instructions ask for
    (none for a repository assignment: no notebook is recognised as one)."""
    if assignment.is_repository:
        return frozenset()
    try:
        stamp = assignment.starter.stat().st_mtime_ns
    except OSError:
        return frozenset()
    return _starter_names(assignment.starter, stamp)


def coverage(names: set[str] | frozenset[str], assignment: Assignment) -> float:
    """The share of the starter's names that ``names`` defines (0 when the starter has none)."""
    wanted = starter_names(assignment)
    return len(wanted & names) / len(wanted) if wanted else 0.0


def recognise(names: set[str] | frozenset[str], assignments: Iterable[Assignment]) -> Assignment | None:
    """The one assignment whose starter's names ``names`` covers best, if it covers at least
    half of them and no other assignment ties."""
    scored = sorted(((coverage(names, a), a.name, a) for a in assignments), key=lambda s: (-s[0], s[1]))
    if not scored or scored[0][0] < MATCH:
        return None
    if len(scored) > 1 and scored[1][0] == scored[0][0]:
        return None
    return scored[0][2]


def looks_like_another(names: set[str], chosen: Assignment,
                       assignments: Iterable[Assignment]) -> Assignment | None:
    """Another assignment this notebook matches clearly better than ``chosen``, if any."""
    if coverage(names, chosen) >= MATCH:
        return None
    best = recognise(names, assignments)
    if best is None or best.name == chosen.name:
        return None
    return best
