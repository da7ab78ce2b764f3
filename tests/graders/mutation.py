"""Shared mutation testing for the month graders, driven by ``graders/<month>/mutants.toml``.

Each month's test file parametrizes over :func:`mutation_cases` and calls :func:`check_case`:
a mutant (a realistic wrong solution) must fail exactly the tests its entry lists, with the
feedback it names; an alternative (a correct solution written differently) must earn full
marks. Both are graded through the real pipeline and a real kernel. The format is in
docs/graders.md ("Instructions and mutants").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

import pytest
from _pytest.mark import ParameterSet
from tests.conftest import assignment, failed_tests, feedback_by_test, mutant

from mlgrade.mutants import Alternative, Mutant, load_mutants
from mlgrade.results import GradeResult

Case = Mutant | Alternative


def mutation_cases(name: str) -> list[ParameterSet]:
    """One pytest param per mutant and alternative of assignment ``name`` (id: kind-name)."""
    cases = load_mutants(assignment(name).graders)
    tier = pytest.mark.mutation  # CI's second command: `pytest -m mutation`
    params = [pytest.param(m, id=f"mutant-{m.name}", marks=tier) for m in cases.mutants]
    params += [pytest.param(a, id=f"alternative-{a.name}", marks=tier) for a in cases.alternatives]
    if not params:
        raise AssertionError(f"graders/{name}/mutants.toml declares no mutant or alternative")
    return params


def check_case(grade: Callable[..., GradeResult], name: str, case: Case) -> GradeResult:
    """Grade the case's notebook and assert its exact verdict; returns the result."""
    nb = mutant(name, {r.cell: r.source for r in case.replacements})
    result = grade(name, nb)
    if isinstance(case, Alternative):
        assert_verdict(result, case.name)
    else:
        assert_verdict(result, case.name, case.fails, case.feedback)
    return result


def assert_verdict(result: GradeResult, name: str, fails: Collection[str] | None = None,
                   feedback: Iterable[tuple[str, str]] = ()) -> None:
    """A known-wrong case (``fails`` given) fails exactly ``fails``, each named test's feedback
    holding its text, and loses exactly their points; a correct one (``fails`` None) earns full
    marks. Either way: graded, and no grader error. Notebook and repository cases alike."""
    assert result.status == "graded", (name, result.reason)
    errored = [(t.id, t.feedback) for t in result.tests if t.status == "error"]
    assert errored == [], f"{name}: grader errors {errored}"
    if fails is None:
        lost = [(t.id, t.feedback) for t in result.tests if t.status != "passed"]
        assert lost == [], f"{name}: {lost}"
        assert result.full_marks
        return
    assert failed_tests(result) == set(fails), (
        f"{name}: failed {sorted(failed_tests(result))}, expected {sorted(fails)}; "
        f"feedback {feedback_by_test(result)}")
    said = feedback_by_test(result)
    for test, text in feedback:
        assert text in said[test], f"{name}: {test} said {said[test]!r}"
    points = sum(t.points for t in result.tests if t.id in fails)
    assert result.score == pytest.approx(result.max_score - points)
