"""Month 3 graders are tested like code: the classic evaluation mistakes (leakage from scaling
before splitting, plain KFold, accuracy instead of F1, metrics on the training rows, numbers
copied from a run, ROC-AUC from hard labels, ignoring class imbalance) lose exactly the points
they should, with a hint that names the mistake; a correct solution written differently (other
names, a tuned threshold instead of class weights) earns full marks; the reference earns full
marks twice with the same scores and the starter earns zero."""

from __future__ import annotations

import pytest
from tests.conftest import (
    failed_tests,
    feedback_by_test,
    mutant,
    notebook_from_cells,
    solution,
    validated_runs,
)

pytestmark = [pytest.mark.kernel]

ALL_TESTS = {
    "test_pipeline_structure", "test_pipeline_generalises",
    "test_cross_validated_f1_matches_leak_free_cv", "test_reported_cv_f1",
    "test_evaluate_confusion_matrix", "test_evaluate_precision_recall", "test_evaluate_f1",
    "test_evaluate_roc_auc", "test_model_fitted_on_training_split",
    "test_reported_metrics_are_held_out", "test_majority_accuracy",
    "test_imbalanced_minority_recall", "test_imbalanced_f1",
}
TOTAL = 16
# tests that need only build_pipeline (and the notebook's split), for the short mutants
PIPELINE_TESTS = {"test_pipeline_structure", "test_pipeline_generalises"}

# --- leakage: the scaler sees every row before the split and before cross-validation ---------
SCALE_BEFORE_SPLIT = '''
X, y = load_breast_cancer(return_X_y=True)
y = 1 - y
X = StandardScaler().fit_transform(X)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=42
)
'''
LEAKY_CV = '''
def cross_validated_f1(X, y):
    X_scaled = StandardScaler().fit_transform(X)
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    scores = cross_val_score(LogisticRegression(max_iter=1000), X_scaled, y, cv=folds,
                             scoring="f1")
    return float(scores.mean())


cv_f1 = cross_validated_f1(X_train, y_train)
'''

# --- plain KFold, and accuracy instead of F1 -------------------------------------------------
KFOLD_CV = '''
from sklearn.model_selection import KFold


def cross_validated_f1(X, y):
    folds = KFold(n_splits=5, shuffle=True, random_state=0)
    return float(cross_val_score(build_pipeline(), X, y, cv=folds, scoring="f1").mean())


cv_f1 = cross_validated_f1(X_train, y_train)
'''
ACCURACY_CV = '''
def cross_validated_f1(X, y):
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    return float(cross_val_score(build_pipeline(), X, y, cv=folds).mean())


cv_f1 = cross_validated_f1(X_train, y_train)
'''

# --- a pipeline fitted inside the factory, and metrics measured on the training rows --------
FITTED_FACTORY = '''
def build_pipeline():
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))])
    return pipe.fit(X_train, y_train)
'''
TRAIN_SET_METRICS = '''
model = build_pipeline().fit(X_train, y_train)


def evaluate(model, X, y):
    y_pred = model.predict(X)
    return {"confusion_matrix": confusion_matrix(y, y_pred),
            "precision": precision_score(y, y_pred), "recall": recall_score(y, y_pred),
            "f1": f1_score(y, y_pred), "roc_auc": roc_auc_score(y, model.predict_proba(X)[:, 1])}


test_metrics = evaluate(model, X_train, y_train)
'''

# --- numbers copied from a run ---------------------------------------------------------------
HARD_CODED_CV = '''
def cross_validated_f1(X, y):
    return 0.962


cv_f1 = 0.962
'''
HARD_CODED_METRICS = '''
model = build_pipeline().fit(X_train, y_train)


def evaluate(model, X, y):
    return {"confusion_matrix": np.array([[88, 1], [3, 51]]), "precision": 0.981,
            "recall": 0.944, "f1": 0.962, "roc_auc": 0.997}


test_metrics = evaluate(model, X_test, y_test)
'''

