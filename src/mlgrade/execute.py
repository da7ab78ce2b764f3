"""Execute stage: run the learner's cells in order, keep going after failures.

A cell that raises is recorded and the next cell runs, so independent questions still earn
points. A cell that runs past its time is interrupted; if the kernel ignores the interrupt or
dies (``os._exit``, a crash, out of memory), a fresh kernel is started and the cells that
had completed are replayed silently, then execution goes on after the offending cell.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable

from nbformat import NotebookNode

from mlgrade.config import Settings
from mlgrade.kernel import KernelSession
from mlgrade.results import CellError, Execution

MAX_RESTARTS = 2
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ARROW = re.compile(r"^-*>\s*(\d+)\s(.*)$")


def _strip(text: str) -> str:
    return _ANSI.sub("", text)


def offending_line(cell: NotebookNode, traceback: list[str], ename: str) -> str | None:
    """The source line that raised: IPython marks it with ``---->``; of the frames that belong
    to notebook cells, the innermost (an error inside a learner function defined in another
    cell shows that function's line, not the calling one). A SyntaxError shows the line
    itself."""
    lines = [_strip(part) for chunk in traceback for part in chunk.splitlines()]
    if ename in ("SyntaxError", "IndentationError", "TabError"):
        for i, line in enumerate(lines):
            head = line.strip()
            if (head.startswith(("File ", "Cell ")) and ", line " in head and i + 1 < len(lines)
                    and lines[i + 1].strip()):
                return lines[i + 1].strip()
    innermost = _innermost_cell_line(lines)
    if innermost is not None:
        return innermost
    source = cell.source.splitlines()
    for line in lines:
        match = _ARROW.match(line.strip())
        if match:
            number = int(match.group(1))
            if 1 <= number <= len(source):
                return source[number - 1].strip()
            return match.group(2).strip()
    return None


def _innermost_cell_line(lines: list[str]) -> str | None:
    """The ``---->`` line of the innermost traceback frame that belongs to a notebook cell."""
    found, in_cell = None, False
    for raw in lines:
        line = raw.strip()
        if line.startswith(("Cell In[", "Input In [", "<ipython-input-")):
            in_cell = True
        elif line.startswith("File "):
            in_cell = False
        elif in_cell and (match := _ARROW.match(line)):
            found = match.group(2).strip()[:200] or found
    return found


def cell_error(number: int, cell: NotebookNode) -> CellError | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            ename = str(output.get("ename", "Error"))
            evalue = _strip(str(output.get("evalue", "")))[:500]
            return CellError(number, ename, evalue, offending_line(cell, output.get("traceback", []), ename))
    return None


def running_line(outputs: list[NotebookNode]) -> str | None:
    """The learner's line that was running when an interrupt stopped a cell: the ``---->``
    line of the innermost frame that belongs to a notebook cell (not a library's)."""
    for output in outputs:
        if output.get("output_type") != "error":
            continue
        return _innermost_cell_line([_strip(part) for chunk in output.get("traceback", [])
                                     for part in chunk.splitlines()])
    return None


# told, as each code cell starts: its number, how many there are, its first line, its limit
CellObserver = Callable[[int, int, str, float], None]


def run_notebook(session: KernelSession, nb: NotebookNode, settings: Settings,
                 on_cell: CellObserver | None = None) -> Execution:
    """Run every code cell of ``nb`` (in place: outputs land in the in-memory copy).

    Cells are numbered as the learner sees them: the n-th code cell, from 1 (markdown cells
    do not count), in every error and progress report."""
    start = time.perf_counter()
    deadline = start + settings.notebook_timeout
    errors: list[CellError] = []
    completed: list[NotebookNode] = []
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    cells = [(n, i, c) for n, (i, c) in enumerate(code, start=1)]
    run = restarts = 0
    timed_out = False
    for number, index, cell in cells:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            timed_out = True
            errors.append(CellError(number, "NotebookTimeout",
                                    f"not run: the whole notebook ran past its {settings.notebook_timeout:g} s limit"))
            break
        if not cell.source.strip():
            continue
        limit = min(settings.cell_timeout, remaining)
        if on_cell is not None:
            on_cell(number, len(cells), cell.source.strip().splitlines()[0][:200], limit)
        outcome = session.run(cell, index, limit)
        run += 1
        if outcome.status == "ok":
            completed.append(cell)
        elif outcome.status == "error":
            completed.append(cell)
            found = cell_error(number, cell)
            if found:
                errors.append(found)
        elif outcome.status == "timeout":
            whole = limit < settings.cell_timeout
            errors.append(CellError(
                number, "Timeout",
                f"cell ran longer than {limit:.0f} s and was stopped"
                + (" (the whole-notebook limit)" if whole else "")
                + "; look for an infinite loop or very slow code",
                running_line(outcome.outputs) or cell.source.strip().splitlines()[0][:200]))
        else:
            errors.append(CellError(number, "KernelDied",
                                    "the kernel died while running this cell (os._exit, a crash, or too much memory)",
                                    cell.source.strip().splitlines()[0][:200]))
        if not session.alive:
            if restarts >= MAX_RESTARTS or deadline - time.perf_counter() <= 0:
                break
            restarts += 1
            session.restart()
            for done in completed:  # replay quietly on a copy: keep the recorded outputs
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                replay = session.run(copy.deepcopy(done), -1, min(settings.cell_timeout, left))
                if replay.status in ("timeout", "dead"):
                    break
    return Execution(
        cells_total=len(cells),
        cells_run=run,
        errors=tuple(errors),
        timed_out=timed_out,
        kernel_restarts=restarts,
        output_truncated=session.output_truncated,
        duration_s=round(time.perf_counter() - start, 3),
    )
