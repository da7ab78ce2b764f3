"""Hints that point at the real mistake: a grader test that fails because a learner name is
not defined, when the cell that defines it raised (a SyntaxError, an exception before the
``def``), says so with that cell's number and line instead of "did you run its cell?".

The grader side never sees the learner's cells; this runs after grading, on the notebook the
kernel ran (its sources are the learner's text, only searched) and the cell errors it recorded.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from nbformat import NotebookNode

from mlgrade.bridge.client import NOT_DEFINED
from mlgrade.results import CellError, Execution, TestStatus

if TYPE_CHECKING:  # the graders' runner imports pytest: not needed to rewrite a hint
    from mlgrade.grading.runner import GraderRun

# the bridge's feedback for a missing name (mlgrade.bridge.client)
_MISSING = re.compile(r"^`([A-Za-z_][\w.]*?)(?:\(\.\.\.\))?`" + re.escape(NOT_DEFINED) + "$")


def _defines(source: str, name: str) -> bool:
    """Whether a cell's source defines ``name`` (a def, a class or an assignment)."""
    escaped = re.escape(name)
    return re.search(rf"^\s*(?:async\s+def|def|class)\s+{escaped}\b|^\s*{escaped}\s*(?::[^=]*)?=(?!=)",
                     source, re.MULTILINE) is not None


def _where(err: CellError) -> str:
    line = f" at `{err.line[:120]}`" if err.line else ""
    return f"cell {err.cell} raised {err.ename}{line}"


def point_at_broken_cells(graders: GraderRun, nb: NotebookNode, execution: Execution) -> GraderRun:
    """``graders`` with each "`name` is not defined" hint replaced by the cell error that kept
    ``name`` from being defined, when one did."""
    if not execution.errors:
        return graders
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    by_cell = {err.cell: err for err in execution.errors}
    tests = []
    for test in graders.tests:
        found = _MISSING.match(test.feedback) if test.status is TestStatus.FAILED else None
        name = found.group(1).split(".")[0] if found else None
        cause = next((by_cell[n] for n in sorted(by_cell)
                      if name and 0 < n <= len(code) and _defines(code[n - 1], name)), None)
        if cause is not None:
            test = dataclasses.replace(test, feedback=(
                f"`{name}` is not defined because {_where(cause)}: fix that cell first "
                "(see the cell errors below)."))
        tests.append(test)
    return dataclasses.replace(graders, tests=tuple(tests))


__all__ = ["point_at_broken_cells"]
