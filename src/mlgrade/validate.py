"""Validate stage, for assignment authors: is an assignment ready to hand out?

``validate_assignment`` runs the checks an author would otherwise do by hand::

    collect graders (no kernel) -> static checks (titles, @points, points add up per question)
    -> solution earns full marks -> starter earns zero -> solution again: same score per test

Each check is a :class:`Check` (data, not an exception): a failed check is the answer the
author asked for. Exceptions are kept for what stops validation from running at all (an
unreadable assignment folder, no kernel).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlgrade.assignments import Assignment
from mlgrade.config import Settings
from mlgrade.grading.runner import CollectedTest, collect_graders
from mlgrade.results import GradeResult, SubmissionStatus, TestResult, TestStatus

Observer = Callable[[str], None]  # told what is about to run ("solution", "starter", ...)

# feedback the plugin falls back to when a grader's assertion carries no message
_DEFAULT_FEEDBACK = ("", "this check failed.")


def _noop(stage: str) -> None:
    return None


GraderTest = CollectedTest  # one grader test as collected, before anything runs


@dataclass(frozen=True)
class Check:
    """One validation check and its outcome; ``detail`` says what to fix when it failed."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class RunTiming:
    """How long one grading run took (seconds)."""

    label: str  # "solution", "starter", "solution (again)"
    total_s: float
    notebook_s: float  # executing the notebook's cells
    score: float
    max_score: float


