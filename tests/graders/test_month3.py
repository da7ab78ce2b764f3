"""Month 3 graders are tested like code, from ``graders/month3/mutants.toml``: realistic wrong
solutions, one for every graded instruction of ``assignment.toml`` (another scaler or non-default
settings in the pipeline, a shared or fitted factory, another split, leakage, plain KFold,
unshuffled folds, accuracy for F1, the fold scores instead of their mean, CV on every row, a
model fitted on every row, ``evaluate`` ignoring the model it is given, a confusion matrix as a
list or transposed, precision, recall, F1 or AUC of the wrong kind, training metrics, the
majority of the wrong labels or off by one at a tie, no care for the rare class, a guessed or a
flooding threshold, the starter's public weights without training, labels as a list,
preprocessing skipped at prediction time) fail exactly the tests they should, with a hint that
names the mistake; correct solutions written differently (hand-written CV and metrics,
`cross_validate`, the defaults spelled out, `DummyClassifier`, a threshold at the stated
out-of-fold recall, a weighted model in a tuple, oversampling) earn full marks; the reference
earns full marks twice with the same scores and the starter earns zero."""

from __future__ import annotations

import pytest
from tests.conftest import validated_runs
from tests.graders.mutation import Case, check_case, mutation_cases

pytestmark = [pytest.mark.kernel]

ALL_TESTS = {
    "test_pipeline_structure", "test_pipeline_new_unfitted",
    "test_cross_validated_f1_matches_leak_free_cv", "test_reported_cv_f1",
    "test_evaluate_confusion_matrix", "test_evaluate_precision_recall", "test_evaluate_f1",
    "test_evaluate_roc_auc", "test_model_fitted_on_training_split",
    "test_reported_metrics_are_held_out", "test_majority_accuracy",
    "test_imbalanced_minority_recall", "test_imbalanced_f1",
}
TOTAL = 16


@pytest.mark.slow  # each case runs the whole notebook: 8-15 s on a busy machine
@pytest.mark.parametrize("case", mutation_cases("month3"))
def test_mutants_and_alternatives(grade, case: Case) -> None:
    result = check_case(grade, "month3", case)
    assert {t.id for t in result.tests} == ALL_TESTS


@pytest.mark.slow
def test_reference_full_marks_twice_and_starter_zero(tmp_path):
    """Through `mlgrade validate`'s checks: full marks, deterministic, starter zero."""
    solution_run, again, starter = validated_runs("month3", tmp_path)
    assert solution_run.score == again.score == TOTAL and starter.score == 0
    assert [t.earned for t in solution_run.tests] == [t.earned for t in again.tests]
    assert {t.id for t in starter.tests} == ALL_TESTS
    not_yet = {t.id for t in starter.tests if "not implemented yet" in t.feedback}
    not_set = {t.id for t in starter.tests if "not set yet" in t.feedback}
    assert not_yet | not_set >= ALL_TESTS - {"test_reported_metrics_are_held_out"}
