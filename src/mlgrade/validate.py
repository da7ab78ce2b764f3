"""Validate stage, for assignment authors: is an assignment ready to hand out?

``validate_assignment`` runs the checks an author would otherwise do by hand::

    collect graders (no kernel) -> static checks (titles, @points, points add up per question)
    -> fairness checks (instructions map to tests or are advice the starter marks "not graded",
       each graded instruction has a mutant that violates it alone, boundaries have a mutant,
       a lint: expected values do not come from learner calls)
    -> solution earns full marks -> starter earns zero -> solution again: same score per test
    -> with ``mutants=True``: each mutant of graders/<name>/mutants.toml fails exactly its
       tests, every test fails for some mutant, each alternative earns full marks

Each check is a :class:`Check` (data, not an exception): a failed check is the answer the
author asked for. Exceptions are kept for what stops validation from running at all (an
unreadable assignment folder, no kernel).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from mlgrade.assignments import Assignment, is_bundled
from mlgrade.config import Settings
from mlgrade.errors import AssignmentInvalidError
from mlgrade.grading.lint import lint_graders
from mlgrade.grading.runner import CollectedTest, collect_graders
from mlgrade.mutants import (
    Alternative,
    Instruction,
    Mutant,
    MutantSet,
    apply_replacements,
    load_instructions,
    load_mutants,
)
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


# -- fairness checks (no kernel) ----------------------------------------------------------------
def _listed(names: Sequence[str], limit: int = 6) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _instruction_checks(instructions: tuple[Instruction, ...], tests: tuple[GraderTest, ...],
                        known_questions: set[str]) -> list[Check]:
    ids = {t.id for t in tests}
    if not instructions:
        return [Check("every instruction has a test", False,
                      "assignment.toml declares no [[instructions]]: list each instruction of "
                      "the starter with the tests that observe it (docs/graders.md, "
                      "\"Instructions and mutants\").")]
    problems = []
    for i, ins in enumerate(instructions, 1):
        label = f"instruction {i} ({ins.question}: {ins.text[:50]!r})"
        unknown = [t for t in ins.tests if t not in ids]
        if not ins.tests and not ins.advice:
            problems.append(f"{label} has no test (or mark it `advice = true`)")
        elif unknown:
            problems.append(f"{label} names tests that do not exist: {_listed(unknown)}")
        if ins.question not in known_questions:
            problems.append(f"{label} names an undeclared question")
    graded = sum(not ins.advice for ins in instructions)
    checks = [Check("every instruction has a test", not problems,
                    "; ".join(problems) + ". Map each instruction to the grader tests that "
                    "observe it (or write one)." if problems
                    else f"{graded} instructions, each observed by a test, and "
                         f"{len(instructions) - graded} advice")]
    mapped = {t for ins in instructions for t in ins.tests}
    orphans = [t.id for t in tests if t.id not in mapped]
    checks.append(Check(
        "every test observes an instruction", not orphans,
        f"{_listed(orphans)} map to no instruction: add them to the [[instructions]] they "
        "observe, or say in the starter what they demand" if orphans
        else f"each of {len(tests)} tests observes an instruction"))
    return checks


def _boundary_check(instructions: tuple[Instruction, ...], mutants: MutantSet) -> list[Check]:
    edged = [ins for ins in instructions if ins.boundary]
    if not edged:
        return []
    missing = []
    for ins in edged:
        caught = [m.name for m in mutants.mutants
                  if m.kind == "boundary" and m.fails & set(ins.tests)]
        if not caught:
            missing.append(f"{ins.question}: {ins.boundary!r}")
    return [Check("every boundary has a boundary mutant", not missing,
                  f"no mutant of kind \"boundary\" fails a test of {'; '.join(missing)}. Add one "
                  "(off by one at the edge) to mutants.toml and a grader input exactly on the "
                  "edge." if missing else f"{len(edged)} boundaries, each caught by a mutant")]


def _violation_check(instructions: tuple[Instruction, ...], mutants: MutantSet) -> Check:
    """Each graded instruction has a mutant that violates it alone (``violates = [id]``) and
    loses points only on that instruction's tests."""
    name = "every graded instruction has a mutant that violates it"
    graded = [ins for ins in instructions if not ins.advice]
    nameless = [str(i) for i, ins in enumerate(instructions, 1) if not ins.advice and not ins.id]
    if nameless:
        return Check(name, False, f"instructions {_listed(nameless)} have no `id`: give each "
                     "an id that a mutant's `violates` can name (docs/graders.md).")
    known = {ins.id for ins in instructions}
    problems = [f"mutant {m.name} violates unknown instructions {_listed(sorted(set(m.violates) - known))}"
                for m in mutants.mutants if set(m.violates) - known]
    for ins in graded:
        alone = [m for m in mutants.mutants if m.violates == (ins.id,)]
        if not alone:
            problems.append(f"{ins.id}: no mutant has `violates = [\"{ins.id}\"]`")
        elif not any(m.fails <= set(ins.tests) for m in alone):
            problems.append(f"{ins.id}: its mutants ({_listed([m.name for m in alone], 3)}) also "
                            f"fail tests outside {_listed(list(ins.tests), 4)}")
    return Check(name, not problems,
                 "; ".join(problems) + ". Add a realistic wrong solution that breaks only that "
                 "instruction and loses points only on its tests, or mark the instruction "
                 "`advice = true` if no test can observe it." if problems
                 else f"{len(graded)} graded instructions, each violated alone by a mutant")


