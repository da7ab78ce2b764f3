"""Hidden graders for month 3 (supervised learning and evaluation).

The learner writes factories and functions; the grader chooses the data. Labels of every
held-out row stay in this process: the kernel gets features, returns predictions, and the
metrics are computed here. A reported CV score is compared with the grader's own leak-free
stratified CV of the learner's pipeline on the same rows, so leakage, plain KFold or accuracy
in place of F1 show up as a mismatch (with a hint naming the mistake when it matches one).
"""

from __future__ import annotations

import warnings

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
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlgrade.grading import LearnerFailure, Ref, expect, expect_close, expect_type, points

CV = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
RECALL_TARGET = 0.80  # the reference (class_weight="balanced") reaches about 0.94
F1_TARGET = 0.45  # the reference reaches about 0.55; predicting "rare" for everyone gets ~0.1

IS_FITTED = """
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
try:
    check_is_fitted(p)
    result = True
except NotFittedError:
    result = False
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


def reference_pipeline() -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


# --------------------------------------------------------------------------- kernel helpers
def _fit(nb, X: np.ndarray, y: np.ndarray) -> Ref:
    """A fresh ``build_pipeline()`` fitted in the kernel on grader-chosen rows."""
    pipe = nb.call("build_pipeline", keep=True)
    nb.call(pipe.attr("fit"), X, y, keep=True)
    return pipe


def _labels(nb, target, X: np.ndarray, what: str) -> np.ndarray:
    pred = nb.call(target, X)
    expect(isinstance(pred, np.ndarray) and pred.shape == (len(X),),
           f"{what} should return one 0/1 label per row (a 1-D array).")
    expect(bool(np.isin(pred, [0, 1]).all()), f"{what} should return labels 0 and 1 only.")
    return pred.astype(int)


CV_PREDICTIONS = """
predictions = []
for train, test in folds:
    pipe = ns["build_pipeline"]()
    pipe.fit(X[train], y[train])
    predictions.append(np.asarray(pipe.predict(X[test])))
result = predictions
"""


def learner_cv_f1(nb, X: np.ndarray, y: np.ndarray) -> float:
    """The grader's leak-free stratified CV of the learner's own pipeline: a fresh
    ``build_pipeline()`` per fold, fitted in the kernel; F1 computed here."""
    folds = list(CV.split(X, y))
    preds = nb.eval(CV_PREDICTIONS, folds=[list(f) for f in folds], X=X, y=y,
                    what="build_pipeline() fitted on each cross-validation fold")
    expect(isinstance(preds, list) and len(preds) == len(folds),
           "build_pipeline() could not be cross-validated.")
    scores = []
    for (_train, test), pred in zip(folds, preds, strict=True):
        expect(isinstance(pred, np.ndarray) and pred.shape == test.shape,
               "the pipeline's predict should return one label per row.")
        scores.append(f1_score(y[test], pred, zero_division=0.0))
    return float(np.mean(scores))


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
        with warnings.catch_warnings():  # folds without positives warn; only the value matters
            warnings.simplefilter("ignore")
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


# --------------------------------------------------------------------------- Q1 pipeline
@points(1, question="q1")
def test_pipeline_structure(nb):
    """build_pipeline returns an unfitted Pipeline: StandardScaler, then LogisticRegression"""
    pipe = nb.call("build_pipeline", keep=True)
    info = nb.describe(pipe)
    expect("sklearn.pipeline.Pipeline" in info.get("mro", []),
           "build_pipeline should return a scikit-learn Pipeline (Pipeline([...]) or "
           "make_pipeline(...)).")
    steps = [kind for _name, kind in info.get("steps", [])]
    expect(len(steps) == 2 and steps[0].endswith(".StandardScaler")
           and steps[1].endswith(".LogisticRegression"),
           "the pipeline should have two steps: a StandardScaler, then a LogisticRegression.")
    fitted = nb.eval(IS_FITTED, p=pipe, what="whether build_pipeline() is fitted")
    expect(fitted is False, "build_pipeline should return a NEW, unfitted pipeline: create it "
           "inside the function and don't call fit there (or return a global you fitted).")


@points(1, question="q1")
def test_pipeline_generalises(nb, rng):
    """build_pipeline, fitted by the grader, predicts rows it never saw about as well as expected"""
    X, y = _tabular(rng, 900, positive=0.3)
    X_tr, X_ho, y_tr, y_ho = train_test_split(X, y, test_size=0.5, stratify=y,
                                              random_state=_seed(rng))
    pipe = _fit(nb, X_tr, y_tr)
    pred = _labels(nb, pipe.attr("predict"), X_ho, "the pipeline's predict")
    got = f1_score(y_ho, pred, zero_division=0.0)
    want = f1_score(y_ho, reference_pipeline().fit(X_tr, y_tr).predict(X_ho), zero_division=0.0)
    expect(bool(got >= want - 0.05), "your pipeline predicts held-out rows much worse than a "
           "standard scaler + logistic regression: check both steps and their settings (features "
           "here have very different scales).")


# --------------------------------------------------------------------------- Q2 CV
@points(2, question="q2")
def test_cross_validated_f1_matches_leak_free_cv(nb, rng):
    """cross_validated_f1 equals the grader's stratified 5-fold F1 of your pipeline, on new data"""
    # a rare class (plain KFold and accuracy give other numbers) and one data set with a single
    # extreme row, where a scaler fitted on every row (leakage) visibly changes the folds' F1
    for X, y in (_tabular(rng, 300, positive=0.1), _with_outlier(rng)):
        got = nb.call("cross_validated_f1", X, y)
        _check_cv(got, learner_cv_f1(nb, X, y), X, y, "cross_validated_f1")