# --- transposed confusion matrix, AUC from hard labels, and no care for the rare class ------
LABEL_AUC_TRANSPOSED = '''
model = build_pipeline().fit(X_train, y_train)


def evaluate(model, X, y):
    y_pred = model.predict(X)
    return {"confusion_matrix": confusion_matrix(y_pred, y),
            "precision": precision_score(y, y_pred), "recall": recall_score(y, y_pred),
            "f1": f1_score(y, y_pred), "roc_auc": roc_auc_score(y, y_pred)}


test_metrics = evaluate(model, X_test, y_test)
'''
IGNORES_IMBALANCE = '''
def majority_accuracy(y_train, y_test):
    majority = np.bincount(np.asarray(y_train, dtype=int)).argmax()
    return float(np.mean(np.asarray(y_test) == majority))


def train_imbalanced(X, y):
    return build_pipeline().fit(X, y)


def predict_imbalanced(model, X):
    return model.predict(X)
'''

# --- a correct solution written differently --------------------------------------------------
ALT_SETUP = '''
from collections import Counter

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

features, labels = load_breast_cancer(return_X_y=True)
labels = (labels == 0).astype(int)
X_train, X_test, y_train, y_test = train_test_split(
    features, labels, test_size=0.25, stratify=labels, random_state=42)
'''
ALT_MODEL = '''
def build_pipeline():
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))


def cross_validated_f1(X, y):
    X, y = np.asarray(X), np.asarray(y)
    splitter = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    scores = []
    for fit_rows, score_rows in splitter.split(X, y):
        est = clone(build_pipeline()).fit(X[fit_rows], y[fit_rows])
        guess = est.predict(X[score_rows])
        tp = np.sum((guess == 1) & (y[score_rows] == 1))
        scores.append(2 * tp / (np.sum(guess == 1) + np.sum(y[score_rows] == 1)))
    return float(np.mean(scores))


cv_f1 = cross_validated_f1(X_train, y_train)
model = build_pipeline()
model.fit(X_train, y_train)


def evaluate(fitted, X, y):
    y = np.asarray(y)
    guess = fitted.predict(X)
    tn, fp, fn, tp = confusion_matrix(y, guess, labels=[0, 1]).ravel()
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return dict(confusion_matrix=[[int(tn), int(fp)], [int(fn), int(tp)]],
                precision=float(precision), recall=float(recall),
                f1=float(2 * precision * recall / (precision + recall)),
                roc_auc=float(roc_auc_score(y, fitted.predict_proba(X)[:, 1])))


test_metrics = evaluate(model, X_test, y_test)
'''
ALT_IMBALANCE = '''
def majority_accuracy(y_train, y_test):
    most_common = Counter(np.asarray(y_train).tolist()).most_common(1)[0][0]
    return sum(int(v == most_common) for v in np.asarray(y_test)) / len(y_test)


def train_imbalanced(X, y):
    """Plain pipeline + a threshold that keeps ~92% recall in out-of-fold predictions."""
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=1)
    oof = cross_val_predict(build_pipeline(), X, y, cv=folds, method="predict_proba")[:, 1]
    positives = np.sort(oof[np.asarray(y) == 1])
    return {"model": build_pipeline().fit(X, y),
            "threshold": float(positives[int(0.08 * len(positives))])}


def predict_imbalanced(bundle, X):
    return (bundle["model"].predict_proba(X)[:, 1] >= bundle["threshold"]).astype(int)
'''


def _cells(*markers: str) -> list[str]:
    """Source of the reference's code cells that contain any of ``markers``, in order."""
    return [c.source for c in solution("month3").cells
            if c.cell_type == "code" and any(m in c.source for m in markers)]


def _short(*extra: str):
    """Imports, data and build_pipeline from the reference, then ``extra`` cells."""
    return notebook_from_cells(*_cells("import numpy", "load_breast_cancer(return",
                                       "def build_pipeline"), *extra)




@pytest.mark.slow  # the whole reference notebook runs: about 10 s on a busy machine
def test_leakage_scaler_fitted_on_all_rows(grade):
    nb = mutant("month3", {"load_breast_cancer(return": SCALE_BEFORE_SPLIT,
                    "def cross_validated_f1": LEAKY_CV})
    result = grade("month3", nb)
    assert result.status == "graded"
    assert failed_tests(result) == {"test_cross_validated_f1_matches_leak_free_cv",
                                    "test_reported_cv_f1", "test_model_fitted_on_training_split"}
    feedback = feedback_by_test(result)
    assert "data leakage" in feedback["test_cross_validated_f1_matches_leak_free_cv"]
    assert "data leakage" in feedback["test_reported_cv_f1"]
    assert "before splitting" in feedback["test_model_fitted_on_training_split"]


