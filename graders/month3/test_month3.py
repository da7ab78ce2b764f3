"""Hidden graders for month 3 (supervised learning and evaluation).

The learner's kernel is only an oracle (docs/security.md). The grader chooses every input; the
kernel gets features (and the training labels a learner function takes), and returns plain
data. Every *expected* value comes from the grader's own objects, never from the learner's:

- the starter fixes the pipeline (a StandardScaler, then a LogisticRegression with its default
  settings), so the grader's reference pipeline is the answer, fitted and cross-validated here
  with the grader's own splitter on the grader's own rows. The learner's ``build_pipeline()``
  is fitted in the kernel by the grader and must predict like the reference on rows it never
  saw; its spec (class paths, a learner claim) only shows the two steps;
- ``cross_validated_f1`` is called with the grader's reference pipeline in place of the
  learner's ``build_pipeline`` (a mistake in Q1 does not cost Q2's function points twice), and
  its number is compared with the grader's stratified CV of that pipeline;
- ``evaluate`` is given a model whose every prediction the grader knows in advance (a logistic
  regression with coefficients the grader chose), and its dict is compared with metrics
  computed here;
- the stored answers (``cv_f1``, ``model``, ``test_metrics``) are compared with the reference
  pipeline on the notebook's split, rebuilt here;
- Q4's rows come from a rare-event problem drawn from the run's secret seed (weights, scales
  and offsets), never from the starter's public generator: a predictor that applies the public
  weights without training finds nothing.
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
from mlgrade.grading.estimators import rebuild, single_threaded, spec_of_call

CV = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)

# Q4's pass marks, calibrated grader-side (plain Python, no kernel) on `rare_problem(seed)` for
# seeds 0-80, with 8,000 training and 20,000 fresh rows drawn as `rare_predictions` draws them:
# min-max over the seeds of recall and F1 of class 1 on the fresh rows.
#   correct (pass on every seed):
#     StandardScaler + LogisticRegression(class_weight="balanced")  recall 0.900-0.953  F1 0.446-0.528
#     the same without the scaler                                   recall 0.904-0.954  F1 0.446-0.529
#     the advice: highest threshold with out-of-fold recall >= 0.85 recall 0.765-0.892  F1 0.542-0.644
#     a threshold at ~92% out-of-fold recall                        recall 0.888-0.963  F1 0.418-0.563
#   mutants (fail the recall test, which also asks for the F1, on every seed):
#     a plain logistic regression                                   recall 0.482-0.597
#     a guessed threshold of 0.45                                   recall 0.525-0.637
#     threshold 0.1 on the balanced model (floods the rare class)                       F1 0.254-0.323
#     the starter's public weights without training                                     F1 0.000-0.269
#     scaled for training, raw at prediction: recall 0.000-1.000, F1 0.000-0.475 (it fails the
#     recall test on all 81 seeds, the F1 test on 80: on seed 80 its recall is 0.616, F1 0.475)
# So recall >= 0.70 sits between 0.637 and 0.765, F1 >= 0.40 between 0.323 and 0.418. A
# threshold chosen on in-sample probabilities scored like the out-of-fold one at this size (8
# features, 8,000 rows; 30 seeds of the same family), so the starter calls that choice advice.
RECALL_TARGET = 0.70  # the starter advises >= 0.85 out-of-fold when tuning a threshold
F1_TARGET = 0.40
RARE_TRAIN_ROWS, RARE_FRESH_ROWS = 8_000, 20_000
RARE_FEATURES, RARE_WEIGHT_NORM, RARE_BIAS = 8, 4.0, -7.2  # about 5% positives

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

# `cross_validated_f1(X, y)` called while `build_pipeline` names the grader's reference
# pipeline (the learner's own is put back afterwards): Q2 is judged on Q2's work alone.
CV_WITH_REFERENCE_PIPELINE = """
from sklearn.linear_model import LogisticRegression as _LR
from sklearn.pipeline import make_pipeline as _make_pipeline
from sklearn.preprocessing import StandardScaler as _StandardScaler


def _reference_pipeline():
    return _make_pipeline(_StandardScaler(), _LR(max_iter=1000))


