"""Month 5 graders are tested like code, from graders/month5/mutants.toml: realistic wrong
solutions, one per graded instruction of assignment.toml (a hard-coded device, an MLP without
BatchNorm or ending in a LogSoftmax, scikit-learn's MLP instead of the torch network, make_data's
rule instead of training, no seed, no shuffling, predicting in training mode or with gradient
tracking on or as floats, the validation accuracy on the training rows, a CNN whose convolution
never runs, unscaled pixels at prediction time, top-k by raw dot product or argpartition or as an
array, TF-IDF fit on the question too, a prompt with three documents, no question or no
"answer only from the context" instruction, a sampled temperature, two calls, an answer not from
the model) lose exactly the points they should, with a hint that names the mistake; correct
solutions written differently earn full marks. The reference earns full marks twice with the
same scores, and the starter zero. Each case trains the networks, so each takes 1-2 minutes
on a shared CPU. The "answer only from the context" matcher is also checked on its own, on
phrasings people use, without a kernel."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import pytest
from tests.conftest import validated_runs
from tests.graders.mutation import Case, check_case, mutation_cases

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

ALL_TESTS = {
    "test_get_device", "test_build_mlp", "test_mlp_heldout_accuracy", "test_predict_in_eval_mode",
    "test_predict_without_gradients", "test_train_model_repeatable", "test_train_model_shuffles",
    "test_val_accuracy_is_on_validation_rows", "test_build_cnn", "test_cnn_heldout_accuracy",
    "test_train_cnn_repeatable", "test_cosine_top_k", "test_retrieve_finds_the_document",
    "test_rag_prompt_carries_context", "test_rag_calls_client_once", "test_rag_prompt_grounds_answer",
    "test_rag_temperature_zero", "test_rag_answer_comes_from_client",
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


@functools.cache
def _grader_module():
    path = Path(__file__).parents[2] / "graders" / "month5" / "test_month5.py"
    spec = importlib.util.spec_from_file_location("month5_grader", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GROUNDED = [
    "Answer the question using only the context below.",
    "Base your answer solely on the passages provided.",
    "You answer questions from the documents below, and only from them.",
    "Rely on the context alone.",
    "Use the context and nothing else.",
    "Use nothing but the context below to answer.",
    "Restrict your answer to the information in the documents.",
    "Do not use any outside knowledge.",
    "Never use information from your training data.",
    "Do not use information that is not in the context.",
    "Do not go beyond the documents.",
    "If the context does not contain the answer, say that you do not know.",
    "If you cannot find the answer in the context, say you don\u2019t know.",
    "Answer ONLY with information from the context.",
]
UNGROUNDED = [
    "Context:\n\nQuestion: \nAnswer:",
    "You are a helpful assistant. Answer the question below.",
    "Use the context below to answer the question.",
    "Answer the question based on the context.",
    "Answer in one sentence only.",
]


@pytest.mark.parametrize("text", GROUNDED)
def test_grounding_phrasings_accepted(text):
    assert _grader_module().grounds_answer(text)


@pytest.mark.parametrize("text", UNGROUNDED)
def test_ungrounded_prompts_refused(text):
    assert not _grader_module().grounds_answer(text)
