"""Score stage: combine the execution record and grader outcomes into a GradeResult.

Fail closed: only a passed test earns its points. A grader that broke earns nothing and marks
the submission errored; a grader run that could not start at all errors the submission too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlgrade.assignments import Assignment
from mlgrade.config import Settings
from mlgrade.results import Execution, GradeResult, QuestionInfo, SubmissionStatus, TestStatus

if TYPE_CHECKING:
    from mlgrade.grading.runner import GraderRun


def notices_for(execution: Execution) -> tuple[str, ...]:
    notes = []
    if execution.timed_out:
        notes.append("the notebook ran past its time limit; later cells did not run")
    if execution.kernel_restarts:
        notes.append(f"the kernel had to be restarted {execution.kernel_restarts} time(s); "
                     "earlier cells were replayed")
    if execution.output_truncated:
        notes.append("some cell output was too large and was truncated")
    if any(e.ename == "StdinNotImplementedError" for e in execution.errors):
        notes.append("input() cannot be answered during grading: set values in code instead")
    return tuple(notes)


def score(*, assignment: Assignment, notebook: str, settings: Settings, execution: Execution,
          graders: GraderRun, duration_s: float, isolation: str, mlgrade_version: str) -> GradeResult:
    reason = graders.error
    if reason is None and any(t.status is TestStatus.ERROR for t in graders.tests):
        reason = "a grader failed internally; affected tests earned no points"
    return GradeResult(
        assignment=assignment.name,
        title=assignment.title,
        notebook=notebook,
        seed=settings.seed,
        status=SubmissionStatus.ERRORED if reason else SubmissionStatus.GRADED,
        tests=graders.tests,
        execution=execution,
        duration_s=round(duration_s, 3),
        isolation=isolation,
        mlgrade_version=mlgrade_version,
        grader_version=assignment.grader_version(),
        reason=reason,
        notices=notices_for(execution),
        questions=tuple(QuestionInfo(q.id, q.title) for q in assignment.questions),
    )
