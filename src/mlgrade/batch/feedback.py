"""Feedback stage: one report per learner, rebuilt from the result JSON in the gradebook, so
it says exactly what the learner's own ``mlgrade check`` says (Markdown and HTML)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlgrade._compat import StrEnum
from mlgrade.batch.gradebook import Gradebook
from mlgrade.batch.marks import Mark, marks
from mlgrade.errors import UsageError
from mlgrade.fsutil import write_text_atomic
from mlgrade.render.common import fmt_points
from mlgrade.results import (
    CellError,
    Execution,
    GradeResult,
    QuestionInfo,
    SubmissionStatus,
    TestResult,
    TestStatus,
)

SEED_REDACTED = "seed (secret, kept by your lead)"


class FeedbackFormat(StrEnum):
    MARKDOWN = "markdown"
    HTML = "html"

    @property
    def suffix(self) -> str:
        return ".md" if self is FeedbackFormat.MARKDOWN else ".html"


def result_from_dict(data: dict[str, Any]) -> GradeResult:
    """The inverse of ``GradeResult.to_dict()`` (derived keys are ignored)."""
    ex = data["execution"]
    execution = Execution(
        cells_total=int(ex["cells_total"]), cells_run=int(ex["cells_run"]),
        errors=tuple(CellError(int(e["cell"]), e["ename"], e["evalue"], e.get("line"))
                     for e in ex.get("errors", ())),
        timed_out=bool(ex.get("timed_out", False)),
        kernel_restarts=int(ex.get("kernel_restarts", 0)),
        output_truncated=bool(ex.get("output_truncated", False)),
        duration_s=float(ex.get("duration_s", 0.0)))
    tests = tuple(TestResult(id=t["id"], title=t["title"], question=t.get("question"),
                             points=float(t["points"]), earned=float(t["earned"]),
                             status=TestStatus(t["status"]), feedback=t.get("feedback", ""),
                             duration_s=float(t.get("duration_s", 0.0)))
                  for t in data.get("tests", ()))
    return GradeResult(
        assignment=data["assignment"], title=data["title"], notebook=data["notebook"],
        seed=int(data["seed"]), status=SubmissionStatus(data["status"]), tests=tests,
        execution=execution, duration_s=float(data["duration_s"]), isolation=data["isolation"],
        mlgrade_version=data["mlgrade_version"], grader_version=data["grader_version"],
        reason=data.get("reason"), notices=tuple(data.get("notices", ())),
        questions=tuple(QuestionInfo(str(q["id"]), str(q["title"]))
                        for q in data.get("questions", ())),
        device=str(data.get("device", "none")))


def render(result: GradeResult, fmt: FeedbackFormat) -> str:
    if fmt is FeedbackFormat.MARKDOWN:
        from mlgrade.render import markdown

        return markdown.render(result)
    from mlgrade.render import html

    return html.render(result)


@dataclass(frozen=True)
class Written:
    learner: str
    paths: tuple[Path, ...]


def with_mark(result: GradeResult, mark: Mark) -> GradeResult:
    """The learner's result with the lead's adjustments and lateness written in: an adjusted
    test shows the points that count and why; a total adjustment, a late submission and a
    penalty are notices. Unadjusted, on-time work is returned unchanged (the same report as
    the learner's own ``mlgrade check``)."""
    notes: list[str] = []
    by_test = {a.test_id: a for a in mark.adjustments if a.test_id is not None}
    tests = []
    for t in result.tests:
        adj = by_test.get(t.id)
        if adj is None:
            tests.append(t)
            continue
        line = (f"Adjusted by {adj.made_by} on {adj.made_at[:10]}: {fmt_points(adj.points)} of "
                f"{fmt_points(t.points)} point(s) (graders gave {fmt_points(t.earned)}). "
                f"Reason: {adj.reason}")
        tests.append(replace(t, earned=min(max(adj.points, 0.0), t.points),
                             feedback=f"{t.feedback}\n{line}" if t.feedback else line))
    for adj in mark.adjustments:
        if adj.test_id is None:
            notes.append(f"Your lead set this assignment's score to {fmt_points(adj.points)} / "
                         f"{fmt_points(mark.max_score)} (graders and adjustments gave "
                         f"{fmt_points(sum(t.earned for t in tests))}); by {adj.made_by} on "
                         f"{adj.made_at[:10]}. Reason: {adj.reason}")
    if mark.late.late:
        notes.append(f"Submitted {mark.submitted_at}, {mark.late.days} day(s) after the due date."
                     + (f" Late penalty: {fmt_points(mark.late.penalty)} point(s); the score "
                        f"that counts is {fmt_points(mark.final)} / {fmt_points(mark.max_score)}."
                        if mark.late.penalty else ""))
    if not notes and not by_test:
        return result
    return replace(result, tests=tuple(tests), notices=(*result.notices, *notes))


def redact_seed(text: str, seed: int) -> str:
    """Hide the gradebook's secret seed from a learner's feedback: a resubmission is graded with
    it again, so knowing it would let a notebook regenerate the graders' inputs."""
    return re.sub(rf"\bseed {seed}\b", SEED_REDACTED, text)


def write_feedback(gradebook: Gradebook, assignment: str, out: Path,
                   formats: tuple[FeedbackFormat, ...]) -> list[Written]:
    """Write ``OUT/LEARNER.md`` and/or ``OUT/LEARNER.html`` for every learner of
    ``assignment``; each file appears whole or not at all."""
    subs = gradebook.submissions(assignment)
    by_learner = {m.learner: m for m in marks(gradebook, assignment)}
    secret = gradebook.seeds().get(assignment)
    if not subs:
        known = ", ".join(gradebook.assignments()) or "none yet"
        raise UsageError(f"the gradebook {gradebook.path} has no submissions for {assignment!r} "
                         f"(it has: {known}). Run `mlgrade grade {assignment} FOLDER` first.")
    written = []
    for sub in subs:
        result = with_mark(result_from_dict(sub.result), by_learner[sub.learner])
        paths = []
        for fmt in formats:
            # learner ids are cleaned at discovery: safe as file names
            path = out / f"{sub.learner}{fmt.suffix}"
            text = render(result, fmt)
            if secret is not None and result.seed == secret:
                text = redact_seed(text, secret)
            write_text_atomic(path, text)
            paths.append(path)
        written.append(Written(sub.learner, tuple(paths)))
    return written
