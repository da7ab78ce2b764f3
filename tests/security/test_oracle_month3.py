"""Design-aware red team for month 3: notebooks written by someone who has read the graders.

Month 3's graders once ran their cross-validation inside the learner's kernel and trusted
``describe``; every case below would have earned points there. Now the kernel is an oracle: the
pipeline is rebuilt in the grader from its spec and cross-validated there, a fitted model is
judged by its predictions on fresh rows whose labels never enter the kernel, and ``evaluate``
is judged against metrics of a model whose coefficients the grader chose. Each case is graded
through the real pipeline in each tier and must earn exactly the points of its honest parts
(the exact passed set), with a verdict (graded, every failure explained) and nothing left
behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import mutant
from tests.security.oracle_attacks import assert_honest_verdict, grade_attack
from tests.security.redteam_support import TIERS, assert_nothing_survived

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

ALL = frozenset({
    "test_pipeline_structure", "test_pipeline_new_unfitted",
    "test_cross_validated_f1_matches_leak_free_cv", "test_reported_cv_f1",
    "test_evaluate_confusion_matrix", "test_evaluate_precision_recall", "test_evaluate_f1",
    "test_evaluate_roc_auc", "test_model_fitted_on_training_split",
    "test_reported_metrics_are_held_out", "test_majority_accuracy",
    "test_imbalanced_minority_recall", "test_imbalanced_f1",
})
SECRET_SEED = 3_141_592_653  # an official grade's seed: not one a notebook can guess

# A LogisticRegression that, renamed to scikit-learn's own, answers predict() with the labels it
# finds in its callers' frames: `y[test]` in a cross-validation loop, `y` in evaluate(). The
# notebook's own CV and metrics come out perfect; the grader's CV of the rebuilt (real) class
# and its metrics of the real model do not.
FRAME_READER = '''
import sys


class FrameReader(LogisticRegression):
    def predict(self, X):
        frame = sys._getframe(1)
        while frame is not None:
            local = frame.f_locals
            for name in ("y", "y_test", "y_true"):
                value = local.get(name)
                if isinstance(value, np.ndarray) and value.ndim == 1:
                    test = local.get("test")
                    if isinstance(test, np.ndarray) and len(test) == len(X):
                        return value[test]
                    if len(value) == len(X):
                        return value
            frame = frame.f_back
        return super().predict(X)


FrameReader.__name__ = FrameReader.__qualname__ = "LogisticRegression"
FrameReader.__module__ = "sklearn.linear_model._logistic"


def build_pipeline():
    return Pipeline([("scale", StandardScaler()), ("clf", FrameReader(max_iter=1000))])
'''

# Nothing honest: a constant model renamed to Pipeline with the reference's get_params; an
# audit hook that shows an honest factory only to code that asks for a spec; patched
# cross_val_score and metrics; shadowed builtins; copied numbers; a memorising fit.
FORGE_EVERYTHING = '''
import builtins
import sys

import numpy as np
import sklearn.metrics
import sklearn.model_selection
from sklearn.datasets import load_breast_cancer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


class Forged(DummyClassifier):
    def __init__(self, strategy="constant", constant=1):
        super().__init__(strategy=strategy, constant=constant)

    def get_params(self, deep=True):
        return {"steps": [("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))],
                "memory": None, "transform_input": None, "verbose": False}


Forged.__name__ = Forged.__qualname__ = "Pipeline"
Forged.__module__ = "sklearn.pipeline"


def honest():
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))])


def forged():
    return Forged()


def _hook(event, args):
    if event == "compile" and args:
        source = args[0]
        text = source.decode(errors="ignore") if isinstance(source, bytes) else str(source)
        if "_mlgrade" in text:  # grader code: an honest face for specs, the forgery otherwise
            main = sys.modules["__main__"].__dict__
            main["build_pipeline"] = honest if "_mlgrade_spec" in text else forged


sys.addaudithook(_hook)
build_pipeline = forged
ones = lambda *a, **k: np.ones(5)
sklearn.model_selection.cross_val_score = ones
cross_val_score = ones
for _name in ("f1_score", "precision_score", "recall_score", "roc_auc_score", "accuracy_score"):
    setattr(sklearn.metrics, _name, lambda *a, **k: 1.0)
hasattr = lambda *a: True  # shadowed in the notebook's namespace (the harness has its own)
compile = lambda *a, **k: builtins.compile("result = 'forged'", "<forged>", "exec")

X, y = load_breast_cancer(return_X_y=True)
y = 1 - y
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                    random_state=42)


def cross_validated_f1(X, y):
    return float(cross_val_score(build_pipeline(), X, y, scoring="f1").mean())


cv_f1 = 1.0
model = forged().fit(X_train, y_train)


def evaluate(model, X, y):
    n = len(y)
    return {"confusion_matrix": [[0, 0], [0, n]], "precision": 1.0, "recall": 1.0, "f1": 1.0,
            "roc_auc": 1.0}


test_metrics = evaluate(model, X_test, y_test)


def majority_accuracy(y_train, y_test):
    return 0.95


_memory = {}


def train_imbalanced(X, y):
    _memory.update({row.tobytes(): int(label) for row, label in zip(np.asarray(X), y)})
    return _memory


def predict_imbalanced(model, X):
    return np.array([model.get(row.tobytes(), 1) for row in np.asarray(X)])
'''

# The honest notebook, except Q4: the held-out rows are regenerated from the graders' own
# recipe under every seed a learner could know (the public default among them), and a
# memorising fit answers rows it has seen. Under an official grade's secret seed, neither
# finds anything and the plain model underneath misses the rare class.
REGENERATE_HELD_OUT = '''
def majority_accuracy(y_train, y_test):
    majority = np.bincount(np.asarray(y_train, dtype=int)).argmax()
    return float(np.mean(np.asarray(y_test) == majority))


def _graders_fresh_rows(seed):
    rng = np.random.default_rng([seed, 3])
    rng.integers(1_000, 2**31 - 1)
    return make_rare_events(20_000, int(rng.integers(1_000, 2**31 - 1)))


KNOWN_SEEDS = [20260101, 0, 1, 7, 42, 1234, 2024, 2025, 2026]


def train_imbalanced(X, y):
    memory = {row.tobytes(): int(label) for row, label in zip(np.asarray(X), y)}
    return {"memory": memory, "model": build_pipeline().fit(X, y)}


def predict_imbalanced(bundle, X):
    X = np.asarray(X)
    for seed in KNOWN_SEEDS:
        rows, labels = _graders_fresh_rows(seed)
        if rows.shape == X.shape and np.array_equal(rows, X):
            return labels
    guesses = bundle["model"].predict(X)
    return np.array([bundle["memory"].get(r.tobytes(), g) for r, g in zip(X, guesses)])
'''

CASES = {
    "predict-reads-labels-from-frames": (
        # cross_validated_f1 is judged with the grader's reference pipeline in place of the
        # learner's build_pipeline, so the honest CV function earns its points
        {"def build_pipeline": FRAME_READER},
        ALL - {"test_reported_cv_f1", "test_reported_metrics_are_held_out"}),
    "forged-names-params-hook-metrics-builtins": (
        # (the forgery goes last: its source contains the other cells' markers)
        {"load_breast_cancer(return": "pass", "def build_pipeline": "pass",
         "def cross_validated_f1": "pass", "def evaluate": "pass",
         "def majority_accuracy": FORGE_EVERYTHING},
        frozenset()),
    "regenerated-held-out-rows-and-memorising-fit": (
        {"def majority_accuracy": REGENERATE_HELD_OUT},
        ALL - {"test_imbalanced_minority_recall"}),
}


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_design_aware_attack_earns_nothing_unearned(name: str, tier: str, tmp_path: Path) -> None:
    cells, honest = CASES[name]
    graded = grade_attack("month3", mutant("month3", cells), tier, tmp_path, seed=SECRET_SEED)
    assert_honest_verdict(graded, set(honest))
    assert_nothing_survived(graded, "mlgrade-oracle-month3", [])
