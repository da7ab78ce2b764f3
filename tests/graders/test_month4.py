"""Month 4 graders are tested like code, from ``graders/month4/mutants.toml``: realistic wrong
solutions (models scored on their own training rows, numbers copied from a run, least important
features first, a factory that returns a fitted search, a search fitted on every row, a linear
or too-shallow final model, 201 trees, three candidates, an unseeded model, default folds
instead of CV, a test AUC from hard labels, another forest's importances) fail exactly the tests
they should, with a hint that names the mistake; correct solutions written differently (a
hand-written fold loop, `cross_validate`, a randomized XGBoost search, a search over a Pipeline,
exactly 200 trees and exactly four candidates) earn full marks; the reference earns full marks
twice with the same scores and the starter earns zero."""

from __future__ import annotations

import pytest
from tests.conftest import validated_runs
from tests.graders.mutation import Case, check_case, mutation_cases

pytestmark = [pytest.mark.kernel, pytest.mark.slow]  # each grades a notebook: 10-30 s

ALL_TESTS = {
    "test_build_models", "test_compare_models_returns_scores", "test_compare_models_matches_cv",
    "test_reported_cv_results",
    "test_search_is_unfitted_cv_search", "test_search_tunes_tree_ensemble",
    "test_search_no_test_peeking", "test_top_features", "test_final_model_auc",
    "test_final_model_repeats",
}
TOTAL = 15


@pytest.mark.parametrize("case", mutation_cases("month4"))
def test_mutants_and_alternatives(grade, case: Case) -> None:
    result = check_case(grade, "month4", case)
    assert {t.id for t in result.tests} == ALL_TESTS


def test_reference_full_marks_twice_and_starter_zero(tmp_path):
    """Through `mlgrade validate`'s checks: full marks, deterministic, starter zero."""
    solution_run, again, starter = validated_runs("month4", tmp_path)
    assert solution_run.score == again.score == TOTAL and starter.score == 0
    assert [t.earned for t in solution_run.tests] == [t.earned for t in again.tests]
    assert {t.id for t in starter.tests} == ALL_TESTS
    not_yet = {t.id for t in starter.tests if "not implemented yet" in t.feedback}
    not_set = {t.id for t in starter.tests if "not set yet" in t.feedback}
    assert not_yet | not_set >= ALL_TESTS - {"test_reported_cv_results"}
