"""Hidden graders for month 3 (supervised learning and evaluation).

The learner's kernel is only an oracle (docs/security.md). The grader chooses every input; the
kernel gets features (and the training labels a learner function takes), and returns plain
data. Whatever the grader has to *compute* (cross-validation, fits, metrics) runs here:

- the learner's pipeline is rebuilt in this process from its spec (class paths and
  ``get_params``, :mod:`mlgrade.grading.estimators`) and cross-validated here, so a ``predict``
  that reads labels from a frame, a patched ``cross_val_score`` or a renamed class has nothing
  to read or to forge;
- a model the learner fitted is judged only by its predictions on fresh rows whose labels stay
  here (a memorising ``fit`` gains nothing);
- ``evaluate`` is given a model whose every prediction the grader knows in advance (a logistic
  regression with coefficients the grader chose), and its dict is compared with metrics
  computed here.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from mlgrade.grading import LearnerFailure, as_numbers, expect, expect_close, expect_type, points
from mlgrade.grading.estimators import (
    grader_fit,
    rebuild,
    single_threaded,
    spec_of,
    spec_of_call,
)

CV = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
RECALL_TARGET = 0.75  # on fresh rows; the starter asks for >= 0.80 out-of-fold when tuning a threshold
F1_TARGET = 0.45  # class_weight="balanced" reaches about 0.57; predicting "rare" for everyone ~0.1
RARE_TRAIN_ROWS, RARE_FRESH_ROWS = 8_000, 20_000  # enough that a 0.80 out-of-fold recall holds

# A model whose predictions the grader knows in advance: a logistic regression with
# coefficients chosen here (no fit). Built in the kernel, so it is learner-controlled: the
# expected metrics never come from it, only from the coefficients.
MODEL_FROM_COEFFICIENTS = """
from sklearn.linear_model import LogisticRegression
result = LogisticRegression()
result.coef_ = np.asarray(coef, dtype=float).reshape(1, -1)
result.intercept_ = np.asarray([intercept], dtype=float)
result.classes_ = np.array([0, 1])
result.n_features_in_ = result.coef_.shape[1]
"""


# --------------------------------------------------------------------------- data
def notebook_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The split the notebook is told to use (malignant = 1), rebuilt here independently."""
    X, y = load_breast_cancer(return_X_y=True)
    y = 1 - y
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=42)
    return X_tr, X_te, y_tr, y_te