def _question_text(starter: Path, question: str) -> str | None:
    """The starter's markdown from the question's ``## Qn`` heading to the next heading of the
    same level (None when the starter has no such heading)."""
    try:
        nb = nbformat.read(starter, as_version=4)
    except (OSError, ValueError):
        return None
    lines = [line for c in nb.cells if c.cell_type == "markdown"
             for line in c.source.splitlines()]
    heading = re.compile(rf"^(#+)\s*{re.escape(question)}\b", re.IGNORECASE)
    for i, line in enumerate(lines):
        found = heading.match(line)
        if found:
            level = found.group(1)
            end = next((j for j in range(i + 1, len(lines))
                        if re.match(rf"^#{{1,{len(level)}}}\s", lines[j])), len(lines))
            return "\n".join(lines[i:end])
    return None


def _advice_check(instructions: tuple[Instruction, ...], starter: Path) -> list[Check]:
    advice = [ins for ins in instructions if ins.advice]
    if not advice:
        return []
    unmarked = []
    for ins in advice:
        text = _question_text(starter, ins.question)
        if text is None or "not graded" not in text.lower():
            unmarked.append(ins.label)
    return [Check("the starter marks advice as not graded", not unmarked,
                  f"the starter does not say \"not graded\" in the section of "
                  f"{_listed(unmarked)}: a learner must know what is advice." if unmarked
                  else f"{len(advice)} advice instructions, each marked in the starter")]


def _lint_check(graders: Path, pragmas: bool = True) -> Check:
    findings = lint_graders(graders, pragmas=pragmas)
    if findings:
        shown = "; ".join(str(f) for f in findings[:5])
        more = f" and {len(findings) - 5} more" if len(findings) > 5 else ""
        way_out = ("mark a deliberate case with `# mlgrade: learner-expected-ok (why)`" if pragmas
                   else "mlgrade's own graders allow no pragma")
        return Check("expected values do not come from learner calls", False,
                     f"{shown}{more}. A mistake shared by two learner functions cancels out; "
                     f"{way_out}.")
    return Check("expected values do not come from learner calls", True,
                 "no expected value is derived from nb.call/get/eval/describe results")


def fairness_checks(assignment: Assignment, tests: tuple[GraderTest, ...]) -> list[Check]:
    """Checks that need no kernel: the instruction -> test mapping, boundaries, the lint."""
    try:
        instructions = load_instructions(assignment.folder / "assignment.toml")
        mutants = load_mutants(assignment.graders)
    except AssignmentInvalidError as exc:
        return [Check("fairness metadata loads", False, str(exc))]
    checks = _instruction_checks(instructions, tests, {q.id for q in assignment.questions})
    checks.append(_violation_check(instructions, mutants))
    checks += _advice_check(instructions, assignment.starter)
    checks += _boundary_check(instructions, mutants)
    unknown = sorted({t for m in mutants.mutants for t in m.fails} - {t.id for t in tests})
    if unknown:
        checks.append(Check("mutants name real tests", False,
                            f"mutants.toml expects {_listed(unknown)} to fail, but no such test "
                            "exists."))
    checks.append(_lint_check(assignment.graders, pragmas=not is_bundled(assignment)))
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