_missing = object()
_own = ns.get("build_pipeline", _missing)
ns["build_pipeline"] = _reference_pipeline
try:
    result = ns["cross_validated_f1"](X, y)
finally:
    if _own is _missing:
        del ns["build_pipeline"]
    else:
        ns["build_pipeline"] = _own
"""


# --------------------------------------------------------------------------- data
def notebook_data() -> tuple[np.ndarray, np.ndarray]:
    """The notebook's rows and labels (malignant = 1), in their order, rebuilt here."""
    X, y = load_breast_cancer(return_X_y=True)
    return X, 1 - y


def notebook_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The split the notebook is told to use, rebuilt here independently."""
    X, y = notebook_data()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=42)
    return X_tr, X_te, y_tr, y_te


def rare_problem(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A rare-event problem of the starter's kind drawn from the run's seed: weights of a fixed
    norm (the same difficulty for every seed) in a random direction, features on scales from
    0.1 to 100, offsets of 2 to 5 standard deviations. Returns (weights, scale, offset)."""
    world = np.random.default_rng([seed, 41])
    direction = world.normal(size=RARE_FEATURES)
    weights = RARE_WEIGHT_NORM * direction / np.linalg.norm(direction)
    scale = 10.0 ** world.uniform(-1.0, 2.0, size=RARE_FEATURES)
    offset = world.choice([-1.0, 1.0], size=RARE_FEATURES) * world.uniform(2.0, 5.0,
                                                                           size=RARE_FEATURES)
    return weights, scale, offset


