"""The human report, 80 columns wide: rows grouped by question, the cells that raised (with
the line that raised or was running when stopped), notes, and the score.

A fully passed question is one line, and so is a question whose stubs all still raise
``NotImplementedError`` ("not started"); other questions list their tests, each failed one
with its hint underneath.
"""

from __future__ import annotations

import io

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from mlgrade.render.common import clean, fmt_points, question_groups, truncate
from mlgrade.results import GradeResult, SubmissionStatus, TestStatus

WIDTH = 80
FEEDBACK_LIMIT = 400  # characters of one hint; the full text is in the machine formats
_STYLE = {TestStatus.PASSED: "green", TestStatus.FAILED: "red", TestStatus.ERROR: "magenta"}
_MARK = {TestStatus.PASSED: "pass", TestStatus.FAILED: "fail", TestStatus.ERROR: "error"}


def _grid() -> Table:
    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(no_wrap=True, min_width=3)  # question id
    grid.add_column(no_wrap=True, min_width=5)  # result
    grid.add_column(ratio=1, overflow="fold")  # title / hint
    grid.add_column(justify="right", no_wrap=True)  # points
    return grid


def _line(text: str, limit: int = FEEDBACK_LIMIT) -> str:
    """Learner text on one line (wrapping is the table's job), cleaned and capped."""
    return truncate(" ".join(clean(text).split()), limit)


def _points(earned: float, possible: float) -> str:
    return f"{fmt_points(earned)}/{fmt_points(possible)}"


def _tests(result: GradeResult) -> Table:
    grid = _grid()
    for group in question_groups(result):
        label = Text(group.label, style="bold")
        title = _line(group.title, 200)
        if not title and len(group.tests) == 1:
            title = _line(group.tests[0].title, 200)
        if group.not_started:
            grid.add_row(label, Text("todo", style="yellow"), Text(f"{title}: not started"),
                         _points(group.earned, group.points))
            continue
        if group.passed and group.id is not None:
            grid.add_row(label, Text("pass", style="green"), Text(title),
                         _points(group.earned, group.points))
            continue
        grid.add_row(label, "", Text(title, style="bold"), _points(group.earned, group.points))
        for test in group.tests:
            grid.add_row("", Text(_MARK[test.status], style=_STYLE[test.status]),
                         Text(_line(test.title, 200)), _points(test.earned, test.points))
            if test.status is not TestStatus.PASSED and test.feedback:
                grid.add_row("", "", Text(_line(test.feedback), style="dim"), "")
    return grid


def _cells(result: GradeResult) -> Table:
    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(no_wrap=True, justify="right")
    grid.add_column(ratio=1, overflow="fold")
    for err in result.execution.errors:
        grid.add_row(f"cell {err.cell}", Text(_line(f"{err.ename}: {err.evalue}", 300)))
        if err.line:
            where = "running" if err.ename in ("Timeout", "KernelDied") else "line"
            grid.add_row("", Text(f"{where}: {_line(err.line, 200)}", style="dim"))
    return grid


def build(result: GradeResult) -> Group:
    """The report as rich renderables (every learner string is cleaned; rich markup is never
    parsed from it: only ``Text`` objects carry it)."""
    parts: list[object] = [Text.assemble((_line(result.title, 200), "bold"), "  ",
                                         (_line(result.notebook, 200), "dim")), Text("")]
    if result.tests:
        parts.append(_tests(result))
    elif result.status is SubmissionStatus.GRADED:
        parts.append(Text("This assignment has no graded tests."))
    if result.execution.errors:
        parts += [Text(""), Text("Cells that raised (code cells, numbered from 1)", style="bold"),
                  _cells(result)]
    if result.notices:
        parts.append(Text(""))
    for note in result.notices:
        parts.append(Text(f"note: {_line(note)}", style="yellow"))
    if result.status is SubmissionStatus.ERRORED:
        parts.append(Text(f"grading errored: {_line(result.reason or '')}", style="bold magenta"))
    ex = result.execution
    style = "bold green" if result.full_marks else "bold yellow"
    parts += [
        Text(""),
        Text(f"Score: {fmt_points(result.score)} / {fmt_points(result.max_score)}", style=style),
        # a self-check runs no cells (it grades the kernel as it is): no "0/0 cells run"
        Text((f"{ex.cells_run}/{ex.cells_total} code cells run · " if ex.cells_total else "")
             + f"{result.duration_s:.1f} s · seed {result.seed} · isolation {clean(result.isolation)}",
             style="dim"),
    ]
    return Group(*parts)  # type: ignore[arg-type]


def render_text(result: GradeResult, width: int = WIDTH, color: bool = False) -> str:
    """Plain text of the report (files, tests, the notebook's text/plain)."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system="auto" if color else None,
                      force_terminal=color, no_color=not color, highlight=False)
    console.print(build(result))
    # expand=True pads every row to the full width: files and goldens get no trailing blanks
    return "\n".join(line.rstrip() for line in buf.getvalue().split("\n"))
