"""Wire one batch: discovery -> plan (what is new or changed) -> workers -> gradebook.

The parent process alone writes the gradebook, one transaction per submission as each
outcome arrives. Progress reaches the caller through :class:`BatchObserver` (no-op default),
so nothing here imports rich.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from mlgrade.assignments import Assignment
from mlgrade.batch.due import submitted_at
from mlgrade.batch.gradebook import Gradebook, Provenance
from mlgrade.batch.similarity import normalised_tokens
from mlgrade.batch.submissions import Discovery, Submission
from mlgrade.batch.workers import Backend, GradeTask, Outcome, problem_detail
from mlgrade.config import Settings
from mlgrade.errors import EnvironmentProblem


@dataclass(frozen=True)
class Plan:
    """What one ``mlgrade grade`` run will do."""

    todo: tuple[Submission, ...]
    up_to_date: tuple[Submission, ...]  # same content, graders and seed as recorded: skipped


@dataclass(frozen=True)
class Graded:
    """One submission's outcome, as the observer sees it."""

    learner: str
    source: str
    status: str  # graded | errored
    score: float
    max_score: float
    duration_s: float
    problem: str | None
    reason: str | None


@dataclass
class Tally:
    """Running counts for the progress display and the final summary."""

    total: int = 0
    done: int = 0
    full_marks: int = 0
    errored: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    rows: list[Graded] = field(default_factory=list)


class BatchObserver:
    """Told when grading starts and as each submission is recorded. Override what you need."""

    def started(self, total: int) -> None:
        return None

    def recorded(self, item: Graded, tally: Tally) -> None:
        return None


def plan_batch(discovery: Discovery, gradebook: Gradebook, assignment: Assignment,
               settings: Settings, regrade: bool = False) -> Plan:
    """Skip submissions already graded from the same bytes, graders and seed."""
    if regrade:
        return Plan(discovery.submissions, ())
    known = gradebook.up_to_date(assignment.name, assignment.grader_version(), settings.seed)
    todo = tuple(s for s in discovery.submissions if known.get(s.learner) != s.content_hash)
    same = tuple(s for s in discovery.submissions if known.get(s.learner) == s.content_hash)
    return Plan(todo, same)


def provenance(discovery: Discovery, assignment: Assignment,
               times: dict[str, datetime] | None = None) -> dict[str, Provenance]:
    """learner -> submitted-at time, ignored notebooks and code fingerprint (all computed here,
    in the grader process, from the files: the notebook is parsed, never run)."""
    try:
        starter: bytes | None = Path(assignment.starter).read_bytes()
    except OSError:
        starter = None
    found = {}
    for sub in discovery.submissions:
        when, how = submitted_at(sub, times)
        found[sub.learner] = Provenance(submitted_at=when, submitted_from=how,
                                        ignored=sub.ignored,
                                        code_tokens=normalised_tokens(sub.read_bytes(), starter))
    return found


def record_unchanged(plan: Plan, assignment: Assignment, gradebook: Gradebook,
                     provenances: dict[str, Provenance]) -> None:
    """Bring the submitted-at time, ignored notebooks and fingerprint of skipped (unchanged)
    submissions up to date; their grades stay as recorded."""
    for sub in plan.up_to_date:
        if sub.learner in provenances:
            gradebook.refresh(learner=sub.learner, assignment=assignment.name,
                              provenance=provenances[sub.learner])


def make_tasks(plan: Plan, assignment: Assignment, settings: Settings) -> list[GradeTask]:
    root = str(Path(assignment.folder).parent)
    return [GradeTask(index=i, learner=s.learner, source=s.source, content_hash=s.content_hash,
                      notebook=s.read_bytes(), assignment=assignment.name,
                      assignments_root=root, settings=settings)
            for i, s in enumerate(plan.todo)]


def grade_batch(plan: Plan, assignment: Assignment, settings: Settings, backend: Backend,
                gradebook: Gradebook, observer: BatchObserver | None = None,
                provenances: dict[str, Provenance] | None = None) -> Tally:
    """Grade every planned submission and record each one as soon as it arrives."""
    provenances = provenances or {}
    observer = observer or BatchObserver()
    tasks = make_tasks(plan, assignment, settings)
    tally = Tally(total=len(tasks))
    observer.started(len(tasks))
    start = time.monotonic()

    def deliver(task: GradeTask, outcome: Outcome) -> None:
        if "fatal" in outcome:
            raise EnvironmentProblem(f"grading stopped: {outcome['fatal']}")
        result = outcome["result"]
        problem = outcome.get("problem")
        gradebook.record(learner=task.learner, assignment=assignment.name,
                         assignment_title=assignment.title,
                         assignment_max=assignment.total_points, source=task.source,
                         content_hash=task.content_hash, result=result, problem=problem,
                         provenance=provenances.get(task.learner))
        reason = result.get("reason") or (problem_detail(result, problem) if problem else None)
        item = Graded(task.learner, task.source, str(result["status"]), float(result["score"]),
                      float(result["max_score"]) or assignment.total_points,
                      float(result["duration_s"]), problem, reason)
        tally.done += 1
        tally.errored += item.status == "errored"
        tally.full_marks += item.status == "graded" and item.score == item.max_score > 0
        if problem:
            tally.problems[problem] += 1
        tally.elapsed_s = time.monotonic() - start
        tally.rows.append(item)
        observer.recorded(item, tally)

    if tasks:
        backend.run(tasks, deliver)
    tally.elapsed_s = time.monotonic() - start
    return tally