def rare_rows(problem: tuple[np.ndarray, np.ndarray, np.ndarray], n_rows: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n_rows`` rows of ``problem`` (about 5% positives)."""
    weights, scale, offset = problem
    z = rng.normal(size=(n_rows, RARE_FEATURES))
    y = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-(z @ weights + RARE_BIAS)))).astype(int)
    return (z + offset) * scale, y


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
    """What the starter asks for: a StandardScaler, then a LogisticRegression with its default
    settings (max_iter raised; the default 100 converges on every data set here too)."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def quietly(work: Any) -> Any:
    """The grader's own computation, single-threaded, without warnings (a fold without
    positives warns; only the value matters)."""
    with warnings.catch_warnings(), single_threaded():
        warnings.simplefilter("ignore")
        return work()


def reference_cv_f1(X: np.ndarray, y: np.ndarray) -> float:
    """The grader's leak-free stratified CV of the reference pipeline."""
    return float(quietly(lambda: cross_val_score(reference_pipeline(), X, y, cv=CV,
                                                 scoring="f1").mean()))


def _raises_not_fitted(nb, ref, X: np.ndarray) -> bool:
    """Whether the kept object's predict refuses to run for want of a fit (the learner's
    answer: an unfitted estimator raises NotFittedError)."""
    try:
        nb.call(ref.attr("predict"), X)
    except LearnerFailure as exc:
        return "NotFittedError" in str(exc)
    return False


def _number(got: object, what: str) -> float:
    expect(got is not None, f"{what} is not set yet (it is None).")
    value = got if isinstance(got, (int, float, np.integer, np.floating)) and not isinstance(
        got, (bool, np.bool_)) else None
    expect(value is not None, f"{what} should be a single number (the mean F1 over the folds).")
    assert value is not None
    return float(value)


# --------------------------------------------------------------------------- Q1 pipeline
@pytest.fixture(scope="module")
def kernel_fit(nb, seed) -> dict[str, Any] | AssertionError:
    """``build_pipeline()`` observed from the outside, on rows the grader drew: whether a fresh
    one can predict before any fit (it must not), its probabilities on held-out rows after the
    grader fitted it in the kernel (labels of those rows stay here), and whether the *next*
    call returns an unfitted pipeline again (not the object the grader just fitted)."""
    rng = np.random.default_rng([seed, 31])
    X, y = _tabular(rng, 900, positive=0.3)
    X_tr, X_ho, y_tr, _y_ho = train_test_split(X, y, test_size=0.5, stratify=y,
                                               random_state=_seed(rng))
    nb_X_tr, _nb_X_te, nb_y_tr, _nb_y_te = notebook_split()
    try:
        first = nb.call("build_pipeline", keep=True)
        unfitted_first = _raises_not_fitted(nb, first, X_ho[:5])
        nb.call(first.attr("fit"), X_tr, y_tr, discard=True)
        proba = nb.call(first.attr("predict_proba"), X_ho)
        expect(isinstance(proba, np.ndarray) and proba.shape == (len(X_ho), 2),
               "the pipeline's predict_proba should give two probabilities per row.")
        second = nb.call("build_pipeline", keep=True)
        unfitted_next = _raises_not_fitted(nb, second, X_ho[:5])
        # leave the kernel as the notebook left it: where build_pipeline hands out one shared
        # object (the notebook's `model` too), the grader's fit above retrained it; the
        # notebook fitted it on its training rows, so the grader does the same
        nb.call(second.attr("fit"), nb_X_tr, nb_y_tr, discard=True)
    except AssertionError as exc:  # a LearnerFailure or a failed expect: the tests report it
        return exc
    return {"X_tr": X_tr, "y_tr": y_tr, "X_ho": X_ho, "proba": proba,
            "unfitted_first": unfitted_first, "unfitted_next": unfitted_next}


@points(1, question="q1")
def test_pipeline_structure(nb, kernel_fit):
    """build_pipeline returns a Pipeline: a StandardScaler, then a LogisticRegression with its
    default settings (checked by fitting it on new rows)"""
    try:
        pipe = rebuild(spec_of_call(nb, "build_pipeline", what="`build_pipeline()`"))
    except LearnerFailure as exc:
        raise LearnerFailure(f"{exc} build_pipeline should return a scikit-learn Pipeline of a "
                             "StandardScaler and a LogisticRegression.") from None
    expect(isinstance(pipe, Pipeline), "build_pipeline should return a scikit-learn Pipeline "
           "(Pipeline([...]) or make_pipeline(...)).")
    steps = [step for _name, step in pipe.steps]
    expect(len(steps) == 2 and isinstance(steps[0], StandardScaler)
           and isinstance(steps[1], LogisticRegression),
           "the pipeline should have two steps: a StandardScaler, then a LogisticRegression.")
    if isinstance(kernel_fit, AssertionError):
        raise kernel_fit
    want = quietly(lambda: reference_pipeline().fit(kernel_fit["X_tr"], kernel_fit["y_tr"])
                   .predict_proba(kernel_fit["X_ho"]))
    expect_close(kernel_fit["proba"], want, "fitted by the grader on new rows, your pipeline "
                 "does not predict like StandardScaler() + LogisticRegression() with the default "
                 "settings the text asks for (C=1.0, the lbfgs solver, no class weights; only "
                 "max_iter may be raised): leave the other settings alone.", rtol=1e-5,
                 atol=1e-6)


@points(1, question="q1")
def test_pipeline_new_unfitted(kernel_fit):
    """build_pipeline returns a NEW, unfitted pipeline on every call"""
    if isinstance(kernel_fit, AssertionError):
        raise kernel_fit
    expect(kernel_fit["unfitted_first"], "build_pipeline() returned a pipeline that is already "
           "fitted: create a NEW pipeline inside the function and return it without calling fit "
           "(not one shared object that was fitted elsewhere, e.g. as `model`): whoever uses it "
           "fits it on their own rows.")
    expect(kernel_fit["unfitted_next"], "after the grader fitted one pipeline from "
           "build_pipeline(), the next call returned a fitted one: each call must create a NEW "
           "pipeline inside the function, not hand out one shared object.")


# --------------------------------------------------------------------------- Q2 CV
def _cv_mistake(value: float, X: np.ndarray, y: np.ndarray) -> str | None:
    """Name the classic mistake ``value`` matches, computed with the reference pipeline."""
    ref = reference_pipeline()
    candidates = [
        ("plain KFold does not keep the class ratio in each fold (it matters when one class is "
         "rare): use StratifiedKFold(n_splits=5, shuffle=True, random_state=0).",
         lambda: cross_val_score(ref, X, y, cv=KFold(5, shuffle=True, random_state=0),
                                 scoring="f1").mean()),
        ("the folds are not shuffled: use StratifiedKFold(n_splits=5, shuffle=True, "
         "random_state=0) as cv, not cv=5 or unshuffled folds.",
         lambda: cross_val_score(ref, X, y, cv=5, scoring="f1").mean()),
        ("that is the accuracy: pass scoring='f1'. Accuracy flatters a classifier when one class "
         "is rare.",
         lambda: cross_val_score(ref, X, y, cv=CV, scoring="accuracy").mean()),
        ("the scaler was fitted on all rows before cross-validation (data leakage): put the "
         "scaler inside the pipeline and cross-validate build_pipeline() on the raw features.",
         lambda: cross_val_score(LogisticRegression(max_iter=1000),
                                 StandardScaler().fit_transform(X), y, cv=CV,
                                 scoring="f1").mean()),
        ("that is an F1 score on the training rows themselves: cross-validate instead.",
         lambda: f1_score(y, reference_pipeline().fit(X, y).predict(X), zero_division=0.0)),
    ]
    for hint, compute in candidates:
        if np.isclose(value, float(quietly(compute)), rtol=1e-9, atol=1e-12):
            return hint
    return None


@points(2, question="q2")
def test_cross_validated_f1_matches_leak_free_cv(nb, rng):
    """cross_validated_f1 of a pipeline equals the grader's stratified, shuffled 5-fold F1 of
    it, on new data"""
    expect(nb.has("cross_validated_f1"), "`cross_validated_f1` is not defined: did you run its "
           "cell?")
    # a rare class (plain KFold and accuracy give other numbers) and one data set with a single
    # extreme row, where a scaler fitted on every row (leakage) visibly changes the folds' F1.
    # Checked grader-side on 8 seeds: on the worse of the two sets each mistake moves the mean F1
    # by at least 0.019 (plain KFold), 0.027 (unshuffled), 0.027 (another random_state), 0.50
    # (accuracy), 0.28 (macro F1), 0.083 (scaler fitted before CV), 0.005 (median of the folds),
    # 0.033 (F1 on the training rows); the test's tolerance is rtol=1e-6.
    for X, y in (_tabular(rng, 300, positive=0.1), _with_outlier(rng)):
        got = _number(nb.eval_untrusted(CV_WITH_REFERENCE_PIPELINE, X=X, y=y,
                                        what="`cross_validated_f1(X, y)`"),
                      "cross_validated_f1")
        want = reference_cv_f1(X, y)
        if not np.isclose(got, want, rtol=1e-6, atol=1e-9):
            hint = _cv_mistake(got, X, y) or (
                "use cross_val_score(build_pipeline(), X, y, scoring='f1', "
                "cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=0)).mean() on the X, "
                "y it is given.")
            expect(False, "cross_validated_f1(X, y) does not match a stratified, shuffled "
                          f"5-fold cross-validated F1 of build_pipeline(): {hint}")


@points(1, question="q2")
def test_reported_cv_f1(nb):
    """`cv_f1` is the stratified 5-fold F1 of the pipeline on the training split"""
    X_tr, _X_te, y_tr, _y_te = notebook_split()
    got = _number(nb.get("cv_f1"), "`cv_f1`")
    want = reference_cv_f1(X_tr, y_tr)
    if np.isclose(got, want, rtol=1e-6, atol=1e-9):
        return
    hint = _cv_mistake(got, X_tr, y_tr)
    if hint is None and np.isclose(got, reference_cv_f1(*notebook_data()), rtol=1e-6):
        hint = "that is cross_validated_f1 of every row: the test rows must stay untouched."
    expect(False, "`cv_f1` is not cross_validated_f1(X_train, y_train) of a StandardScaler + "
           "LogisticRegression (default settings) on the split the notebook makes: "
           + (hint or "cross-validate build_pipeline() on X_train, y_train only."))


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


def _metric(got: dict, key: str, what: str = "evaluate's dict") -> float:
    expect(key in got, f"{what} has no '{key}' key.")
    value = got[key]
    expect(isinstance(value, (int, float, np.integer, np.floating))
           and not isinstance(value, (bool, np.bool_)), f"{what}: '{key}' should be a number.")
    return float(value)


@points(1, question="q3")
def test_evaluate_confusion_matrix(evaluated):
    """evaluate: the confusion matrix, a 2 x 2 NumPy array, of the given model's predictions"""
    got, y, pred, _score = evaluated
    expect("confusion_matrix" in got, "evaluate's dict has no 'confusion_matrix' key.")
    expect(isinstance(got["confusion_matrix"], np.ndarray), "the confusion matrix should be a "
           "2 x 2 NumPy array (what confusion_matrix(y, y_pred) returns), not a "
           f"{type(got['confusion_matrix']).__name__}.")
    cm = as_numbers(got["confusion_matrix"], "the confusion matrix should be a 2 x 2 table of "
                    "counts.")
    want = confusion_matrix(y, pred)
    expect(cm.shape == (2, 2), "the confusion matrix should be 2 x 2.")
    expect(not np.array_equal(cm, want.T), "the confusion matrix is transposed: rows are the "
           "true classes, columns the predictions: confusion_matrix(y_true, y_pred).")
    expect_close(cm, want, "the confusion matrix does not match the predictions of the model "
                 "evaluate was given, on the rows it was given: predict X with that model, "
                 "then confusion_matrix(y, y_pred).")


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
                 "the predictions of the model evaluate was given (precision_score(y, y_pred): "
                 "the true labels first).", rtol=1e-9)
    expect_close(recall, want_r, "recall is wrong: it is TP / (TP + FN) for class 1 "
                 "(recall_score(y, y_pred): the true labels first).", rtol=1e-9)


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
def reference_model() -> dict[str, np.ndarray]:
    """The reference pipeline fitted here on the notebook's training split: what `model`
    should predict, and the metrics `test_metrics` should hold."""
    X_tr, X_te, y_tr, _y_te = notebook_split()

    def predictions() -> dict[str, np.ndarray]:
        model = reference_pipeline().fit(X_tr, y_tr)
        return {"proba_te": model.predict_proba(X_te), "pred_te": model.predict(X_te),
                "pred_tr": model.predict(X_tr), "proba_tr": model.predict_proba(X_tr)}

    return dict(quietly(predictions))


