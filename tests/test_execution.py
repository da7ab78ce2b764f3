"""One behaviour per fixture notebook, through a real kernel (tests/notebooks/*.ipynb)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import FIXTURE_NOTEBOOKS, SOLUTIONS, failed_tests
from tests.kernel_support import memory_peak

pytestmark = pytest.mark.kernel
ALL_MONTH2 = 15.0


def nb(name: str) -> Path:
    return FIXTURE_NOTEBOOKS / f"{name}.ipynb"


def test_reference_solution_full_marks(grade) -> None:
    result = grade("month2", SOLUTIONS / "month2.ipynb")
    assert result.full_marks and result.score == result.max_score == ALL_MONTH2
    assert result.execution.errors == ()
    assert result.isolation != "none"


def test_starter_scores_zero_and_says_what_is_missing(grade) -> None:
    from tests.conftest import assignment

    result = grade("month2", assignment("month2").starter)
    assert result.score == 0 and result.max_score == ALL_MONTH2
    feedback = {t.id: t.feedback for t in result.tests}
    assert "not implemented yet" in feedback["test_dot_product_random_vectors"]
    assert "`prediction`" in feedback["test_prediction"]


def test_one_wrong_answer_loses_exactly_that_tests_points(grade) -> None:
    result = grade("month2", nb("one_wrong_answer"))
    assert failed_tests(result) == {"test_bayes_posterior"}
    assert result.score == ALL_MONTH2 - 2
    msg = next(t.feedback for t in result.tests if t.id == "test_bayes_posterior")
    assert "P(+)" in msg


def test_syntax_error_cell_is_reported_and_other_questions_graded(grade) -> None:
    result = grade("month2", nb("syntax_error"))
    assert failed_tests(result) == {"test_bayes_posterior"}
    (err,) = result.execution.errors
    assert err.ename == "SyntaxError"
    assert err.line is not None and err.line.startswith("def bayes_posterior")
    # the hint points at the cell that broke, not at a cell the learner forgot to run
    hint = next(t.feedback for t in result.tests if t.id == "test_bayes_posterior")
    assert hint.startswith(f"`bayes_posterior` is not defined because cell {err.cell} raised "
                           "SyntaxError at `def bayes_posterior")


def test_exception_in_an_early_cell_does_not_stop_later_questions(grade) -> None:
    result = grade("month2", nb("early_exception"))
    assert result.full_marks
    (err,) = result.execution.errors
    assert (err.cell, err.ename, err.evalue) == (2, "RuntimeError", "an early cell fails")  # code cell 2
    assert err.line == "raise RuntimeError('an early cell fails')"


def test_an_error_inside_a_learner_function_shows_the_line_that_raised(grade) -> None:
    from tests.conftest import mutant

    broken = ("def sigmoid(z):\n    scale = 1.0\n    raise ValueError('inside sigmoid')\n\n\n"
              "sigmoid(0.0)\n")
    result = grade("month2", mutant("month2", {"def sigmoid": broken}))
    (err,) = result.execution.errors
    assert (err.ename, err.line) == ("ValueError", "raise ValueError('inside sigmoid')")


def test_infinite_loop_times_out_names_the_cell_and_grading_goes_on(grade) -> None:
    result = grade("month2", nb("infinite_loop"), cell_timeout=2)
    (err,) = result.execution.errors
    assert err.ename == "Timeout" and err.line == "while True:"
    assert err.cell == 4  # the 4th code cell (markdown cells do not count)
    assert result.full_marks  # interrupted cleanly; everything after it still ran


def test_kernel_death_restarts_and_replays(grade) -> None:
    result = grade("month2", nb("kernel_death"))
    (err,) = result.execution.errors
    assert err.ename == "KernelDied" and err.line == "import os"
    assert result.execution.kernel_restarts == 1
    assert result.full_marks
    assert any("restarted" in n for n in result.notices)


def test_input_gets_a_clear_error(grade) -> None:
    result = grade("month2", nb("reads_stdin"))
    (err,) = result.execution.errors
    assert err.ename == "StdinNotImplementedError"
    assert any("input()" in n for n in result.notices)
    assert result.full_marks


def test_huge_print_is_capped(grade) -> None:
    with memory_peak() as peak:  # this grading's own peak, not the pytest process's lifetime one
        result = grade("month2", nb("huge_print"))
    assert result.execution.output_truncated
    assert result.full_marks
    assert peak.grown_mb < 400  # the 50 MB print is dropped as it arrives, not accumulated


def test_missing_variable_fails_only_its_test_with_a_hint(grade) -> None:
    result = grade("month2", nb("missing_variable"))
    assert failed_tests(result) == {"test_prediction"}
    assert "`prediction` is not defined" in result.tests[0].feedback


def test_wrong_types_are_not_taken_for_numbers(grade) -> None:
    result = grade("month2", nb("wrong_types"))
    assert {"test_prediction", "test_mse_gradient"} <= failed_tests(result)
    feedback = {t.id: t.feedback for t in result.tests}
    assert "got a DataFrame" in feedback["test_prediction"]
    assert "got a list" in feedback["test_mse_gradient"]


def test_nbformat_v3_is_upgraded_and_graded(grade) -> None:
    assert nb("solution_v3").read_text().count('"nbformat": 3') == 1
    assert grade("month2", nb("solution_v3")).full_marks


def test_whole_notebook_timeout_stops_execution(grade) -> None:
    result = grade("month2", nb("infinite_loop"), cell_timeout=30, notebook_timeout=2)
    assert result.execution.timed_out or any(e.ename == "Timeout" for e in result.execution.errors)
    assert not result.full_marks


def test_a_notebook_without_cells_fails_each_test_with_its_reason(grade) -> None:
    result = grade("month2", nb("no_cells"))
    assert result.score == 0 and result.execution.kernel_restarts == 0
    feedback = {t.id: t.feedback for t in result.tests}
    assert "`prediction` is not defined" in feedback["test_prediction"]
    assert not any("kernel died" in text for text in feedback.values())
