"""``--format prairielearn``: PrairieLearn external-grader ``results.json``.

``score`` is the fraction earned in [0, 1]; ``gradable`` is false only when the notebook could
not be graded at all (PrairieLearn then does not count the attempt and shows ``message``);
``tests[]`` carry ``name``, ``description``, ``points``, ``max_points``, ``message`` and
``output``. The document is kept under PrairieLearn's 1 MB limit by capping every text field.
"""

from __future__ import annotations

import json
from typing import Any

from mlgrade.render.common import could_not_run, errored_reason, fmt_points, truncate
from mlgrade.results import GradeResult, SubmissionStatus, TestStatus

MESSAGE_LIMIT = 4000
OUTPUT_LIMIT = 20_000
SIZE_LIMIT = 1_000_000  # bytes, PrairieLearn's cap on results.json


def fraction(result: GradeResult) -> float:
    """Earned / possible, clamped to [0, 1]; a zero-point assignment scores 1 only at full marks."""
    if result.max_score <= 0:
        return 1.0 if result.full_marks else 0.0
    return min(1.0, max(0.0, round(result.score / result.max_score, 6)))


def _output(result: GradeResult) -> str:
    lines = [f"score {fmt_points(result.score)}/{fmt_points(result.max_score)}"]
    for e in result.execution.errors:
        lines.append(truncate(f"cell {e.cell} raised {e.ename}: {e.evalue}", 500))
    lines += [f"note: {n}" for n in result.notices]
    lines.append(f"mlgrade {result.mlgrade_version}, graders {result.grader_version}, "
                 f"seed {result.seed}")
    return truncate("\n".join(lines), OUTPUT_LIMIT)


def document(result: GradeResult) -> dict[str, Any]:
    unrunnable = could_not_run(result)
    if unrunnable:
        message = f"Your notebook could not be graded: {errored_reason(result)}"
    elif result.status is SubmissionStatus.ERRORED:
        message = f"Grading did not finish cleanly: {errored_reason(result)}"
    else:
        message = f"{fmt_points(result.score)} / {fmt_points(result.max_score)} points."
    tests = [{
        "name": truncate(t.title, 300),
        "description": t.id + (f" (question {t.question})" if t.question else ""),
        "points": t.earned,
        "max_points": t.points,
        "message": truncate(t.feedback or ("passed" if t.status is TestStatus.PASSED
                                           else "no points"), MESSAGE_LIMIT),
        "output": "",
    } for t in result.tests]
    return {
        "succeeded": not unrunnable,
        "gradable": not unrunnable,
        "score": 0.0 if unrunnable else fraction(result),
        "message": truncate(message, MESSAGE_LIMIT),
        "output": _output(result),
        "tests": tests,
    }


def render(result: GradeResult) -> str:
    doc = document(result)
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if len(text.encode("utf-8")) > SIZE_LIMIT:  # thousands of tests: shorten every message
        for test in doc["tests"]:
            test["message"] = truncate(test["message"], 200)
        doc["output"] = truncate(doc["output"], 2000)
        text = json.dumps(doc, ensure_ascii=False, allow_nan=False) + "\n"
    return text