@points(1, question="q2")
def test_reported_cv_f1(nb):
    """`cv_f1` is the stratified 5-fold F1 of your pipeline on the training split"""
    X_tr, _X_te, y_tr, _y_te = notebook_split()
    _check_cv(nb.get("cv_f1"), learner_cv_f1(nb, X_tr, y_tr), X_tr, y_tr, "`cv_f1`")


# --------------------------------------------------------------------------- Q3 evaluation
FIT_OTHER_MODEL = ("from sklearn.linear_model import LogisticRegression\n"
                   "result = LogisticRegression(C=C, max_iter=5000).fit(X, y)\n")


def _evaluated(nb, rng: np.random.Generator) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """``evaluate`` called on a model the grader fitted and rows it held out; returns the
    learner's dict, the true labels and the model's own predictions and probabilities."""
    for _attempt in range(10):  # until FP != FN, so that a transposed matrix is detectable
        X, y = _tabular(rng, 500, positive=0.35)
        X = X / np.logspace(-2, 3, X.shape[1])  # a plain model, so unscaled features are fine
        X_tr, X_ho, y_tr, y_ho = train_test_split(X, y, test_size=0.4, random_state=_seed(rng))
        model = nb.eval(FIT_OTHER_MODEL, X=X_tr, y=y_tr, C=float(rng.uniform(0.01, 0.2)),
                        keep=True, what="a model fitted by the grader")
        pred = nb.call(model.attr("predict"), X_ho)
        cm = confusion_matrix(y_ho, pred)
        if cm[0, 1] != cm[1, 0]:
            break
    got = nb.call("evaluate", model, X_ho, y_ho)
    expect_type(got, dict, "evaluate should return a dict")
    score = nb.call(model.attr("predict_proba"), X_ho)[:, 1]
    return got, y_ho, pred, score


def _metric(got: dict, key: str) -> float:
    expect(key in got, f"evaluate's dict has no '{key}' key.")
    value = got[key]
    expect(isinstance(value, (int, float)) and not isinstance(value, bool),
           f"evaluate's '{key}' should be a number.")
    return float(value)


@points(1, question="q3")
def test_evaluate_confusion_matrix(nb, rng):
    """evaluate: confusion matrix of the model's predictions on the rows it is given"""
    got, y, pred, _score = _evaluated(nb, rng)
    expect("confusion_matrix" in got, "evaluate's dict has no 'confusion_matrix' key.")
    cm = np.asarray(got["confusion_matrix"])
    want = confusion_matrix(y, pred)
    expect(cm.shape == (2, 2), "the confusion matrix should be 2 x 2.")
    if not np.array_equal(want, want.T):
        expect(not np.array_equal(cm, want.T), "the confusion matrix is transposed: rows are "
               "the true classes, columns the predictions: confusion_matrix(y_true, y_pred).")
    expect_close(cm, want, "the confusion matrix does not match the model's predictions on the "
                 "rows evaluate was given: predict X, then confusion_matrix(y, y_pred).")


