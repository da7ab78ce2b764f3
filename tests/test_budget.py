"""Budgets for the grader's own work on learner specs and files (issue 21), without a kernel:
the static estimate, the budgeted child, the PNG header check and the silenced descriptors."""

from __future__ import annotations

import io
import os
import sys

import numpy as np
import pytest
from lightgbm import LGBMClassifier
from scipy.stats import randint
from sklearn.ensemble import BaggingClassifier, RandomForestClassifier, StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, LeaveOneOut, RandomizedSearchCV, StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mlgrade.bridge.client import LearnerFailure
from mlgrade.commands._quiet import native_output_silenced
from mlgrade.grading import Fail, as_numbers
from mlgrade.grading.budget import MAX_FITS, OverBudget, check_budget, cost
from mlgrade.grading.child import run_budgeted
from mlgrade.grading.estimators import grader_fit, rebuild
from mlgrade.grading.images import decode_png, png_size

CV = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)


# ------------------------------------------------------------------------ static estimate
def test_reference_estimators_are_well_inside_the_budget() -> None:
    search = GridSearchCV(LGBMClassifier(n_estimators=100, verbose=-1),
                          {"num_leaves": [7, 15], "learning_rate": [0.05, 0.1]}, cv=CV)
    assert cost(search).fits == 100 * (4 * 5 + 1)
    assert cost(make_pipeline(StandardScaler(), LogisticRegression())).fits == 2
    assert cost(RandomForestClassifier(n_estimators=100)).fits == 100
    stack = StackingClassifier([("a", RandomForestClassifier(n_estimators=10)),
                                ("b", LogisticRegression())], cv=3)
    assert cost(stack).fits == (10 + 1) * 4  # each part per fold, and once on all rows
    for estimator in (search, stack, MLPClassifier()):
        check_budget(estimator)


def test_nested_ensembles_multiply() -> None:
    nested = BaggingClassifier(BaggingClassifier(BaggingClassifier(n_estimators=300),
                                                 n_estimators=300), n_estimators=300)
    assert cost(nested).fits == 300**3
    with pytest.raises(OverBudget, match=r"BaggingClassifier\(n_estimators=300\) x Bagging.*"
                                         r"27,000,001 model fits, over the grader.s limit"):
        check_budget(make_pipeline(StandardScaler(), nested))


def test_a_search_multiplies_candidates_folds_and_its_costliest_setting() -> None:
    grid = {"num_leaves": list(range(2, 1002)), "learning_rate": [i / 1000 for i in range(1, 1001)]}
    with pytest.raises(OverBudget, match="1,000,000 candidates x 5 folds"):
        check_budget(GridSearchCV(LGBMClassifier(), grid, cv=CV))
    # the largest n_estimators in the grid counts, not the estimator's own
    small = GridSearchCV(RandomForestClassifier(n_estimators=10), {"n_estimators": [10, 5000]})
    assert cost(small).fits == 5000 * (2 * 5 + 1)
    hidden = GridSearchCV(MLPClassifier(), {"hidden_layer_sizes": [(10,), (5000, 5000)]})
    with pytest.raises(OverBudget, match="network weights"):
        check_budget(hidden)
    drawn = RandomizedSearchCV(RandomForestClassifier(), {"n_estimators": randint(10, 2000)},
                               n_iter=50, cv=LeaveOneOut())
    assert cost(drawn).fits > MAX_FITS  # LeaveOneOut: one fold per row (1,000 assumed)


def test_a_wide_network_is_refused_by_its_weights() -> None:
    with pytest.raises(OverBudget, match=r"hidden_layer_sizes=\(5000, 5000\).*25,255,000 "
                                         "network weights, over the grader's limit of 2,000,000"):
        check_budget(MLPClassifier(hidden_layer_sizes=(5000, 5000)))


def test_rebuild_checks_the_budget_of_the_whole_spec() -> None:
    tree = {"__class__": "sklearn.ensemble.BaggingClassifier", "params": {"n_estimators": 2000}}
    spec = {"__class__": "sklearn.ensemble.BaggingClassifier",
            "params": {"estimator": tree, "n_estimators": 2000}}
    assert isinstance(rebuild(tree), BaggingClassifier)  # each size alone is under its cap
    with pytest.raises(OverBudget, match="4,000,000 model fits"):
        rebuild(spec)


# ------------------------------------------------------------------------ the budgeted child
def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    return X, (X[:, 0] > 0).astype(int)