@points(1, question="q3")
def test_model_fitted_on_training_split(nb, reference_model):
    """`model` is build_pipeline() fitted on the raw training split only"""
    _X_tr, X_te, _y_tr, _y_te = notebook_split()
    expect(nb.has("model"), "`model` is not defined: fit build_pipeline() on X_train, y_train.")
    expect(nb.has("model.predict_proba"), "`model` is not set yet (it has no predict_proba): "
           "fit build_pipeline() on X_train, y_train and store the fitted pipeline in `model`.")
    try:
        got = nb.call("model.predict_proba", X_te)
    except LearnerFailure as exc:
        raise LearnerFailure(f"`model` cannot predict probabilities for the raw test rows "
                             f"({str(exc)[:160]}): it should be build_pipeline() fitted on "
                             "X_train, y_train.") from None
    got_numbers = as_numbers(got, "`model.predict_proba` should return a table of numbers.")
    everything = quietly(lambda: reference_pipeline().fit(*notebook_data()).predict_proba(X_te))
    expect(got_numbers.shape != everything.shape
           or not np.allclose(got_numbers, everything, rtol=1e-5, atol=1e-7),
           "`model` was fitted on every row, test rows included: fit it on X_train, y_train "
           "only, or the test scores are optimistic.")
    expect_close(got_numbers, reference_model["proba_te"], "`model` is not a StandardScaler + "
                 "LogisticRegression (default settings) fitted on the raw X_train, y_train of "
                 "the split the notebook makes: don't scale or fit on the whole dataset before "
                 "splitting, and don't fit on the test rows (the pipeline's scaler must learn "
                 "from the training rows only).", rtol=1e-5, atol=1e-7)