def _failed_ids(result: GradeResult) -> set[str]:
    return {t.id for t in result.tests if t.status is not TestStatus.PASSED}


def mutant_checks(assignment: Assignment, solution: Path, tests: tuple[GraderTest, ...],
                  grade: Grade, observer: Observer = _noop) -> list[Check]:
    """Grade each mutant and alternative of ``mutants.toml`` (the reference solution with cells
    replaced): a mutant must fail exactly its ``fails``, every test must fail for some mutant,
    an alternative must earn full marks."""
    try:
        cases = load_mutants(assignment.graders)
    except AssignmentInvalidError as exc:
        return [Check("every mutant fails exactly its tests", False, str(exc))]
    if not cases.mutants:
        return [Check("every mutant fails exactly its tests", False,
                      f"no mutants: add {assignment.graders / 'mutants.toml'} with [[mutant]] "
                      "entries (docs/graders.md).")]
    reference = nbformat.read(solution, as_version=4)
    wrong: list[str] = []
    short: list[str] = []
    caught: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="mlgrade-mutants-") as tmp:

        def run(kind: str, case: Mutant | Alternative) -> GradeResult | str:
            observer(f"{kind} {case.name}")
            try:
                nb = apply_replacements(reference, case.replacements)
            except AssignmentInvalidError as exc:
                return f"{case.name}: {exc}"
            path = Path(tmp) / f"{kind}-{len(list(Path(tmp).iterdir()))}.ipynb"
            nbformat.write(nb, path)
            return grade(path)

        for m in cases.mutants:
            result = run("mutant", m)
            if isinstance(result, str):
                wrong.append(result)
                continue
            failed = _failed_ids(result)
            caught |= failed
            if failed != m.fails:
                extra, missed = sorted(failed - m.fails), sorted(m.fails - failed)
                parts = ([f"also fails {_listed(extra, 3)}"] if extra else []) + (
                    [f"passes {_listed(missed, 3)}"] if missed else [])
                wrong.append(f"{m.name}: {', '.join(parts)}")
        for alt in cases.alternatives:
            result = run("alternative", alt)
            if isinstance(result, str):
                short.append(result)
            elif not result.full_marks:
                short.append(f"{alt.name} ({result.score:g}/{result.max_score:g}: "
                             f"{_listed(sorted(_failed_ids(result)), 3)})")
    checks = [Check("every mutant fails exactly its tests", not wrong,
                    "; ".join(wrong) + ". A test that passes a known-wrong solution misses a "
                    "mistake; one that fails more than expected may demand what the starter "
                    "does not say." if wrong else f"{len(cases.mutants)} mutants")]
    uncaught = [t.id for t in tests if t.id not in caught]
    checks.append(Check("every test fails for some mutant", not uncaught,
                        f"no mutant fails {_listed(uncaught)}: add a realistic wrong solution "
                        "that only such a test catches (or the test checks nothing)."
                        if uncaught else f"each of {len(tests)} tests catches a mutant"))
    if cases.alternatives:
        checks.append(Check("every alternative earns full marks", not short,
                            "; ".join(short) + ": a correct solution written differently loses "
                            "points, so a test demands more than the starter says." if short
                            else f"{len(cases.alternatives)} alternatives"))
    return checks


def _timing(label: str, result: GradeResult) -> RunTiming:
    return RunTiming(label, round(result.duration_s, 2), round(result.execution.duration_s, 2),
                     result.score, result.max_score)


def validate_assignment(assignment: Assignment, settings: Settings, grade: Grade, *,
                        determinism: bool = True, mutants: bool = False,
                        observer: Observer = _noop) -> ValidationReport:
    """Run every check on ``assignment``; ``grade(notebook_path)`` grades one notebook.
    With ``mutants`` the mutants and alternatives of ``mutants.toml`` are graded too.

    ``grade`` is injected so that the CLI and tests share this logic while choosing how a
    notebook is graded (normally :func:`mlgrade.pipeline.check_notebook` with ``settings``).
    """
    observer("collect")
    tests, errors = collect_graders(assignment.graders)
    checks = static_checks(assignment, tests, errors)
    if not errors and tests:
        checks += fairness_checks(assignment, tests)
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
        if mutants and not errors and tests:
            checks += mutant_checks(assignment, assignment.solution, tests, grade, observer)
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
           "fairness_checks", "mutant_checks", "static_checks", "validate_assignment"]