@dataclass(frozen=True)
class ValidationReport:
    """Every check's outcome plus timings; ``ok`` when every check passed."""

    assignment: str
    folder: str
    seed: int
    checks: tuple[Check, ...]
    runs: tuple[RunTiming, ...] = ()
    slowest_tests: tuple[tuple[str, float], ...] = ()  # (test id, seconds) on the solution
    tests: tuple[GraderTest, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


# -- static checks ------------------------------------------------------------------------------
def _names(tests: Sequence[GraderTest | TestResult], limit: int = 6) -> str:
    ids = [t.id for t in tests]
    return ", ".join(ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def static_checks(assignment: Assignment, tests: tuple[GraderTest, ...],
                  errors: tuple[str, ...]) -> list[Check]:
    """Checks that need no kernel: graders load, titles, @points, points add up per question."""
    files = sorted({t.file for t in tests})
    if errors or not tests:
        why = errors[0] if errors else f"no test_* functions in {assignment.graders}"
        return [Check("graders load", False, f"{why}. Fix the grader files, then re-run.")]
    checks = [Check("graders load", True, f"{len(tests)} tests in {len(files)} file(s)")]

    untitled = [t for t in tests if not t.has_docstring]
    checks.append(Check(
        "every test has a title", not untitled,
        f"add a one-line docstring (the title learners see) to {_names(untitled)}" if untitled
        else "each test has a docstring",
    ))

    known = {q.id for q in assignment.questions}
    no_points = [t for t in tests if t.points is None or t.points <= 0]
    no_question = [t for t in tests if t.points is not None and t.question not in known]
    problems = []
    if no_points:
        problems.append(f"add @points(value, question=...) with a positive value to "
                        f"{_names(no_points)}")
    if no_question:
        problems.append(f"give {_names(no_question)} a question= that assignment.toml declares "
                        f"({', '.join(sorted(known)) or 'no questions declared'})")
    checks.append(Check("every test has @points and a question", not problems,
                        "; ".join(problems) or "each test is worth points for a known question"))

    mismatches = []
    for q in assignment.questions:
        got = sum(t.points or 0.0 for t in tests if t.question == q.id)
        if abs(got - q.points) > 1e-9:
            mismatches.append(f"{q.id}: assignment.toml says {q.points:g}, graders give {got:g}")
    checks.append(Check(
        "points add up per question", not mismatches,
        "; ".join(mismatches) + ". Make the @points of each question's tests sum to its points."
        if mismatches else f"{assignment.total_points:g} points over {len(assignment.questions)} "
        "questions",
    ))
    starter = assignment.starter.is_file()
    checks.append(Check("starter notebook exists", starter,
                        str(assignment.starter.name) if starter else
                        f"{assignment.starter} is missing: set `starter` in assignment.toml."))
    return checks


# -- runs ---------------------------------------------------------------------------------------
Grade = Callable[[Path], GradeResult]


def _failing(result: GradeResult) -> list[str]:
    return [f"{t.id} ({t.feedback or t.status})"[:160] for t in result.tests
            if t.status is not TestStatus.PASSED]


def _solution_check(result: GradeResult) -> Check:
    if result.full_marks:
        return Check("solution earns full marks", True,
                     f"{result.score:g}/{result.max_score:g}")
    why = [result.reason] if result.reason else []
    why += _failing(result)[:4]
    return Check("solution earns full marks", False,
                 f"{result.score:g}/{result.max_score:g}: " + "; ".join(why)
                 + ". Fix the solution or the grader.")


def _starter_checks(result: GradeResult) -> list[Check]:
    passing = [t for t in result.tests if t.status is TestStatus.PASSED]
    broken = [t for t in result.tests if t.status is TestStatus.ERROR]
    if result.status is SubmissionStatus.ERRORED or broken:
        zero = Check("starter earns zero", False,
                     f"grading the starter errored ({result.reason or 'a grader failed'}"
                     f"{': ' + _names(broken) if broken else ''}). Graders must fail, not "
                     "crash, on unfinished work: catch the case and call expect().")
    elif passing:
        zero = Check("starter earns zero", False,
                     f"{result.score:g} points on the unfinished starter ({_names(passing)}). "
                     "Make those tests check the learner's work, or remove the answer from "
                     "the starter.")
    else:
        zero = Check("starter earns zero", True, f"0/{result.max_score:g}")
    silent = [t for t in result.tests
              if t.status is TestStatus.FAILED and t.feedback.strip() in _DEFAULT_FEEDBACK]
    feedback = Check(
        "every failure has a feedback message", not silent,
        f"{_names(silent)} fail without a message: pass one to expect()/assert that names the "
        "likely mistake" if silent else "each failing test on the starter explains itself",
    )
    return [zero, feedback]


def _determinism_check(first: GradeResult, second: GradeResult) -> Check:
    a = {t.id: (t.status, t.earned) for t in first.tests}
    b = {t.id: (t.status, t.earned) for t in second.tests}
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    if differ:
        return Check("grading is deterministic", False,
                     f"two runs with seed {first.seed} scored differently on "
                     f"{', '.join(differ[:6])}. Seed every random step (use the `rng` fixture, "
                     "random_state=, torch.manual_seed).")
    return Check("grading is deterministic", True,
                 f"two runs, same score on each of {len(a)} tests")


def _timing(label: str, result: GradeResult) -> RunTiming:
    return RunTiming(label, round(result.duration_s, 2), round(result.execution.duration_s, 2),
                     result.score, result.max_score)


def validate_assignment(assignment: Assignment, settings: Settings, grade: Grade, *,
                        determinism: bool = True, observer: Observer = _noop) -> ValidationReport:
    """Run every check on ``assignment``; ``grade(notebook_path)`` grades one notebook.

    ``grade`` is injected so that the CLI and tests share this logic while choosing how a
    notebook is graded (normally :func:`mlgrade.pipeline.check_notebook` with ``settings``).
    """
    observer("collect")
    tests, errors = collect_graders(assignment.graders)
    checks = static_checks(assignment, tests, errors)
    runs: list[RunTiming] = []
    slowest: tuple[tuple[str, float], ...] = ()
    if assignment.solution is None:
        checks.append(Check("solution earns full marks", False,
                            f"no reference solution: add {assignment.folder / 'solution.ipynb'} "
                            "(or solutions/<name>.ipynb next to the assignments folder), or pass "
                            "--solution PATH."))
    else:
        observer("solution")
        first = grade(assignment.solution)
        runs.append(_timing("solution", first))
        checks.append(_solution_check(first))
        slowest = tuple((t.id, t.duration_s) for t in
                        sorted(first.tests, key=lambda t: -t.duration_s)[:5])
        if determinism:
            observer("solution (again)")
            second = grade(assignment.solution)
            runs.append(_timing("solution (again)", second))
            checks.append(_determinism_check(first, second))
    if assignment.starter.is_file():
        observer("starter")
        starter = grade(assignment.starter)
        runs.append(_timing("starter", starter))
        checks.extend(_starter_checks(starter))
    return ValidationReport(
        assignment=assignment.name, folder=str(assignment.folder), seed=settings.seed,
        checks=tuple(checks), runs=tuple(runs), slowest_tests=slowest, tests=tests,
    )


__all__ = ["Check", "GraderTest", "RunTiming", "ValidationReport", "collect_graders",
           "static_checks", "validate_assignment"]
