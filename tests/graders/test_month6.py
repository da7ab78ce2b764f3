"""Month 6 graders are tested like code: each mutant of graders/month6/mutants.toml (the
reference with one instruction broken: gt instead of ge on a bound, a model saved outside the
folder it was given, PSI cut on the wrong sample, fairness numbers from the training set, a
logged parameter missing, ...; and an app that answers 422 to every POST and 503 without a
model) fails exactly the tests it lists, each alternative (a correct solution written
differently: another solver, pickle, MlflowClient, Setext headings, percentages) earns full
marks, and through `mlgrade validate`'s checks the reference earns full marks twice with the
same scores while the starter earns zero."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import validated_runs
from tests.graders.mutation import Case, check_case, mutation_cases

from mlgrade.results import GradeResult

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

ALL_TESTS = {
    "test_train_model_held_out_auc", "test_train_model_uses_its_arguments",
    "test_train_model_scaled_and_regularised", "test_artifact_roundtrip",
    "test_artifact_versions_coexist", "test_health_endpoint", "test_predict_valid_requests",
    "test_predict_accepts_edge_values", "test_predict_rejects_invalid_input",
    "test_model_not_loaded_503", "test_mlflow_params_logged", "test_mlflow_metrics_logged",
    "test_psi_matches_definition", "test_psi_handles_empty_bins", "test_ks_drift",
    "test_group_metrics", "test_disparity", "test_model_card_sections",
    "test_model_card_uses_inputs", "test_model_card_fairness_numbers",
}
TOTAL = 24


@pytest.mark.parametrize("case", mutation_cases("month6"))
def test_mutants_and_alternatives(grade: Callable[..., GradeResult], case: Case) -> None:
    result = check_case(grade, "month6", case)
    assert {t.id for t in result.tests} == ALL_TESTS


def test_reference_full_marks_twice_and_starter_zero(tmp_path: Path) -> None:
    """Through `mlgrade validate`'s checks: full marks, deterministic, starter zero."""
    solution_run, again, starter = validated_runs("month6", tmp_path)
    assert solution_run.score == again.score == TOTAL and starter.score == 0
    assert {t.id for t in starter.tests} == ALL_TESTS
    assert all("not implemented yet" in t.feedback for t in starter.tests)
