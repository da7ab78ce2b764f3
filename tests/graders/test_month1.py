"""Month 1 graders are tested like code: each mutant of graders/month1/mutants.toml (the usual
pandas, SQL and plotting mistakes, boundaries included) fails exactly the tests it lists, with
a hint that names the mistake; each alternative (a correct solution written differently)
earns full marks; through `mlgrade validate`'s checks the reference earns full marks twice
with the same scores and the starter earns zero."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import validated_runs
from tests.graders.mutation import Case, check_case, mutation_cases

from mlgrade.results import GradeResult

pytestmark = [pytest.mark.kernel]

ALL_TESTS = {
    "test_column_stats_mean_std", "test_column_stats_null_pct", "test_column_stats_columns",
    "test_clean_imputes_median", "test_clean_age_groups", "test_clean_does_not_modify_input",
    "test_purchase_rate_by_group", "test_revenue_by_city", "test_customer_orders",
    "test_customer_orders_names_with_quotes", "test_big_spenders", "test_plot_saved_as_png",
    "test_plot_axes_labelled", "test_plot_points", "test_top_words",
    "test_top_words_ties_and_short_texts",
}
TOTAL = 17


@pytest.mark.parametrize("case", mutation_cases("month1"))
def test_mutants_and_alternatives(grade: Callable[..., GradeResult], case: Case) -> None:
    result = check_case(grade, "month1", case)
    assert {t.id for t in result.tests} == ALL_TESTS


@pytest.mark.slow
def test_reference_full_marks_twice_and_starter_zero(tmp_path: Path) -> None:
    """Through `mlgrade validate`'s checks: full marks, deterministic, starter zero."""
    solution_run, again, starter = validated_runs("month1", tmp_path)
    assert solution_run.score == again.score == TOTAL and starter.score == 0
    assert {t.id for t in starter.tests} == ALL_TESTS
    assert all("not implemented yet" in t.feedback for t in starter.tests)
