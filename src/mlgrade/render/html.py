"""A self-contained HTML page for one graded notebook (per-learner feedback files).

The same content as the console and Markdown reports: the score, one row per grader test, the
cells that raised, notices and the run details. No scripts, no external resources; every piece
of text is HTML-escaped, so a learner's output or message can never inject markup; grader-written
titles and feedback show their code spans as code (:mod:`mlgrade.render.inline`, raw HTML off).
"""

from __future__ import annotations

from html import escape

from mlgrade.render.common import could_not_run, errored_reason, fmt_points, question_groups, truncate
from mlgrade.render.inline import to_html
from mlgrade.results import GradeResult, SubmissionStatus, TestStatus

FEEDBACK_LIMIT = 2000  # characters per free-text field
_MARK = {TestStatus.PASSED: ("pass", "pass"), TestStatus.FAILED: ("fail", "fail"),
         TestStatus.ERROR: ("error", "error")}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:60rem;margin:2rem auto;
padding:0 1rem;color:#1f2328;line-height:1.45}
h1{font-size:1.4rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:1.6rem}
.nb{color:#59636e;font-family:ui-monospace,monospace;font-size:.9rem}
.score{font-size:1.2rem;font-weight:600;padding:.6rem 1rem;border-radius:6px;
background:#fff8c5;display:inline-block}.score.full{background:#dafbe1}
.errored{border-left:4px solid #8250df;padding:.4rem .8rem;background:#fbefff}
table{border-collapse:collapse;width:100%;margin-top:.6rem}
th,td{border:1px solid #d1d9e0;padding:.35rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;white-space:nowrap}
.pass{color:#1a7f37;font-weight:600}.fail{color:#d1242f;font-weight:600}
.error{color:#8250df;font-weight:600}code{font-family:ui-monospace,monospace}
.notes li{color:#9a6700}tr.q td{background:#f6f8fa}td.t{padding-left:1.4rem}
.todo{color:#9a6700;font-weight:600}footer{margin-top:2rem;color:#59636e;font-size:.85rem}
"""


def _text(value: str, limit: int = FEEDBACK_LIMIT) -> str:
    return escape(truncate(value, limit), quote=True)


def _md(value: str, limit: int = FEEDBACK_LIMIT) -> str:
    """Grader-written text (titles, feedback): inline code shown as code, the rest escaped."""
    return to_html(truncate(value, limit))


def _footer(result: GradeResult) -> str:
    """The run details every report ends with (a self-check runs no cells: no "0/0")."""
    ex = result.execution
    cells = f"{ex.cells_run}/{ex.cells_total} code cells run · " if ex.cells_total else ""
    return (f"{cells}{result.duration_s:.1f} s · seed {result.seed} · isolation "
            f"{_text(result.isolation, 40)} · mlgrade {_text(result.mlgrade_version, 40)} · "
            f"graders {_text(result.grader_version, 40)}")


def _tests_table(result: GradeResult) -> list[str]:
    """One table, rows grouped by question: a question row, then its tests (a question whose
    stubs all still raise NotImplementedError is one row: not started)."""
    rows = ["<table><thead><tr><th>Question / test</th><th>Points</th><th>Result</th>"
            "<th>Feedback</th></tr></thead><tbody>"]
    for group in question_groups(result):
        head = f"<strong>{_text(group.label, 40)}</strong> {_md(group.title, 300)}"
        points = f"{fmt_points(group.earned)}/{fmt_points(group.points)}"
        if group.not_started:
            rows.append(f'<tr class="q"><td>{head}</td><td class="num">{points}</td>'
                        '<td class="todo">not started</td><td></td></tr>')
            continue
        rows.append(f'<tr class="q"><td>{head}</td><td class="num">{points}</td><td></td><td></td></tr>')
        for t in group.tests:
            word, css = _MARK[t.status]
            rows.append(f'<tr><td class="t">{_md(t.title, 300)}</td><td class="num">'
                        f"{fmt_points(t.earned)}/{fmt_points(t.points)}</td>"
                        f'<td class="{css}">{word}</td><td>{_md(t.feedback)}</td></tr>')
    rows.append("</tbody></table>")
    return rows


def _cells_table(result: GradeResult) -> list[str]:
    rows = ["<table><thead><tr><th>Code cell</th><th>Error</th>"
            "<th>Line</th></tr></thead><tbody>"]
    for e in result.execution.errors:
        rows.append(f'<tr><td class="num">{e.cell}</td>'
                    f"<td>{_text(f'{e.ename}: {e.evalue}', 300)}</td>"
                    f"<td><code>{_text(e.line or '', 200)}</code></td></tr>")
    rows.append("</tbody></table>")
    return rows


def fragment(result: GradeResult, label: str) -> str:
    """The report as a piece of a notebook's output (``mlgrade.check()``): no page, a style
    scoped to its own class, ``label`` as its first line (it says what kind of check it is)."""
    scoped = "".join(f".mlgrade-report {sel}{{{body}}}" for part in _CSS.replace("\n", "").split("}")
                     if "{" in part and not part.strip().startswith(("body", "h1", "footer"))
                     for sels, body in [part.split("{", 1)]
                     for sel in sels.split(","))
    full = " full" if result.full_marks else ""
    parts = [f'<div class="mlgrade-report"><style>{scoped}</style>',
             f'<p class="nb">{_text(label, 400)}</p>',
             f'<p class="score{full}">{_text(result.title, 200)}: {fmt_points(result.score)} / '
             f"{fmt_points(result.max_score)}</p>"]
    if result.status is SubmissionStatus.ERRORED:
        parts.append(f'<p class="errored">{_text(errored_reason(result))}</p>')
    if result.tests:
        parts += _tests_table(result)
    if result.execution.errors:
        parts += _cells_table(result)
    parts += [f'<p class="nb">Note: {_text(n)}</p>' for n in result.notices]
    parts.append(f'<p class="nb run">{_footer(result)}</p>')
    parts.append("</div>")
    return "\n".join(parts) + "\n"


def render(result: GradeResult) -> str:
    """The whole page, as one string."""
    title = _text(result.title, 200)
    score_class = "score full" if result.full_marks else "score"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}: {fmt_points(result.score)} / {fmt_points(result.max_score)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{title}</h1>",
        f'<p class="nb">{_text(result.assignment, 100)} · {_text(result.notebook, 300)}</p>',
        f'<p class="{score_class}">Score: {fmt_points(result.score)} / '
        f"{fmt_points(result.max_score)}{' (full marks)' if result.full_marks else ''}</p>",
    ]
    if result.status is SubmissionStatus.ERRORED:
        headline = ("The notebook could not be graded" if could_not_run(result)
                    else "Grading did not finish cleanly")
        parts.append(f'<p class="errored"><strong>{headline}:</strong> '
                     f"{_text(errored_reason(result))}</p>")
    if result.tests:
        parts += ["<h2>Tests</h2>", *_tests_table(result)]
    elif result.status is SubmissionStatus.GRADED:
        parts.append("<p>This assignment has no graded tests.</p>")
    if result.execution.errors:
        parts += ["<h2>Cells that raised</h2>", *_cells_table(result)]
    if result.notices:
        parts.append('<ul class="notes">')
        parts += [f"<li>Note: {_text(n)}</li>" for n in result.notices]
        parts.append("</ul>")
    parts.append(f"<footer>{_footer(result)}</footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
