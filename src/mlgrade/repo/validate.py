"""``mlgrade validate`` for a repository assignment.

The notebook checks of :func:`mlgrade.validate.validate_assignment` run unchanged (graders load,
titles, points per question, the reference earns full marks, twice with the same scores); two
of its checks are notebook-shaped and are replaced here: the starter is a repository (graded
with :func:`mlgrade.repo.check.check_repository`, it must earn zero), and the fairness metadata
(instructions, mutants) uses the file-edit form of ``mutants.toml``
(:mod:`mlgrade.repo.mutants`). With ``mutants``, each mutant is graded and must fail exactly its
tests, every test must fail for some mutant, and each alternative must earn full marks.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

from mlgrade.assignments import Assignment
from mlgrade.config import Settings
from mlgrade.errors import AssignmentInvalidError
from mlgrade.mutants import load_instructions
from mlgrade.repo.mutants import RepoCases, load_repo_mutants, mutated_repository
from mlgrade.results import GradeResult, TestStatus
from mlgrade.validate import Check, RunTiming, ValidationReport, validate_assignment, violation_check

Grade = Callable[[Path], GradeResult]
_NOTEBOOK_SHAPED = {"starter notebook exists", "fairness metadata loads"}


def _noop(stage: str) -> None:
    return None


def _failed(result: GradeResult) -> set[str]:
    return {t.id for t in result.tests if t.status is not TestStatus.PASSED}


def _metadata_checks(assignment: Assignment, tests: set[str]) -> tuple[list[Check], RepoCases | None]:
    try:
        instructions = load_instructions(assignment.folder / "assignment.toml")
        cases = load_repo_mutants(assignment.graders)
    except AssignmentInvalidError as exc:
        return [Check("fairness metadata loads", False, str(exc))], None
    named = {t for i in instructions for t in i.tests}
    unknown = sorted(named - tests)
    unmapped = sorted(tests - named)
    checks = [Check("every instruction maps to real tests", not unknown,
                    f"instructions name {', '.join(unknown)}, which no grader defines"
                    if unknown else f"{len(instructions)} instructions"),
              Check("every test maps to an instruction", not unmapped,
                    f"{', '.join(unmapped)} observe no instruction of assignment.toml"
                    if unmapped else f"{len(tests)} tests")]
    checks.append(violation_check(instructions, cases.mutants))
    wrong = sorted({t for m in cases.mutants for t in m.fails} - tests)
    checks.append(Check("mutants name real tests", not wrong,
                        f"mutants.toml expects {', '.join(wrong)} to fail, but no such test exists"
                        if wrong else f"{len(cases.mutants)} mutants, {len(cases.alternatives)} "
                        "alternatives"))
    return checks, cases


def _starter_checks(result: GradeResult) -> list[Check]:
    passing = [t.id for t in result.tests if t.status is TestStatus.PASSED]
    broken = [t.id for t in result.tests if t.status is TestStatus.ERROR]
    ok = result.status == "graded" and not passing and not broken
    detail = (f"0/{result.max_score:g}" if ok else
              f"{result.score:g}/{result.max_score:g} on the unfinished starter repository "
              f"({', '.join(passing + broken) or result.reason}). Graders must fail, not pass or "
              "crash, on unfinished work.")
    return [Check("starter earns zero", ok, detail)]


def _mutant_checks(reference: Path, cases: RepoCases, tests: set[str], grade: Grade,
                   observer: Callable[[str], None]) -> list[Check]:
    checks: list[Check] = []
    caught: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="mlgrade-mutants-") as tmp:
        for i, mutant in enumerate(cases.mutants):
            observer(f"mutant {mutant.name}")
            result = grade(mutated_repository(reference, mutant.edits, Path(tmp) / f"m{i}"))
            failed = _failed(result)
            caught |= failed
            ok = failed == set(mutant.fails) and result.status == "graded"
            checks.append(Check(f"mutant {mutant.name} fails exactly its tests", ok,
                                ", ".join(sorted(failed)) if ok else
                                f"failed {sorted(failed)}, expected {sorted(mutant.fails)}"))
        for i, alternative in enumerate(cases.alternatives):
            observer(f"alternative {alternative.name}")
            result = grade(mutated_repository(reference, alternative.edits, Path(tmp) / f"a{i}"))
            checks.append(Check(f"alternative {alternative.name} earns full marks",
                                result.full_marks, f"{result.score:g}/{result.max_score:g}"))
    missed = sorted(tests - caught)
    checks.append(Check("every test fails for some mutant", not missed,
                        f"no mutant fails {', '.join(missed)}" if missed else "each test does"))
    return checks


def validate_repository(assignment: Assignment, settings: Settings, grade: Grade, *,
                        determinism: bool = True, mutants: bool = False,
                        observer: Callable[[str], None] = _noop) -> ValidationReport:
    """Validate a repository assignment; ``grade`` grades one repository folder."""
    report = validate_assignment(assignment, settings, grade, determinism=determinism,
                                 mutants=False, observer=observer)
    checks = [c for c in report.checks if c.name not in _NOTEBOOK_SHAPED]
    runs = list(report.runs)
    tests = {t.id for t in report.tests}
    extra, cases = _metadata_checks(assignment, tests)
    checks += extra
    starter = assignment.starter
    checks.append(Check("starter repository exists", starter.is_dir(), str(starter) if
                        starter.is_dir() else f"{starter} is missing: set `starter` in "
                        "assignment.toml to the starter repository's folder."))
    if starter.is_dir():
        observer("starter")
        result = grade(starter)
        runs.append(RunTiming("starter", result.duration_s, result.execution.duration_s,
                              result.score, result.max_score))
        checks += _starter_checks(result)
    if mutants and cases is not None and assignment.solution is not None:
        checks += _mutant_checks(assignment.solution, cases, tests, grade, observer)
    return dataclasses.replace(report, checks=tuple(checks), runs=tuple(runs))


__all__ = ["validate_repository"]
