"""Notebooks that make the grader's *own* work expensive or noisy (issue 21): a reference
solution with cells appended that hand the graders a spec, a file or a value to choke on.

The kernel side of each attack stays cheap: an estimator the graders must refit is a look-alike
(a subclass renamed to the library's class, so its spec names the real one) whose ``fit`` does
nothing, so only the grader's refit of the real class would be expensive.
"""

from __future__ import annotations

from dataclasses import dataclass

import nbformat
from nbformat.v4 import new_code_cell
from tests.conftest import solution

# A class that reports itself as `module.name` but fits in no time (in the kernel only).
LOOKALIKE = '''
import numpy as _np


def _lookalike(base, module):
    class Fake(base):
        def fit(self, X, y=None, **kw):
            try:
                self.classes_ = _np.array([0, 1])
            except AttributeError:  # a search's classes_ is its best estimator's
                pass
            return self

        def predict(self, X):
            return _np.zeros(len(X), dtype=int)

        def predict_proba(self, X):
            return _np.full((len(X), 2), 0.5)

        def decision_function(self, X):
            return _np.zeros(len(X))

        def score(self, X, y=None):
            return 0.5

    Fake.__name__ = Fake.__qualname__ = base.__name__
    Fake.__module__ = module
    return Fake
'''

BIG_MLP = LOOKALIKE + '''
from sklearn.neural_network import MLPClassifier

BigMLP = _lookalike(MLPClassifier, "sklearn.neural_network._multilayer_perceptron")


def build_pipeline():
    return Pipeline([("scale", StandardScaler()),
                     ("clf", BigMLP(hidden_layer_sizes=(5000, 5000)))])


model = build_pipeline().fit(X_train, y_train)
'''

NESTED_BAGGING = LOOKALIKE + '''
from sklearn.ensemble import BaggingClassifier

Bagging = _lookalike(BaggingClassifier, "sklearn.ensemble._bagging")


def build_pipeline():
    inner = BaggingClassifier(BaggingClassifier(n_estimators=300), n_estimators=300)
    return Pipeline([("scale", StandardScaler()), ("clf", Bagging(inner, n_estimators=300))])


model = build_pipeline().fit(X_train, y_train)
'''

HUGE_GRID = LOOKALIKE + '''
Grid = _lookalike(GridSearchCV, "sklearn.model_selection._search")


def build_search():
    grid = {"num_leaves": list(range(2, 1002)), "learning_rate": [i / 1000 for i in range(1, 1001)]}
    return Grid(LGBMClassifier(n_estimators=100, n_jobs=1, random_state=0, verbose=-1), grid,
                cv=CV, scoring="roc_auc")


search = build_search().fit(X_train, y_train)
'''

VERBOSE_SVC = '''
from sklearn.svm import SVC


def build_pipeline():
    return Pipeline([("scale", StandardScaler()),
                     ("clf", SVC(probability=True, verbose=True, random_state=0))])
'''

# month 3: an answer too large for any number type, and a model without predict_proba
HUGE_VALUES_3 = '''
from sklearn.svm import LinearSVC

cv_f1 = 10**400
model = Pipeline([("scale", StandardScaler()), ("clf", LinearSVC())]).fit(X_train, y_train)
'''

# month 4: the same, as feature indices and as a search over a model without predict_proba
HUGE_VALUES_4 = '''
from sklearn.svm import LinearSVC


def top_features(X, y, k):
    return [10**400] * k


search = GridSearchCV(LinearSVC(), {"C": [0.01, 0.1, 1.0, 10.0]}, cv=CV,
                      scoring="roc_auc").fit(X_train, y_train)
'''

BIG_PNG = '''
from PIL import Image


def scatter_plot(df, path):
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(df["age"], df["income"], c=df["purchased"], cmap="coolwarm", s=40)
    image = Image.new("RGB", (8000, 8000), "white")
    image.paste((200, 30, 30), (100, 100, 4000, 4000))
    image.save(path, optimize=True)  # a few hundred kB: the grader's limits allow the file
    return fig
'''


@dataclass(frozen=True)
class Attack:
    name: str
    month: str
    cells: tuple[str, ...]
    fails: dict[str, tuple[str, ...]]  # tests that must fail -> words their feedback holds


ATTACKS = [
    Attack("png_8000x8000", "month1", (BIG_PNG,), {
        "test_plot_saved_as_png": ("8000 x 8000", "limit is 12,000,000 pixels")}),
    # month 3 judges `model` against the grader's own reference pipeline (no refit of the
    # learner's spec there); build_pipeline's spec is still rebuilt, under the budget
    Attack("mlp_5000x5000", "month3", (BIG_MLP,), {
        "test_pipeline_structure": ("hidden_layer_sizes", "weights", "limit"),
        "test_model_fitted_on_training_split": ("StandardScaler + LogisticRegression",)}),
    Attack("nested_bagging", "month3", (NESTED_BAGGING,), {
        "test_pipeline_structure": ("BaggingClassifier", "n_estimators=300", "limit"),
        "test_model_fitted_on_training_split": ("StandardScaler + LogisticRegression",)}),
    Attack("huge_search_grid", "month4", (HUGE_GRID,), {
        "test_search_is_unfitted_cv_search": ("1,000,000 candidates", "limit"),
        "test_search_no_test_peeking": ("1,000,000 candidates", "limit")}),
    Attack("verbose_svc", "month3", (VERBOSE_SVC,), {
        "test_pipeline_structure": ("two steps",)}),
    Attack("huge_values_month3", "month3", (HUGE_VALUES_3,), {
        "test_reported_cv_f1": ("64-bit",),
        "test_model_fitted_on_training_split": ("predict_proba",)}),
    Attack("huge_values_month4", "month4", (HUGE_VALUES_4,), {
        "test_top_features": ("64-bit",),
        "test_search_no_test_peeking": ("predict_proba",)}),
]


def attack_notebook(attack: Attack) -> nbformat.NotebookNode:
    """The month's reference solution with the attack's cells appended."""
    nb = solution(attack.month)
    nb.cells.extend(new_code_cell(c) for c in attack.cells)
    return nb
