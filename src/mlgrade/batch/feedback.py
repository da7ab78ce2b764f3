"""Feedback stage: one report per learner, rebuilt from the result JSON in the gradebook, so
it says exactly what the learner's own ``mlgrade check`` says (Markdown and HTML)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlgrade._compat import StrEnum
from mlgrade.batch.gradebook import Gradebook
from mlgrade.errors import UsageError
from mlgrade.fsutil import write_text_atomic
from mlgrade.results import (
    CellError,
    Execution,
    GradeResult,
    SubmissionStatus,
    TestResult,
    TestStatus,
)


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
        reason=data.get("reason"), notices=tuple(data.get("notices", ())))


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


def write_feedback(gradebook: Gradebook, assignment: str, out: Path,
                   formats: tuple[FeedbackFormat, ...]) -> list[Written]:
    """Write ``OUT/LEARNER.md`` and/or ``OUT/LEARNER.html`` for every learner of
    ``assignment``; each file appears whole or not at all."""
    subs = gradebook.submissions(assignment)
    if not subs:
        known = ", ".join(gradebook.assignments()) or "none yet"
        raise UsageError(f"the gradebook {gradebook.path} has no submissions for {assignment!r} "
                         f"(it has: {known}). Run `mlgrade grade {assignment} FOLDER` first.")
    written = []
    for sub in subs:
        result = result_from_dict(sub.result)
        paths = []
        for fmt in formats:
            # learner ids are cleaned at discovery: safe as file names
            path = out / f"{sub.learner}{fmt.suffix}"
            write_text_atomic(path, render(result, fmt))
            paths.append(path)
        written.append(Written(sub.learner, tuple(paths)))
    return written
