"""Month 5 graders are tested like code, from graders/month5/mutants.toml: realistic wrong
solutions (predicting in training mode, a hard-coded device, a softmax on the logits, a flatten
size that still runs, make_data's rule instead of training, unscaled pixels at prediction time,
top-k by raw dot product or skipping the best row, a prompt without context, without the
"answer only from the context" instruction or with three documents, a sampled or hard-coded
answer) lose exactly the points they should, with a hint that names the mistake; correct
solutions written differently earn full marks. The reference earns full marks twice with the
same scores, and the starter zero. Each case trains the networks, so each takes 20-40 s."""

from __future__ import annotations

import pytest
from tests.conftest import validated_runs
from tests.graders.mutation import Case, check_case, mutation_cases

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

ALL_TESTS = {
    "test_get_device", "test_build_mlp", "test_mlp_heldout_accuracy", "test_predict_in_eval_mode",
    "test_val_accuracy_is_on_validation_rows", "test_build_cnn", "test_cnn_heldout_accuracy",
    "test_cosine_top_k", "test_retrieve_finds_the_document", "test_rag_prompt_carries_context",
    "test_rag_prompt_grounds_answer", "test_rag_temperature_zero", "test_rag_answer_comes_from_client",
}
TOTAL = 15


@pytest.mark.parametrize("case", mutation_cases("month5"))
def test_mutants_and_alternatives(grade, case: Case):
    result = check_case(grade, "month5", case)
    assert {t.id for t in result.tests} == ALL_TESTS


def test_reference_full_marks_twice_and_starter_zero(tmp_path):
    """Through `mlgrade validate`'s checks: full marks, deterministic, starter zero."""
    solution_run, again, starter = validated_runs("month5", tmp_path)
    assert solution_run.score == again.score == TOTAL and starter.score == 0
    assert [t.earned for t in solution_run.tests] == [t.earned for t in again.tests]
    assert {t.id for t in starter.tests} == ALL_TESTS
    assert all("not implemented yet" in t.feedback for t in starter.tests
               if t.id != "test_val_accuracy_is_on_validation_rows")
