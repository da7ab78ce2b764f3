"""Month 2 graders are tested like code: each mutant of graders/month2/mutants.toml (a
realistic wrong solution) fails exactly the tests it lists, each alternative (a correct
solution written differently) earns full marks, and through `mlgrade validate`'s checks the
reference earns full marks twice with the same scores while the starter earns zero."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import validated_runs
from tests.graders.mutation import Case, check_case, mutation_cases

from mlgrade.results import GradeResult

pytestmark = [pytest.mark.kernel]

ALL_TESTS = {
    "test_prediction", "test_dot_product_random_vectors", "test_dot_product_length_mismatch",
    "test_mse_gradient", "test_gradient_descent_steps", "test_numerical_gradient",
    "test_numerical_gradient_keeps_w", "test_bayes_posterior", "test_sigmoid_stable",
    "test_softmax_stable",
}
TOTAL = 15


@pytest.mark.parametrize("case", mutation_cases("month2"))
def test_mutants_and_alternatives(grade: Callable[..., GradeResult], case: Case) -> None:
    result = check_case(grade, "month2", case)
    assert {t.id for t in result.tests} == ALL_TESTS


@pytest.mark.slow
def test_reference_full_marks_twice_and_starter_zero(tmp_path: Path) -> None:
    """Through `mlgrade validate`'s checks: full marks, deterministic, starter zero."""
    solution_run, again, starter = validated_runs("month2", tmp_path)
    assert solution_run.score == again.score == TOTAL and starter.score == 0
    assert {t.id for t in starter.tests} == ALL_TESTS
    assert all("not implemented yet" in t.feedback or "`prediction`" in t.feedback
               for t in starter.tests)