@points(1, question="q3")
def test_reported_metrics_are_held_out(nb, reference_model):
    """`test_metrics` are evaluate(model, X_test, y_test): measured on the held-out split"""
    _X_tr, _X_te, y_tr, y_te = notebook_split()
    reported = nb.get("test_metrics")
    expect_type(reported, dict, "`test_metrics` should be the dict evaluate returns")
    assert isinstance(reported, dict)
    what = "`test_metrics`"
    f1, auc = _metric(reported, "f1", what), _metric(reported, "roc_auc", what)
    precision, recall = _metric(reported, "precision", what), _metric(reported, "recall", what)
    pred, score = reference_model["pred_te"], reference_model["proba_te"][:, 1]
    want_f1 = f1_score(y_te, pred, zero_division=0.0)
    train_f1 = f1_score(y_tr, reference_model["pred_tr"], zero_division=0.0)
    train_auc = roc_auc_score(y_tr, reference_model["proba_tr"][:, 1])
    expect(not (np.isclose(f1, train_f1, rtol=1e-9) and np.isclose(auc, train_auc, rtol=1e-9)),
           "`test_metrics` were measured on the training rows: evaluate on X_test, y_test (rows "
           "the model never saw), or the scores are optimistic.")
    want = [want_f1, roc_auc_score(y_te, score), precision_score(y_te, pred, zero_division=0.0),
            recall_score(y_te, pred)]
    expect_close([f1, auc, precision, recall], want,
                 "`test_metrics` ('f1', 'roc_auc', 'precision', 'recall') do not match a "
                 "StandardScaler + LogisticRegression (default settings) fitted on X_train, "
                 "y_train and evaluated on X_test, y_test.", rtol=1e-6)
    expect("confusion_matrix" in reported, "`test_metrics` has no 'confusion_matrix' key.")
    expect_close(reported["confusion_matrix"], confusion_matrix(y_te, pred),
                 "`test_metrics['confusion_matrix']` does not match the model evaluated on "
                 "X_test, y_test (rows = true class, columns = predicted class).")


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
    """train_imbalanced on rows of a secret problem drawn from the seed, predict_imbalanced on
    fresh rows of the same problem whose labels stay here (one run shared by the recall and F1
    tests)."""
    problem = rare_problem(seed)
    rng = np.random.default_rng([seed, 3])
    X_tr, y_tr = rare_rows(problem, RARE_TRAIN_ROWS, rng)
    X_ho, y_ho = rare_rows(problem, RARE_FRESH_ROWS, rng)
    model = nb.call("train_imbalanced", X_tr, y_tr, keep=True, timeout=60)
    pred = nb.call("predict_imbalanced", model, X_ho)
    expect(isinstance(pred, np.ndarray), "predict_imbalanced should return a 1-D NumPy array of "
           f"0/1 labels, not a {type(pred).__name__}.")
    expect(pred.shape == (len(X_ho),), "predict_imbalanced should return one 0/1 label per row "
           "(a 1-D array).")
    expect(bool(np.isin(pred, [0, 1]).all()), "predict_imbalanced should return 0/1 labels.")
    return y_ho, np.asarray(pred).astype(int)


