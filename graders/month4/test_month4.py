"""Hidden graders for month 4. Every estimator is fitted on data drawn here, and every score is
computed here on rows the learner's notebook never had."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from mlgrade.grading import LearnerFailure, expect, expect_close, points

MODEL_CLASSES = {
    "random_forest": ("sklearn.", ".RandomForestClassifier"),
    "hist_gradient_boosting": ("sklearn.", ".HistGradientBoostingClassifier"),
    "lightgbm": ("lightgbm.", ".LGBMClassifier"),
    "xgboost": ("xgboost.", ".XGBClassifier"),
}

DESCRIBE_MODELS = """
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

def _fitted(m):
    try:
        check_is_fitted(m)
        return True
    except NotFittedError:
        return False
    except Exception:
        return None

def _plain(v):
    return v if v is None or isinstance(v, (bool, int, float, str)) else repr(type(v))

first, second = ns['build_models'](), ns['build_models']()
if not isinstance(first, dict):
    result = type(first).__name__
else:
    result = {}
    for key, model in first.items():
        params = model.get_params(deep=False) if hasattr(model, 'get_params') else {}
        size = params.get('max_iter') if 'max_iter' in params else params.get('n_estimators')
        result[str(key)] = {
            'mro': [c.__module__ + '.' + c.__qualname__ for c in type(model).__mro__],
            'fitted': _fitted(model),
            'fresh': not (isinstance(second, dict) and second.get(key) is model),
            'random_state': _plain(params.get('random_state')),
            'n_jobs': _plain(params.get('n_jobs', 1)),
            'size': _plain(size),
        }
"""

# the grader's own leak-free cross-validation of the learner's models (fresh copies)
GRADER_CV = """
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_score
folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
result = {str(name): float(cross_val_score(clone(model), X, y, cv=folds, scoring='roc_auc').mean())
          for name, model in ns['build_models']().items()}
"""

DESCRIBE_SEARCH = """
from sklearn.model_selection import GridSearchCV, ParameterGrid, RandomizedSearchCV
from sklearn.model_selection._search import BaseSearchCV
if not isinstance(search, BaseSearchCV):
    result = {'search': False, 'type': type(search).__name__}
else:
    if isinstance(search, GridSearchCV):
        candidates = len(ParameterGrid(search.param_grid))
    elif isinstance(search, RandomizedSearchCV):
        candidates = int(search.n_iter)
    else:
        candidates = 0
    cv = search.cv
    splits = cv if isinstance(cv, int) else None
    if hasattr(cv, 'get_n_splits'):
        splits = cv.get_n_splits()
    result = {
        'search': True,
        'fitted': hasattr(search, 'best_params_') or hasattr(search, 'cv_results_'),
        'scoring': search.scoring if isinstance(search.scoring, str) else repr(search.scoring),
        'splits': splits if isinstance(splits, int) else None,
        'stratified': 'Stratified' in type(cv).__name__ or isinstance(cv, int),
        'candidates': candidates,
    }
"""


def interaction_data(n: int, rng: np.random.Generator, d: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Labels driven by an interaction, a wave and a curve: trees shine, lines do not."""
    X = rng.normal(size=(n, d))
    logit = 2.0 * X[:, 0] * X[:, 1] + 2.0 * np.sin(2 * X[:, 2]) + 1.5 * (X[:, 3] ** 2 - 1)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return X, y


def notebook_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The same split as the notebook's setup cell."""
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    return X_train, X_test, y_train, y_test


# -- Q1 --------------------------------------------------------------------------------------
@points(2, question="q1")
def test_build_models(nb):
    """build_models returns the four unfitted, seeded, small ensembles"""
    info = nb.eval(DESCRIBE_MODELS, what="`build_models()`")
    expect(isinstance(info, dict), "build_models() should return a dict of name -> estimator.")
    expect(set(info) == set(MODEL_CLASSES), "build_models() should have exactly the keys "
           "'random_forest', 'hist_gradient_boosting', 'lightgbm' and 'xgboost'.")
    for key, (module, suffix) in MODEL_CLASSES.items():
        entry = info[key]
        ok_type = any(c.startswith(module) and c.endswith(suffix) for c in entry["mro"])
        expect(ok_type, f"build_models()['{key}'] is not a {suffix.lstrip('.')}.")
        expect(entry["fitted"] is False, f"build_models()['{key}'] is already fitted: return an "
               "unfitted estimator and let the caller fit it.")
        expect(entry["fresh"] is True, f"build_models() returns the same '{key}' object on every "
               "call: build new estimators inside the function.")
        expect(entry["random_state"] == 0, f"build_models()['{key}'] should have random_state=0 "
               "so that results repeat.")
        expect(key == "hist_gradient_boosting" or entry["n_jobs"] == 1,
               f"build_models()['{key}'] should use n_jobs=1 (the grader runs on few cores).")
        size = entry["size"]
        expect(size is None or (isinstance(size, int) and 1 <= size <= 200),
               f"build_models()['{key}'] is too big: use at most 200 trees / boosting rounds.")


