"""``--format gradescope``: ``results.json`` per Gradescope's autograder specification.

Top level: ``score``, ``max_score`` (when tests exist), ``execution_time`` (whole seconds),
``output`` (the learner-facing summary), ``visibility`` and ``stdout_visibility``; one entry in
``tests`` per grader test with ``name``, ``number`` (``q2.1``, ``q2.2``, ``q3.1``: counted
within its question; ``1``, ``2`` for tests of no question), ``score``, ``max_score``, ``status``
(Gradescope knows only ``passed``/``failed``: a broken grader is ``failed`` with a message that
says so), ``output`` and ``visibility``. A notebook that could not be graded gets score 0, an
empty ``tests`` list and the reason in ``output``.
"""

from __future__ import annotations

import json
from typing import Any

from mlgrade.render.common import could_not_run, errored_reason, fmt_points, truncate
from mlgrade.results import GradeResult, SubmissionStatus, TestStatus

OUTPUT_LIMIT = 4000  # characters per test output
SUMMARY_LIMIT = 20_000


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 4)


def _summary(result: GradeResult) -> str:
    lines = [f"{result.title}: {fmt_points(result.score)} / {fmt_points(result.max_score)} points."]
    if result.status is SubmissionStatus.ERRORED:
        headline = "Your notebook could not be graded" if could_not_run(result) else \
            "Grading did not finish cleanly"
        lines.append(f"{headline}: {errored_reason(result)}")
    for e in result.execution.errors:
        lines.append(truncate(f"Cell {e.cell} raised {e.ename}: {e.evalue}", 500))
    lines += [f"Note: {n}" for n in result.notices]
    lines.append(f"(mlgrade {result.mlgrade_version}, graders {result.grader_version}, "
                 f"seed {result.seed})")
    return truncate("\n".join(lines), SUMMARY_LIMIT)


def document(result: GradeResult) -> dict[str, Any]:
    """The results.json document as a dict."""
    tests = []
    within: dict[str | None, int] = {}  # tests numbered from 1 within each question
    for t in result.tests:
        number = within[t.question] = within.get(t.question, 0) + 1
        output = t.feedback or ("Passed." if t.status is TestStatus.PASSED else "No points.")
        tests.append({
            "name": truncate(t.title, 300),
            "number": f"{t.question}.{number}" if t.question else str(number),
            "score": _number(t.earned),
            "max_score": _number(t.points),
            "status": "passed" if t.status is TestStatus.PASSED else "failed",
            "output": truncate(output, OUTPUT_LIMIT),
            "visibility": "visible",
        })
    doc: dict[str, Any] = {"score": _number(result.score)}
    if tests:
        doc["max_score"] = _number(result.max_score)
    doc.update({
        "execution_time": max(0, round(result.duration_s)),
        "output": _summary(result),
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",  # the autograder's stdout may show grader internals
        "tests": tests,
    })
    return doc


def render(result: GradeResult) -> str:
    return json.dumps(document(result), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