@points(2, question="q4")
def test_imbalanced_minority_recall(rare_predictions):
    """the rare class is found on fresh rows: minority recall of at least 0.70 (with the F1
    the text also requires, so that flagging every row finds nothing)"""
    y, pred = rare_predictions
    recall = recall_score(y, pred)
    expect(bool(recall >= RECALL_TARGET),
           f"on fresh rows your model finds only {recall:.0%} of the rare cases (at least "
           f"{RECALL_TARGET:.0%} are required). Its accuracy still looks high because 95% of rows "
           "are negative: use class_weight='balanced', or a lower decision threshold chosen so "
           "that the out-of-fold recall on the training rows is at least 0.85.")
    expect(bool(f1_score(y, pred, zero_division=0.0) >= F1_TARGET),
           f"your model finds {recall:.0%} of the rare cases only by flagging far too many rows "
           f"(its F1 is below the {F1_TARGET:.2f} also required): recall counts only with a "
           "model that still tells the classes apart.")


@points(2, question="q4")
def test_imbalanced_f1(rare_predictions):
    """the rare class is found without flooding it with false alarms: F1 of at least 0.40"""
    y, pred = rare_predictions
    f1 = f1_score(y, pred, zero_division=0.0)
    expect(bool(f1 >= F1_TARGET),
           f"on fresh rows your model's F1 for the rare class is {f1:.2f} (at least "
           f"{F1_TARGET:.2f} is required): too many missed cases or too many false alarms. Weight "
           "the classes or tune the threshold on training data (cross-validation), train on the "
           "rows train_imbalanced is given, and transform the rows you predict exactly as the "
           "rows you trained on.")