def test_plain_kfold(grade):
    result = grade("month3", _short(KFOLD_CV))
    assert failed_tests(result) == ALL_TESTS - PIPELINE_TESTS
    feedback = feedback_by_test(result)
    assert "plain KFold" in feedback["test_cross_validated_f1_matches_leak_free_cv"]
    assert "plain KFold" in feedback["test_reported_cv_f1"]


def test_accuracy_instead_of_f1(grade):
    result = grade("month3", _short(ACCURACY_CV))
    assert failed_tests(result) == ALL_TESTS - PIPELINE_TESTS
    feedback = feedback_by_test(result)
    assert "accuracy" in feedback["test_cross_validated_f1_matches_leak_free_cv"]
    assert "accuracy" in feedback["test_reported_cv_f1"]


@pytest.mark.slow  # the whole reference notebook runs: about 10 s on a busy machine
def test_fitted_factory_and_metrics_on_training_rows(grade):
    nb = mutant("month3", {"def build_pipeline": FITTED_FACTORY, "def evaluate": TRAIN_SET_METRICS})
    result = grade("month3", nb)
    assert failed_tests(result) == {"test_pipeline_structure",
                                    "test_reported_metrics_are_held_out"}
    feedback = feedback_by_test(result)
    assert "NEW, unfitted" in feedback["test_pipeline_structure"]
    assert "training rows" in feedback["test_reported_metrics_are_held_out"]


@pytest.mark.slow  # the whole reference notebook runs: about 10 s on a busy machine
def test_numbers_copied_from_a_run(grade):
    nb = mutant("month3", {"def cross_validated_f1": HARD_CODED_CV, "def evaluate": HARD_CODED_METRICS})
    result = grade("month3", nb)
    assert failed_tests(result) == {
        "test_cross_validated_f1_matches_leak_free_cv", "test_reported_cv_f1",
        "test_evaluate_confusion_matrix", "test_evaluate_precision_recall", "test_evaluate_f1",
        "test_evaluate_roc_auc", "test_reported_metrics_are_held_out"}


@pytest.mark.slow  # the whole reference notebook runs: about 10 s on a busy machine
def test_transposed_matrix_label_auc_and_ignored_imbalance(grade):
    nb = mutant("month3", {"def evaluate": LABEL_AUC_TRANSPOSED, "def majority_accuracy":
                    IGNORES_IMBALANCE})
    result = grade("month3", nb)
    assert failed_tests(result) == {"test_evaluate_confusion_matrix", "test_evaluate_roc_auc",
                                    "test_reported_metrics_are_held_out",
                                    "test_imbalanced_minority_recall"}
    feedback = feedback_by_test(result)
    assert "transposed" in feedback["test_evaluate_confusion_matrix"]
    assert "hard 0/1 predictions" in feedback["test_evaluate_roc_auc"]
    assert "class_weight='balanced'" in feedback["test_imbalanced_minority_recall"]
    assert result.score == TOTAL - 5


def test_correct_alternative_earns_full_marks(grade):
    nb = notebook_from_cells(ALT_SETUP, ALT_MODEL, _cells("def make_rare_events")[0],
                             ALT_IMBALANCE)
    result = grade("month3", nb)
    assert {t.id for t in result.tests} == ALL_TESTS
    assert [(t.id, t.feedback) for t in result.tests if t.status != "passed"] == []
    assert result.full_marks and result.score == TOTAL


@pytest.mark.slow
def test_reference_full_marks_twice_and_starter_zero():
    """Through `mlgrade validate`'s checks: full marks, deterministic, starter zero."""
    solution_run, again, starter = validated_runs("month3")
    assert solution_run.score == again.score == TOTAL and starter.score == 0
    assert [t.earned for t in solution_run.tests] == [t.earned for t in again.tests]
    assert {t.id for t in starter.tests} == ALL_TESTS
    assert all("not implemented yet" in t.feedback for t in starter.tests
               if t.id != "test_reported_metrics_are_held_out")