@points(1, question="q3")
def test_evaluate_precision_recall(nb, rng):
    """evaluate: precision and recall of the positive class"""
    got, y, pred, _score = _evaluated(nb, rng)
    precision, recall = _metric(got, "precision"), _metric(got, "recall")
    want_p, want_r = precision_score(y, pred, zero_division=0.0), recall_score(y, pred)
    expect(not (np.isclose(precision, want_r) and np.isclose(recall, want_p)
                and not np.isclose(want_p, want_r)),
           "precision and recall are swapped: precision = TP / (TP + FP), "
           "recall = TP / (TP + FN).")
    expect_close(precision, want_p, "precision is wrong: it is TP / (TP + FP) for class 1, from "
                 "the model's predictions on the rows evaluate was given.", rtol=1e-9)
    expect_close(recall, want_r, "recall is wrong: it is TP / (TP + FN) for class 1.", rtol=1e-9)


@points(1, question="q3")
def test_evaluate_f1(nb, rng):
    """evaluate: F1 of the positive class"""
    got, y, pred, _score = _evaluated(nb, rng)
    f1 = _metric(got, "f1")
    expect(not np.isclose(f1, accuracy_score(y, pred), rtol=1e-9),
           "'f1' holds the accuracy: use f1_score(y, y_pred).")
    expect(not np.isclose(f1, f1_score(y, pred, average="macro", zero_division=0.0), rtol=1e-9),
           "'f1' is the macro average over both classes: report F1 of class 1 (the default "
           "binary average).")
    expect_close(f1, f1_score(y, pred, zero_division=0.0), "f1 is wrong: the harmonic mean of "
                 "precision and recall for class 1.", rtol=1e-9)


@points(1, question="q3")
def test_evaluate_roc_auc(nb, rng):
    """evaluate: ROC-AUC from the predicted probability of class 1"""
    got, y, pred, score = _evaluated(nb, rng)
    auc = _metric(got, "roc_auc")
    expect(not np.isclose(auc, roc_auc_score(y, pred), rtol=1e-9),
           "roc_auc was computed from hard 0/1 predictions: use the probability of class 1, "
           "model.predict_proba(X)[:, 1].")
    expect(not np.isclose(auc, 1 - roc_auc_score(y, score), rtol=1e-9),
           "roc_auc used the probability of class 0: take column 1 of predict_proba.")
    expect_close(auc, roc_auc_score(y, score), "roc_auc is wrong: roc_auc_score(y, "
                 "probability of class 1).", rtol=1e-9)


@points(1, question="q3")
def test_model_fitted_on_training_split(nb):
    """`model` is build_pipeline() fitted on the raw training split only"""
    X_tr, X_te, y_tr, _y_te = notebook_split()
    expect(nb.has("model"), "`model` is not defined: fit build_pipeline() on X_train, y_train.")
    pipe = _fit(nb, X_tr, y_tr)
    want = nb.call(pipe.attr("predict_proba"), X_te)
    try:
        got = nb.call("model.predict_proba", X_te)
    except LearnerFailure as exc:
        raise LearnerFailure(f"`model` cannot predict probabilities for the raw test rows "
                             f"({str(exc)[:160]}): it should be a fitted build_pipeline()."
                             ) from None
    expect_close(got, want, "`model` is not build_pipeline() fitted on the raw X_train, y_train: "
                 "don't scale or fit on the whole dataset before splitting, and don't fit on the "
                 "test rows (the pipeline's scaler must learn from the training rows only).",
                 rtol=1e-5, atol=1e-7)