def make_rare_events(n_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The notebook's rare-event generator (about 5% positives); same fixed 'world' for every
    seed, so rows from another seed are fresh rows from the same problem."""
    world = np.random.default_rng(2026)
    weights = world.normal(size=8)
    spread = world.uniform(0.5, 4.0, size=8)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, 8)) * spread
    logits = 2.0 * (X / spread) @ weights - 9.0
    y = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logits))).astype(int)
    return X, y


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(1_000, 2**31 - 1))


def _tabular(rng: np.random.Generator, n: int, positive: float) -> tuple[np.ndarray, np.ndarray]:
    """Fresh classification data with features on very different scales."""
    X, y = make_classification(n_samples=n, n_features=10, n_informative=5, n_redundant=2,
                               weights=[1 - positive], flip_y=0.02, class_sep=1.0,
                               random_state=_seed(rng))
    return X * np.logspace(-2, 3, X.shape[1]), y


def _with_outlier(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A strong feature plus weak ones, and ONE row whose strong feature is 10^4 times too big.
    A scaler fitted on every row is dominated by that row in every fold; inside a pipeline it
    is not, in the fold that holds the row out, so leakage changes that fold's F1."""
    n = 300
    y = (rng.random(n) < 0.15).astype(int)
    X = rng.normal(size=(n, 8))
    X[:, 0] += 2.5 * y
    X[:, 1:4] += 0.6 * y[:, None]
    X[int(rng.integers(n)), 0] *= 1e4
    return X * np.logspace(-1, 3, 8), y


def reference_pipeline() -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


# --------------------------------------------------------------------------- the learner's pipeline, rebuilt here
@pytest.fixture(scope="module")
def pipeline_spec(nb) -> Any:
    """The spec of ``build_pipeline()`` (a learner claim), or the failure that fetching it met."""
    try:
        return spec_of_call(nb, "build_pipeline", what="`build_pipeline()`")
    except AssertionError as exc:  # a LearnerFailure or a failed expect: the tests report it
        return exc


def learner_pipeline(spec: Any) -> Any:
    """A new, unfitted copy of the learner's pipeline, built in this process."""
    if isinstance(spec, AssertionError):
        raise spec
    return rebuild(spec)


def grader_cv_f1(spec: Any, X: np.ndarray, y: np.ndarray) -> float:
    """The grader's leak-free stratified CV of the learner's pipeline, run here (in a child
    process under the grader's budget)."""
    pipe = learner_pipeline(spec)
    return grader_fit(lambda: float(cross_val_score(pipe, X, y, cv=CV, scoring="f1").mean()),
                      "your build_pipeline()")


def _labels(nb, target, X: np.ndarray, what: str) -> np.ndarray:
    pred = nb.call(target, X)
    expect(isinstance(pred, np.ndarray) and pred.shape == (len(X),),
           f"{what} should return one 0/1 label per row (a 1-D array).")
    expect(bool(np.isin(pred, [0, 1]).all()), f"{what} should return labels 0 and 1 only.")
    return np.asarray(pred).astype(int)


def _cv_mistake(value: float, X: np.ndarray, y: np.ndarray) -> str | None:
    """Name the classic mistake ``value`` matches, computed with the reference pipeline."""
    ref = reference_pipeline()
    leaky = StandardScaler().fit_transform(X)
    candidates = [
        ("plain KFold does not keep the class ratio in each fold (it matters when one class is "
         "rare): use StratifiedKFold(n_splits=5, shuffle=True, random_state=0).",
         lambda: cross_val_score(ref, X, y, cv=KFold(5, shuffle=True, random_state=0),
                                 scoring="f1").mean()),
        ("use StratifiedKFold(n_splits=5, shuffle=True, random_state=0) as cv, not cv=5 or "
         "unshuffled folds.",
         lambda: cross_val_score(ref, X, y, cv=5, scoring="f1").mean()),
        ("that is the accuracy: pass scoring='f1'. Accuracy flatters a classifier when one class "
         "is rare.",
         lambda: cross_val_score(ref, X, y, cv=CV, scoring="accuracy").mean()),
        ("the scaler was fitted on all rows before cross-validation (data leakage): put the "
         "scaler inside the pipeline and cross-validate build_pipeline() on the raw features.",
         lambda: cross_val_score(LogisticRegression(max_iter=1000), leaky, y, cv=CV,
                                 scoring="f1").mean()),
        ("that is an F1 score on the training rows themselves: cross-validate instead.",
         lambda: f1_score(y, reference_pipeline().fit(X, y).predict(X), zero_division=0.0)),
    ]
    for hint, compute in candidates:
        with warnings.catch_warnings(), single_threaded():
            warnings.simplefilter("ignore")  # folds without positives warn; only the value matters
            candidate = float(compute())
        if np.isclose(value, candidate, rtol=1e-9, atol=1e-12):
            return hint
    return None


def _check_cv(got: object, want: float, X: np.ndarray, y: np.ndarray, what: str) -> None:
    value = got if isinstance(got, (int, float)) and not isinstance(got, bool) else None
    expect(value is not None, f"{what} should be a single number (the mean F1 over the folds).")
    assert value is not None
    if not np.isclose(value, want, rtol=1e-6, atol=1e-9):
        hint = _cv_mistake(float(value), X, y) or (
            "use cross_val_score(build_pipeline(), X, y, scoring='f1', "
            "cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=0)).mean().")
        expect(False, f"{what} does not match a stratified 5-fold cross-validated F1 of your "
                      f"pipeline: {hint}")


def _raises_not_fitted(nb, ref, X: np.ndarray) -> bool:
    """Whether the kept object's predict refuses to run for want of a fit (the learner's
    answer: an unfitted estimator raises NotFittedError)."""
    try:
        nb.call(ref.attr("predict"), X)
    except LearnerFailure as exc:
        return "NotFittedError" in str(exc)
    return False


# --------------------------------------------------------------------------- Q1 pipeline
@pytest.fixture(scope="module")
def kernel_fit(nb, seed) -> dict[str, Any] | AssertionError:
    """``build_pipeline()`` observed from the outside, on rows the grader drew: whether a fresh
    one can predict before any fit (it must not), its predictions on held-out rows after the
    grader fitted it in the kernel (labels of those rows stay here), and whether the *next*
    call returns an unfitted pipeline again (not the object the grader just fitted)."""
    rng = np.random.default_rng([seed, 31])
    X, y = _tabular(rng, 900, positive=0.3)
    X_tr, X_ho, y_tr, y_ho = train_test_split(X, y, test_size=0.5, stratify=y,
                                              random_state=_seed(rng))
    try:
        first = nb.call("build_pipeline", keep=True)
        unfitted_first = _raises_not_fitted(nb, first, X_ho[:5])
        nb.call(first.attr("fit"), X_tr, y_tr, discard=True)
        pred = _labels(nb, first.attr("predict"), X_ho, "the pipeline's predict")
        proba = nb.call(first.attr("predict_proba"), X_ho)
        expect(isinstance(proba, np.ndarray) and proba.shape == (len(X_ho), 2),
               "the pipeline's predict_proba should give two probabilities per row.")
        unfitted_next = _raises_not_fitted(nb, nb.call("build_pipeline", keep=True), X_ho[:5])
    except AssertionError as exc:  # a LearnerFailure or a failed expect: the tests report it
        return exc
    return {"X_tr": X_tr, "y_tr": y_tr, "X_ho": X_ho, "y_ho": y_ho, "pred": pred,
            "proba": proba, "unfitted": unfitted_first and unfitted_next}


@points(1, question="q1")
def test_pipeline_structure(pipeline_spec, kernel_fit):
    """build_pipeline returns a new, unfitted Pipeline: StandardScaler, then LogisticRegression"""
    pipe = learner_pipeline(pipeline_spec)
    expect(isinstance(pipe, Pipeline), "build_pipeline should return a scikit-learn Pipeline "
           "(Pipeline([...]) or make_pipeline(...)).")
    steps = [step for _name, step in pipe.steps]
    expect(len(steps) == 2 and isinstance(steps[0], StandardScaler)
           and isinstance(steps[1], LogisticRegression),
           "the pipeline should have two steps: a StandardScaler, then a LogisticRegression.")
    if isinstance(kernel_fit, AssertionError):
        raise kernel_fit
    expect(kernel_fit["unfitted"], "build_pipeline should return a NEW, unfitted pipeline: "
           "create it inside the function and don't call fit there (or return a global you "
           "fitted).")
    # the object itself behaves like the scikit-learn pipeline its parameters describe (a
    # renamed class or a forged get_params describes something else)
    here = grader_fit(lambda: pipe.fit(kernel_fit["X_tr"], kernel_fit["y_tr"]).predict_proba(
        kernel_fit["X_ho"]), "your build_pipeline()")
    expect(bool(np.allclose(kernel_fit["proba"], here, rtol=1e-5, atol=1e-6)),
           "the pipeline build_pipeline() returns does not predict like scikit-learn's "
           "StandardScaler and LogisticRegression with the parameters it reports (get_params): "
           "use those classes themselves, not look-alikes.")


@points(1, question="q1")
def test_pipeline_generalises(kernel_fit):
    """build_pipeline, fitted by the grader, predicts rows it never saw about as well as a
    standard scaler + logistic regression"""
    if isinstance(kernel_fit, AssertionError):
        raise kernel_fit
    X_tr, y_tr, X_ho, y_ho = (kernel_fit[k] for k in ("X_tr", "y_tr", "X_ho", "y_ho"))
    with single_threaded(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = reference_pipeline().fit(X_tr, y_tr).predict(X_ho)
    got = f1_score(y_ho, kernel_fit["pred"], zero_division=0.0)
    want = f1_score(y_ho, reference, zero_division=0.0)
    expect(bool(got >= want - 0.05), "your pipeline predicts held-out rows much worse than a "
           "standard scaler + logistic regression: check both steps and their settings (features "
           "here have very different scales).")


# --------------------------------------------------------------------------- Q2 CV
@points(2, question="q2")
def test_cross_validated_f1_matches_leak_free_cv(nb, rng, pipeline_spec):
    """cross_validated_f1 equals the grader's stratified 5-fold F1 of your pipeline, on new data"""
    # a rare class (plain KFold and accuracy give other numbers) and one data set with a single
    # extreme row, where a scaler fitted on every row (leakage) visibly changes the folds' F1
    for X, y in (_tabular(rng, 300, positive=0.1), _with_outlier(rng)):
        got = nb.call("cross_validated_f1", X, y)
        _check_cv(got, grader_cv_f1(pipeline_spec, X, y), X, y, "cross_validated_f1")


@points(1, question="q2")
def test_reported_cv_f1(nb, pipeline_spec):
    """`cv_f1` is the stratified 5-fold F1 of your pipeline on the training split"""
    X_tr, _X_te, y_tr, _y_te = notebook_split()
    _check_cv(nb.get("cv_f1"), grader_cv_f1(pipeline_spec, X_tr, y_tr), X_tr, y_tr, "`cv_f1`")


# --------------------------------------------------------------------------- Q3 evaluation
@pytest.fixture(scope="module")
def evaluated(nb, seed) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """``evaluate`` called on a model whose predictions the grader knows (coefficients chosen
    here) and rows it drew: (the learner's dict, true labels, predictions, probabilities)."""
    rng = np.random.default_rng([seed, 33])
    for _attempt in range(20):  # FP != FN and precision != recall: swaps are detectable
        n, d = int(rng.integers(150, 260)), 6
        X = rng.normal(size=(n, d))
        coef, intercept = rng.normal(size=d), float(rng.normal(-0.5, 0.3))
        margin = X @ coef + intercept
        y = (margin + rng.normal(scale=1.5, size=n) > 0.3).astype(int)
        pred = (margin > 0).astype(int)
        cm = confusion_matrix(y, pred)
        if cm[0, 1] != cm[1, 0] and np.min(np.abs(margin)) > 1e-9:
            break
    score = 1.0 / (1.0 + np.exp(-margin))
    model = nb.eval_untrusted(MODEL_FROM_COEFFICIENTS, coef=coef, intercept=intercept, keep=True,
                              what="a model the grader made for `evaluate`")
    got = nb.call("evaluate", model, X, y)
    expect_type(got, dict, "evaluate should return a dict")
    return got, y, pred, score


def _metric(got: dict, key: str) -> float:
    expect(key in got, f"evaluate's dict has no '{key}' key.")
    value = got[key]
    expect(isinstance(value, (int, float)) and not isinstance(value, bool),
           f"evaluate's '{key}' should be a number.")
    return float(value)


@points(1, question="q3")
def test_evaluate_confusion_matrix(evaluated):
    """evaluate: confusion matrix of the model's predictions on the rows it is given"""
    got, y, pred, _score = evaluated
    expect("confusion_matrix" in got, "evaluate's dict has no 'confusion_matrix' key.")
    cm = as_numbers(got["confusion_matrix"], "the confusion matrix should be a 2 x 2 table of "
                    "counts.")
    want = confusion_matrix(y, pred)
    expect(cm.shape == (2, 2), "the confusion matrix should be 2 x 2.")
    expect(not np.array_equal(cm, want.T), "the confusion matrix is transposed: rows are the "
           "true classes, columns the predictions: confusion_matrix(y_true, y_pred).")
    expect_close(cm, want, "the confusion matrix does not match the model's predictions on the "
                 "rows evaluate was given: predict X, then confusion_matrix(y, y_pred).")


@points(1, question="q3")
def test_evaluate_precision_recall(evaluated):
    """evaluate: precision and recall of the positive class"""
    got, y, pred, _score = evaluated
    precision, recall = _metric(got, "precision"), _metric(got, "recall")
    want_p, want_r = precision_score(y, pred, zero_division=0.0), recall_score(y, pred)
    expect(not (np.isclose(precision, want_r) and np.isclose(recall, want_p)),
           "precision and recall are swapped: precision = TP / (TP + FP), "
           "recall = TP / (TP + FN).")
    expect_close(precision, want_p, "precision is wrong: it is TP / (TP + FP) for class 1, from "
                 "the model's predictions on the rows evaluate was given.", rtol=1e-9)
    expect_close(recall, want_r, "recall is wrong: it is TP / (TP + FN) for class 1.", rtol=1e-9)


@points(1, question="q3")
def test_evaluate_f1(evaluated):
    """evaluate: F1 of the positive class"""
    got, y, pred, _score = evaluated
    f1 = _metric(got, "f1")
    expect(not np.isclose(f1, accuracy_score(y, pred), rtol=1e-9),
           "'f1' holds the accuracy: use f1_score(y, y_pred).")
    expect(not np.isclose(f1, f1_score(y, pred, average="macro", zero_division=0.0), rtol=1e-9),
           "'f1' is the macro average over both classes: report F1 of class 1 (the default "
           "binary average).")
    expect_close(f1, f1_score(y, pred, zero_division=0.0), "f1 is wrong: the harmonic mean of "
                 "precision and recall for class 1.", rtol=1e-9)


@points(1, question="q3")
def test_evaluate_roc_auc(evaluated):
    """evaluate: ROC-AUC from the predicted probability of class 1"""
    got, y, pred, score = evaluated
    auc = _metric(got, "roc_auc")
    expect(not np.isclose(auc, roc_auc_score(y, pred), rtol=1e-9),
           "roc_auc was computed from hard 0/1 predictions: use the probability of class 1, "
           "model.predict_proba(X)[:, 1].")
    expect(not np.isclose(auc, 1 - roc_auc_score(y, score), rtol=1e-9),
           "roc_auc used the probability of class 0: take column 1 of predict_proba.")
    expect_close(auc, roc_auc_score(y, score), "roc_auc is wrong: roc_auc_score(y, "
                 "probability of class 1).", rtol=1e-9)


@pytest.fixture(scope="module")
def model_here(nb) -> Any:
    """The learner's `model`, rebuilt here from its own parameters and fitted on the raw
    training split: what `model` should predict (its labels for both splits and probabilities
    for the test split), or the failure that rebuilding or fitting it met."""
    X_tr, X_te, y_tr, _y_te = notebook_split()
    try:
        expect(nb.has("model"), "`model` is not defined: fit build_pipeline() on X_train, "
               "y_train.")
        spec = spec_of(nb, "model", what="`model`")
        expect(spec is not None, "`model` is not set yet (it is None): fit build_pipeline() on "
               "X_train, y_train and store the fitted pipeline in `model`.")
        model = rebuild(spec)

        def predictions() -> dict[str, np.ndarray]:
            model.fit(X_tr, y_tr)
            return {"proba_te": model.predict_proba(X_te), "pred_te": model.predict(X_te),
                    "pred_tr": model.predict(X_tr)}

        return grader_fit(predictions, "your `model`")
    except AssertionError as exc:  # a LearnerFailure or a failed expect: the tests report it
        return exc


@points(1, question="q3")
def test_model_fitted_on_training_split(nb, model_here):
    """`model` is build_pipeline() fitted on the raw training split only"""
    _X_tr, X_te, _y_tr, _y_te = notebook_split()
    if isinstance(model_here, AssertionError):
        raise model_here
    try:
        got = nb.call("model.predict_proba", X_te)
    except LearnerFailure as exc:
        raise LearnerFailure(f"`model` cannot predict probabilities for the raw test rows "
                             f"({str(exc)[:160]}): it should be a fitted build_pipeline()."
                             ) from None
    expect_close(got, model_here["proba_te"], "`model` is not build_pipeline() fitted "
                 "on the raw X_train, y_train: don't scale or fit on the whole dataset before "
                 "splitting, and don't fit on the test rows (the pipeline's scaler must learn "
                 "from the training rows only).", rtol=1e-5, atol=1e-7)


@points(1, question="q3")
def test_reported_metrics_are_held_out(nb, model_here):
    """`test_metrics` are evaluate(model, X_test, y_test): measured on the held-out split"""
    X_tr, X_te, y_tr, y_te = notebook_split()
    reported = nb.get("test_metrics")
    expect_type(reported, dict, "`test_metrics` should be the dict evaluate returns")
    assert isinstance(reported, dict)
    if isinstance(model_here, AssertionError):
        raise model_here
    pred, score = model_here["pred_te"], model_here["proba_te"][:, 1]
    f1, auc = _metric(reported, "f1"), _metric(reported, "roc_auc")
    precision, recall = _metric(reported, "precision"), _metric(reported, "recall")
    train_f1 = f1_score(y_tr, model_here["pred_tr"], zero_division=0.0)
    want_f1 = f1_score(y_te, pred, zero_division=0.0)
    expect(not np.isclose(f1, train_f1, rtol=1e-9) or np.isclose(f1, want_f1, rtol=1e-9),
           "`test_metrics` were measured on the training rows: evaluate on X_test, y_test (rows "
           "the model never saw), or the scores are optimistic.")
    want = [want_f1, roc_auc_score(y_te, score), precision_score(y_te, pred, zero_division=0.0),
            recall_score(y_te, pred)]
    expect_close([f1, auc, precision, recall], want,
                 "`test_metrics` do not match your `model` evaluated on X_test, y_test.",
                 rtol=1e-6)
    expect_close(reported.get("confusion_matrix"), confusion_matrix(y_te, pred),
                 "`test_metrics['confusion_matrix']` does not match your `model` on X_test, "
                 "y_test.")


# --------------------------------------------------------------------------- Q4 imbalance
def _labels_with(rng: np.random.Generator, n: int, ones: int) -> np.ndarray:
    y = np.zeros(n, dtype=int)
    y[:ones] = 1
    return rng.permutation(y)


@points(1, question="q4")
def test_majority_accuracy(nb, rng):
    """majority_accuracy: the accuracy of always predicting the training set's majority class"""
    # train and test balances on opposite sides of 1/2, so "the majority of y_test" and "the
    # share of y_test equal to 1" both give other answers than the right one; one training set
    # one row away from a tie on each side
    cases = [(_labels_with(rng, 101, 51), _labels_with(rng, 80, 20)),    # majority 1, test mostly 0
             (_labels_with(rng, 101, 50), _labels_with(rng, 90, 70)),    # majority 0, test mostly 1
             (_labels_with(rng, 200, 180), _labels_with(rng, 50, 35)),   # a rare class, as in Q4
             (_labels_with(rng, 150, 12), _labels_with(rng, 60, 9))]
    for y_train, y_test in cases:
        majority = int(np.bincount(y_train, minlength=2).argmax())
        got = nb.call("majority_accuracy", y_train, y_test)
        expect_close(got, float(np.mean(y_test == majority)), "majority_accuracy is wrong: find "
                     "the most frequent class in y_train, predict it for every row of y_test, "
                     "and return the share of rows that are right.", rtol=1e-9)


@pytest.fixture(scope="module")
def rare_predictions(nb, seed) -> tuple[np.ndarray, np.ndarray]:
    """train_imbalanced on fresh rows, predict_imbalanced on other fresh rows whose labels
    stay here (one run shared by the recall and F1 tests)."""
    rng = np.random.default_rng([seed, 3])
    X_tr, y_tr = make_rare_events(RARE_TRAIN_ROWS, _seed(rng))
    X_ho, y_ho = make_rare_events(RARE_FRESH_ROWS, _seed(rng))
    model = nb.call("train_imbalanced", X_tr, y_tr, keep=True, timeout=60)
    pred = nb.call("predict_imbalanced", model, X_ho)
    expect(isinstance(pred, np.ndarray) and pred.shape == (len(X_ho),),
           "predict_imbalanced should return one 0/1 label per row (a 1-D array).")
    expect(bool(np.isin(pred, [0, 1]).all()), "predict_imbalanced should return 0/1 labels.")
    return y_ho, np.asarray(pred).astype(int)


@points(2, question="q4")
def test_imbalanced_minority_recall(rare_predictions):
    """the rare class is found on fresh rows: minority recall of at least 0.75 (with the F1
    the text also requires, so that flagging every row finds nothing)"""
    y, pred = rare_predictions
    recall = recall_score(y, pred)
    expect(bool(recall >= RECALL_TARGET),
           f"on fresh rows your model finds only {recall:.0%} of the rare cases (at least "
           f"{RECALL_TARGET:.0%} are required). Its accuracy still looks high because 95% of rows "
           "are negative: use class_weight='balanced', or a lower decision threshold chosen so "
           "that the out-of-fold recall on the training rows is at least 0.80.")
    expect(bool(f1_score(y, pred, zero_division=0.0) >= F1_TARGET),
           f"your model finds {recall:.0%} of the rare cases only by flagging far too many rows "
           f"(its F1 is below the {F1_TARGET:.2f} also required): recall counts only with a "
           "model that still tells the classes apart.")


@points(2, question="q4")
def test_imbalanced_f1(rare_predictions):
    """the rare class is found without flooding it with false alarms: F1 of at least 0.45"""
    y, pred = rare_predictions
    f1 = f1_score(y, pred, zero_division=0.0)
    expect(bool(f1 >= F1_TARGET),
           f"on fresh rows your model's F1 for the rare class is {f1:.2f} (at least "
           f"{F1_TARGET:.2f} is required): too many missed cases or too many false alarms. Weight "
           "the classes or tune the threshold on training data (cross-validation), and transform "
           "the rows you predict exactly as the rows you trained on.")
