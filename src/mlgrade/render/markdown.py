"""``--format markdown``: a GitHub-flavoured Markdown report (job summaries, gradebooks).

The output is plain GFM: a heading, the score line, one table row per grader test, the cells
that raised, and notices. Table cells are escaped so a learner's message can never break the
table, and every free-text field is truncated with a visible marker. Grader-written titles and
feedback keep their code spans (text in backticks) as code; everything else is escaped, so a
learner's value is always shown as written (:mod:`mlgrade.render.inline`).
"""

from __future__ import annotations

from mlgrade.render.common import could_not_run, errored_reason, fmt_points, question_groups, truncate
from mlgrade.render.inline import escape_markdown, to_markdown
from mlgrade.results import GradeResult, SubmissionStatus, TestStatus

FEEDBACK_LIMIT = 500  # characters per table cell
_ICON = {TestStatus.PASSED: "✅ pass", TestStatus.FAILED: "❌ fail", TestStatus.ERROR: "⚠️ error"}


def cell(text: str, limit: int = FEEDBACK_LIMIT) -> str:
    """Make ``text`` safe inside one GFM table cell: one line, pipes and markup escaped."""
    return escape_markdown(truncate(" ".join(text.split()), limit))


def md_cell(text: str, limit: int = FEEDBACK_LIMIT) -> str:
    """Grader-written text (titles, feedback) in one table cell: code spans kept, the rest
    escaped."""
    return to_markdown(truncate(" ".join(text.split()), limit))


def render(result: GradeResult) -> str:
    """The Markdown report for one graded notebook, ending with a newline."""
    lines = [f"## {cell(result.title, 200)} ({cell(result.assignment, 100)})", ""]
    lines.append(f"**Score: {fmt_points(result.score)} / {fmt_points(result.max_score)}**"
                 + ("  (full marks)" if result.full_marks else ""))
    lines.append("")
    if result.status is SubmissionStatus.ERRORED:
        headline = ("The notebook could not be graded" if could_not_run(result)
                    else "Grading did not finish cleanly")
        lines += [f"> **{headline}:** {cell(errored_reason(result))}", ""]
    if result.tests:
        lines += ["| Question | Test | Points | Result | Feedback |", "| --- | --- | ---: | --- | --- |"]
        for g in question_groups(result):
            label = f"**{cell(g.label, 40)}** {md_cell(g.title, 200)}"
            if g.not_started:  # one row, not one stub hint per test
                lines.append(f"| {label} | | {fmt_points(g.earned)}/{fmt_points(g.points)} "
                             "| 💤 not started | |")
                continue
            for t in g.tests:
                lines.append(f"| {label} | {md_cell(t.title, 200)} | {fmt_points(t.earned)}/"
                             f"{fmt_points(t.points)} | {_ICON[t.status]} | {md_cell(t.feedback)} |")
        lines.append("")
    elif result.status is SubmissionStatus.GRADED:
        lines += ["This assignment has no graded tests.", ""]
    if result.execution.errors:
        lines += ["### Cells that raised", "", "| Code cell | Error | Line |", "| ---: | --- | --- |"]
        for e in result.execution.errors:
            error = cell(f"{e.ename}: {e.evalue}", 300)
            lines.append(f"| {e.cell} | {error} | {cell(e.line or '', 200)} |")
        lines.append("")
    for note in result.notices:
        lines.append(f"- Note: {cell(note)}")
    if result.notices:
        lines.append("")
    ex = result.execution
    lines.append(f"<sub>{ex.cells_run}/{ex.cells_total} code cells run · {result.duration_s:.1f} s · "
                 f"seed {result.seed} · isolation {cell(result.isolation, 40)} · "
                 f"mlgrade {cell(result.mlgrade_version, 40)} · "
                 f"graders {cell(result.grader_version, 40)}</sub>")
    return "\n".join(lines) + "\n"