# -- Q2 --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fresh_comparison(nb, seed) -> tuple[Any, Any]:
    """(learner's compare_models answer or its failure, the grader's CV) on one fresh dataset."""
    rng = np.random.default_rng([seed, 42])
    X, y = interaction_data(300, rng)
    try:
        models = nb.call("build_models", keep=True)
        got: Any = nb.call("compare_models", models, X, y, timeout=120)
    except LearnerFailure as exc:
        got = exc
    try:
        expected: Any = nb.eval(GRADER_CV, X=X, y=y, what="the models of `build_models()`",
                                timeout=120)
    except LearnerFailure as exc:
        expected = exc
    return got, expected


@points(1, question="q2")
def test_compare_models_returns_scores(fresh_comparison):
    """compare_models returns one ROC-AUC per model"""
    got, _ = fresh_comparison
    if isinstance(got, LearnerFailure):
        raise got
    expect(isinstance(got, dict) and set(got) == set(MODEL_CLASSES),
           "compare_models should return a dict with the same keys as the models it was given.")
    for key, value in got.items():
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        expect(is_number and 0.0 <= value <= 1.0,
               f"compare_models()['{key}'] should be a mean ROC-AUC, a float between 0 and 1.")


@points(2, question="q2")
def test_compare_models_matches_cv(fresh_comparison):
    """compare_models agrees with a leak-free 5-fold CV of the same models on new data"""
    got, expected = fresh_comparison
    for answer in (got, expected):
        if isinstance(answer, LearnerFailure):
            raise answer
    expect(isinstance(got, dict) and isinstance(expected, dict) and set(got) == set(expected),
           "compare_models should return a dict with the same keys as the models it was given.")
    for key in sorted(expected):
        value = got[key]
        expect(isinstance(value, (int, float)) and not isinstance(value, bool),
               f"compare_models()['{key}'] should be a float.")
        expect(value < expected[key] + 0.02 or value < 0.97,
               f"compare_models()['{key}'] is far above a 5-fold cross-validation of the same "
               "model on new data: was the model scored on the rows it was trained on (or the "
               "numbers copied from a run)? Score each fold on its held-out part.")
        expect_close(value, expected[key], f"compare_models()['{key}'] differs from a 5-fold "
                     "cross-validation of the same model: use the folds of CV, scoring='roc_auc', "
                     "and average the fold scores.", rtol=1e-6, atol=1e-6)


@points(1, question="q2")
def test_reported_cv_results(nb):
    """`cv_results` and `best_model_name` match a leak-free CV on the training split"""
    X_train, _, y_train, _ = notebook_split()
    reported = nb.get("cv_results")
    expect(isinstance(reported, dict) and set(reported) == set(MODEL_CLASSES),
           "`cv_results` should be compare_models(build_models(), X_train, y_train).")
    expected = nb.eval(GRADER_CV, X=X_train, y=y_train, what="the models of `build_models()`",
                       timeout=120)
    for key in sorted(expected):
        value = reported[key]
        expect(isinstance(value, (int, float)) and not isinstance(value, bool),
               f"`cv_results['{key}']` should be a float.")
        expect_close(value, expected[key], f"`cv_results['{key}']` is not the 5-fold CV ROC-AUC "
                     "of that model on the training split (too high means the model saw the rows "
                     "it was scored on): run compare_models on X_train, y_train.",
                     rtol=1e-6, atol=1e-6)
    expect(nb.get("best_model_name") == max(reported, key=lambda k: reported[k]),
           "`best_model_name` should be the key of the highest score in `cv_results`.")


# -- Q3 --------------------------------------------------------------------------------------
@points(1, question="q3")
def test_search_is_unfitted_cv_search(nb):
    """build_search returns an unfitted 5-fold ROC-AUC search over >= 4 candidates"""
    search = nb.call("build_search", keep=True)
    info = nb.eval(DESCRIBE_SEARCH, search=search, what="`build_search()`")
    expect(isinstance(info, dict) and info.get("search") is True,
           "build_search() should return a GridSearchCV or RandomizedSearchCV.")
    expect(info["fitted"] is False, "build_search() returns a search that is already fitted: "
           "return it unfitted, so it can be fitted on training rows only.")
    expect(info["scoring"] == "roc_auc", "build_search() should use scoring='roc_auc'.")
    expect(info["splits"] == 5 and info["stratified"] is True,
           "build_search() should cross-validate with the 5 stratified folds of CV (cv=CV).")
    expect(isinstance(info["candidates"], int) and info["candidates"] >= 4,
           "build_search() should try at least four hyperparameter settings.")