def test_grader_fit_returns_plain_results_and_keeps_library_output_off_fd_1(
        capfd: pytest.CaptureFixture[str]) -> None:
    X, y = _data()
    proba = grader_fit(lambda: SVC(probability=True, verbose=True, random_state=0).fit(X, y)
                       .predict_proba(X), "the svc")
    assert proba.shape == (200, 2)
    out, err = capfd.readouterr()
    assert "optimization finished" not in out + err  # libsvm writes to descriptor 1 itself


def test_grader_fit_turns_what_the_learner_causes_into_failures_naming_the_limit() -> None:
    X, y = _data()
    with pytest.raises(LearnerFailure, match=r"^the svc failed when the grader fitted it on its "
                                             r"own data \(AttributeError: .*predict_proba"):
        grader_fit(lambda: SVC().fit(X, y).predict_proba(X), "the svc")
    with pytest.raises(LearnerFailure, match="memory limit of 64 MB"):
        run_budgeted(lambda: np.ones(10**9).sum(), what="the work", memory_mb=64)
    with pytest.raises(LearnerFailure, match="time limit of 1 s"):
        run_budgeted(lambda: __import__("time").sleep(60), what="the work", seconds=1)
    from mlgrade.grading.child import grading_deadline

    with grading_deadline(1.0), pytest.raises(LearnerFailure, match="than the 1 s left for grading"):
        run_budgeted(lambda: __import__("time").sleep(60), what="the work")  # not 60 s
    with pytest.raises(LearnerFailure, match="crashed .*signal 6"):
        run_budgeted(os.abort, what="the work")
    with pytest.raises(LearnerFailure, match="^the card is gone$"):
        run_budgeted(lambda: (_ for _ in ()).throw(LearnerFailure("the card is gone")),
                     what="the work")


def test_budgeted_work_must_answer_plain_data() -> None:
    X, y = _data()
    assert run_budgeted(lambda: {"a": [1, 2.5, "x"], "b": np.arange(3)}, what="w")["a"] == [1, 2.5, "x"]
    with pytest.raises(RuntimeError, match="plain data"):  # a grader bug, not the learner's
        run_budgeted(lambda: LogisticRegression().fit(X, y), what="w")


# ------------------------------------------------------------------------ images
def _png(width: int, height: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buf, format="PNG")
    return buf.getvalue()


def test_png_pixels_are_capped_from_the_header_before_decoding() -> None:
    data = _png(200, 100)
    assert png_size(data) == (200, 100)
    assert decode_png(data).shape == (100, 200, 3)
    huge = bytearray(data)
    huge[16:24] = (8000).to_bytes(4, "big") * 2  # the header claims 8000 x 8000
    with pytest.raises(LearnerFailure, match="8000 x 8000 pixels, over the grader's limit"):
        decode_png(bytes(huge))  # (its data could not fill that: never decoded)
    with pytest.raises(LearnerFailure, match="limit of 10,000 pixels"):
        decode_png(data, max_pixels=10_000)
    assert png_size(b"GIF89a" + data[6:]) is None
    with pytest.raises(LearnerFailure, match="corrupt or truncated"):
        decode_png(data[:60])


# ------------------------------------------------------------------------ silenced descriptors
def test_native_output_is_silenced_and_python_stderr_still_shows(
        capfd: pytest.CaptureFixture[str]) -> None:
    with native_output_silenced():
        os.write(1, b"native stdout\n")
        os.write(2, b"native stderr\n")
        print("progress", file=sys.stderr)
    os.write(1, b"after\n")
    out, err = capfd.readouterr()
    assert out == "after\n"
    assert "native" not in err
    assert "progress" in err or sys.stderr.fileno() != 2  # only a real stderr is re-pointed


# ------------------------------------------------------------------------ learner values
@pytest.mark.parametrize("value", ["12", None, True, [[1, 2], [3]], [["a", "b"], ["c", "d"]],
                                   {"a": 1}, [object()]])
def test_as_numbers_fails_the_check_for_what_is_not_numbers(value: object) -> None:
    with pytest.raises(Fail, match=r"^the table should hold counts \(got "):
        as_numbers(value, "the table should hold counts")


def test_as_numbers_reads_numbers_of_any_plain_kind() -> None:
    assert as_numbers([[1, 2], [3, 4]], "m").tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert as_numbers(np.array([1, 2.5], dtype=object), "m").dtype == np.float64
    assert np.isnan(as_numbers(float("nan"), "m"))


def test_run_isolated_readers_have_a_memory_limit() -> None:
    import math

    from mlgrade.grading.files import READER_MEMORY_MB, run_isolated

    assert run_isolated(math.factorial, 5, timeout=60, what="the store") == 120
    with pytest.raises(LearnerFailure, match=f"^the store: .*memory limit of {READER_MEMORY_MB} MB"):
        run_isolated(np.ones, 10**10, timeout=60, what="the store")
