"""The human report: a table of grader tests, the total, the cells that raised, the time."""

from __future__ import annotations

import io

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mlgrade.render.common import clean, fmt_points
from mlgrade.results import GradeResult, SubmissionStatus, TestStatus

_STYLE = {TestStatus.PASSED: "green", TestStatus.FAILED: "red", TestStatus.ERROR: "magenta"}
_MARK = {TestStatus.PASSED: "pass", TestStatus.FAILED: "fail", TestStatus.ERROR: "error"}


def build(result: GradeResult) -> Group:
    parts: list[object] = []
    # every string that can come from a learner is cleaned (no terminal escapes or control
    # characters) and escaped (no rich markup)
    title = f"{escape(clean(result.title))}  [dim]({escape(clean(result.notebook))})[/dim]"
    table = Table(title=title, title_justify="left", expand=False, show_lines=False)
    table.add_column("test", overflow="fold")
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("feedback", overflow="fold", max_width=70)
    for test in result.tests:
        table.add_row(
            escape(clean(test.title)),
            f"{fmt_points(test.earned)}/{fmt_points(test.points)}",
            Text(_MARK[test.status], style=_STYLE[test.status]),
            escape(clean(test.feedback)),
        )
    parts.append(table)
    if result.execution.errors:
        cells = Table(title="Cells that raised", title_justify="left")
        cells.add_column("cell", justify="right")
        cells.add_column("error", overflow="fold")
        cells.add_column("line", overflow="fold", max_width=50)
        for err in result.execution.errors:
            cells.add_row(str(err.cell), escape(clean(f"{err.ename}: {err.evalue}")[:300]),
                          escape(clean(err.line or "")))
        parts.append(cells)
    for note in result.notices:
        parts.append(Text(f"note: {clean(note)}", style="yellow"))
    if result.status is SubmissionStatus.ERRORED:
        parts.append(Text(f"grading errored: {clean(result.reason or '')}", style="bold magenta"))
    style = "green" if result.full_marks else "yellow"
    summary = (f"[bold]Score: {fmt_points(result.score)} / {fmt_points(result.max_score)}[/bold]"
               f"   run time {result.duration_s:.1f} s   seed {result.seed}   "
               f"isolation {result.isolation}")
    parts.append(Panel(summary, style=style, expand=False))
    return Group(*parts)  # type: ignore[arg-type]


def render_text(result: GradeResult, width: int = 110, color: bool = False) -> str:
    """Plain text of the report (used for files and tests)."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system="auto" if color else None,
                      force_terminal=color, no_color=not color)
    console.print(build(result))
    return buf.getvalue()