@points(1, question="q3")
def test_search_on_fresh_data(nb, rng):
    """the search, fitted on fresh rows, finds best_params_ and scores well on held-out rows"""
    X, y = interaction_data(600, rng)
    X_new, y_new = interaction_data(1000, rng)
    search = nb.call("build_search", keep=True)
    nb.call(search.attr("fit"), X, y, timeout=120, keep=True)
    best = nb.get(search.attr("best_params_"))
    expect(isinstance(best, dict) and len(best) >= 1,
           "after fitting, the search's best_params_ should be a dict of tuned settings.")
    n_candidates = nb.eval("len(s.cv_results_['params'])", s=search, what="the fitted search")
    expect(n_candidates >= 4, "the search should try at least four hyperparameter settings.")
    proba = nb.call(search.attr("predict_proba"), X_new)
    expect(isinstance(proba, np.ndarray) and proba.shape == (len(y_new), 2),
           "the fitted search's predict_proba should give one row of two probabilities per sample.")
    auc = float(roc_auc_score(y_new, proba[:, 1]))
    expect(auc >= 0.75, f"the tuned model's held-out ROC-AUC is only {auc:.3f}: tune a tree "
           "ensemble (forest or boosting) over sensible settings.")


@points(2, question="q3")
def test_search_no_test_peeking(nb):
    """`search` was fitted on the training split only, and `search_test_auc` is honest"""
    X_train, X_test, y_train, y_test = notebook_split()
    expect(nb.has("search.best_score_"), "`search` should be your build_search(), fitted on "
           "X_train and y_train.")
    reference = nb.call("build_search", keep=True)
    nb.call(reference.attr("fit"), X_train, y_train, timeout=120, keep=True)
    honest_cv = nb.get(reference.attr("best_score_"))
    honest_proba = nb.call(reference.attr("predict_proba"), X_test)
    honest_auc = float(roc_auc_score(y_test, honest_proba[:, 1]))
    learner_cv = nb.get("search.best_score_")
    expect_close(learner_cv, honest_cv, "`search` was not fitted on the training split alone "
                 "(its best CV score differs from a search fitted on X_train, y_train): fit it on "
                 "the training rows only; the test rows must stay unseen until the end.",
                 rtol=1e-6, atol=1e-6)
    expect_close(nb.get("search_test_auc"), honest_auc, "`search_test_auc` should be "
                 "roc_auc_score(y_test, search.predict_proba(X_test)[:, 1]) for the search fitted "
                 "on the training split.", rtol=1e-6, atol=1e-6)


# -- Q4 --------------------------------------------------------------------------------------
@points(2, question="q4")
def test_top_features(nb, rng):
    """top_features finds the informative columns, most important first"""
    n, d = 600, 12
    X = rng.normal(size=(n, d))
    informative = rng.choice(d, size=3, replace=False)
    logit = X[:, informative] @ np.array([3.0, -2.5, 2.0])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    got = nb.call("top_features", X, y, 5)
    expect(isinstance(got, (list, tuple, np.ndarray)) and len(got) == 5,
           "top_features(X, y, k) should return a list of k column indices.")
    indices = [int(i) for i in got]
    expect(all(float(i) == float(g) for i, g in zip(indices, list(got), strict=True))
           and len(set(indices)) == 5 and all(0 <= i < d for i in indices),
           "top_features should return k distinct column indices (ints).")
    expect(set(indices[:3]) == {int(i) for i in informative},
           "top_features misses the columns that drive the label: sort feature_importances_ "
           "from the largest to the smallest and take the first k.")


# -- Q5 --------------------------------------------------------------------------------------
@points(3, question="q5")
def test_final_model_auc(nb, rng):
    """train_final_model reaches ROC-AUC >= 0.78 on 2,000 rows it never saw"""
    X, y = interaction_data(1000, rng)
    X_new, y_new = interaction_data(2000, rng)
    model = nb.call("train_final_model", X, y, keep=True, timeout=120)
    proba = nb.call(model.attr("predict_proba"), X_new)
    expect(isinstance(proba, np.ndarray) and proba.shape == (len(y_new), 2),
           "the model's predict_proba should give one row of two probabilities per sample.")
    auc = float(roc_auc_score(y_new, proba[:, 1]))
    expect(auc >= 0.65, f"held-out ROC-AUC is {auc:.3f}, close to a linear model's: the label "
           "depends on interactions and curves, which tree ensembles capture.")
    expect(auc >= 0.78, f"held-out ROC-AUC is {auc:.3f}, below the 0.78 required: try a boosted "
           "ensemble with a moderate learning rate and enough rounds.")