@points(1, question="q3")
def test_reported_metrics_are_held_out(nb):
    """`test_metrics` are evaluate(model, X_test, y_test): measured on the held-out split"""
    X_tr, X_te, y_tr, y_te = notebook_split()
    reported = nb.get("test_metrics")
    expect_type(reported, dict, "`test_metrics` should be the dict evaluate returns")
    assert isinstance(reported, dict)
    pipe = _fit(nb, X_tr, y_tr)
    pred = _labels(nb, pipe.attr("predict"), X_te, "the pipeline's predict")
    score = nb.call(pipe.attr("predict_proba"), X_te)[:, 1]
    train_pred = _labels(nb, pipe.attr("predict"), X_tr, "the pipeline's predict")
    f1, auc = _metric(reported, "f1"), _metric(reported, "roc_auc")
    expect(not np.isclose(f1, f1_score(y_tr, train_pred, zero_division=0.0), rtol=1e-9) or
           np.isclose(f1, f1_score(y_te, pred, zero_division=0.0), rtol=1e-9),
           "`test_metrics` were measured on the training rows: evaluate on X_test, y_test (rows "
           "the model never saw), or the scores are optimistic.")
    want = [f1_score(y_te, pred, zero_division=0.0), roc_auc_score(y_te, score)]
    expect_close([f1, auc], want,
                 "`test_metrics` do not match build_pipeline() fitted on X_train and evaluated "
                 "on X_test, y_test.", rtol=1e-6)


# --------------------------------------------------------------------------- Q4 imbalance
@points(1, question="q4")
def test_majority_accuracy(nb, rng):
    """majority_accuracy: the accuracy of always predicting the training set's majority class"""
    for _ in range(4):
        p = float(rng.uniform(0.02, 0.98))
        y_train = (rng.random(int(rng.integers(20, 200))) < p).astype(int)
        while np.isclose(y_train.mean(), 0.5):  # no tie: the majority class must be clear
            y_train = (rng.random(len(y_train) + 1) < p).astype(int)
        y_test = (rng.random(int(rng.integers(20, 200))) < p).astype(int)
        majority = int(np.bincount(y_train, minlength=2).argmax())
        got = nb.call("majority_accuracy", y_train, y_test)
        expect_close(got, float(np.mean(y_test == majority)), "majority_accuracy is wrong: find "
                     "the most frequent class in y_train, predict it for every row of y_test, "
                     "and return the share of rows that are right.", rtol=1e-9)


@pytest.fixture(scope="module")
def rare_predictions(nb, seed) -> tuple[np.ndarray, np.ndarray]:
    """train_imbalanced on 3000 fresh rows, predict_imbalanced on 10000 other fresh rows
    (one run shared by the recall and F1 tests)."""
    rng = np.random.default_rng([seed, 3])
    X_tr, y_tr = make_rare_events(3000, _seed(rng))
    X_ho, y_ho = make_rare_events(10000, _seed(rng))
    model = nb.call("train_imbalanced", X_tr, y_tr, keep=True, timeout=60)
    pred = nb.call("predict_imbalanced", model, X_ho)
    expect(isinstance(pred, np.ndarray) and pred.shape == (len(X_ho),),
           "predict_imbalanced should return one 0/1 label per row (a 1-D array).")
    expect(bool(np.isin(pred, [0, 1]).all()), "predict_imbalanced should return 0/1 labels.")
    return y_ho, pred.astype(int)


@points(2, question="q4")
def test_imbalanced_minority_recall(rare_predictions):
    """the rare class is found on fresh rows: minority recall above the target"""
    y, pred = rare_predictions
    recall = recall_score(y, pred)
    expect(bool(recall >= RECALL_TARGET),
           f"on fresh rows your model finds only {recall:.0%} of the rare cases (the target is "
           f"{RECALL_TARGET:.0%}). Its accuracy still looks high because 95% of rows are "
           "negative: use class_weight='balanced' or a lower decision threshold.")


@points(2, question="q4")
def test_imbalanced_f1(rare_predictions):
    """the rare class is found without flooding it with false alarms: F1 above the target"""
    y, pred = rare_predictions
    f1 = f1_score(y, pred, zero_division=0.0)
    expect(bool(f1 >= F1_TARGET),
           f"on fresh rows your model's F1 for the rare class is {f1:.2f} (the target is "
           f"{F1_TARGET:.2f}): too many missed cases or too many false alarms. Weight the "
           "classes or tune the threshold on training data (cross-validation), not on a guess.")
