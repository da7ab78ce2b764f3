"""Month 4 graders are tested like code: models scored on their own training rows, numbers
copied from a run, least-important features taken as the most important, a search factory that
returns an already-fitted search, a search fitted on every row (test-set peeking) and a linear
final model lose exactly the points they should, with a hint that names the mistake; a correct
solution written differently (a hand-written fold loop, a randomized XGBoost search,
HistGradientBoosting as the final model) earns full marks; the reference earns full marks
twice with the same scores and the starter earns zero."""

from __future__ import annotations

import pytest
from tests.conftest import (
    failed_tests,
    feedback_by_test,
    mutant,
    notebook_from_cells,
    validated_runs,
)

pytestmark = [pytest.mark.kernel, pytest.mark.slow]  # each grades a notebook: 8-30 s

ALL_TESTS = {
    "test_build_models", "test_compare_models_returns_scores", "test_compare_models_matches_cv",
    "test_reported_cv_results",
    "test_search_is_unfitted_cv_search", "test_search_on_fresh_data",
    "test_search_no_test_peeking", "test_top_features", "test_final_model_auc",
}
TOTAL = 15

# --- scored on the training rows; least important features; a factory that fits ------------
TRAIN_SET_SCORES = '''
def compare_models(models, X, y):
    scores = {}
    for name, model in models.items():
        model.fit(X, y)
        scores[name] = float(roc_auc_score(y, model.predict_proba(X)[:, 1]))
    return scores


cv_results = compare_models(build_models(), X_train, y_train)
best_model_name = max(cv_results, key=cv_results.get)
'''
FITTED_SEARCH_FACTORY = '''
from sklearn.model_selection import GridSearchCV


def build_search():
    base = LGBMClassifier(n_estimators=100, n_jobs=1, random_state=0, verbose=-1)
    grid = {"num_leaves": [7, 15], "learning_rate": [0.05, 0.1]}
    return GridSearchCV(base, grid, cv=CV, scoring="roc_auc").fit(X_train, y_train)


search = build_search()
search_test_auc = float(roc_auc_score(y_test, search.predict_proba(X_test)[:, 1]))
'''
ASCENDING_IMPORTANCE = '''
def top_features(X, y, k):
    forest = RandomForestClassifier(n_estimators=100, n_jobs=1, random_state=0).fit(X, y)
    return [int(i) for i in np.argsort(forest.feature_importances_)[:k]]
'''

# --- numbers copied from a run; a search that saw the test rows; a linear final model ------
HARD_CODED_SCORES = '''
def compare_models(models, X, y):
    # numbers copied from an earlier run
    return {"random_forest": 0.9871, "hist_gradient_boosting": 0.9902,
            "lightgbm": 0.9915, "xgboost": 0.9893}


cv_results = compare_models(build_models(), X_train, y_train)
best_model_name = max(cv_results, key=cv_results.get)
'''
SEARCH_ON_ALL_ROWS = '''
from sklearn.model_selection import GridSearchCV


def build_search():
    base = LGBMClassifier(n_estimators=100, n_jobs=1, random_state=0, verbose=-1)
    grid = {"num_leaves": [7, 15], "learning_rate": [0.05, 0.1]}
    return GridSearchCV(base, grid, cv=CV, scoring="roc_auc")


search = build_search()
search.fit(X, y)  # every row, test rows included
search_test_auc = float(roc_auc_score(y_test, search.predict_proba(X_test)[:, 1]))
'''
LINEAR_FINAL_MODEL = '''
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def train_final_model(X, y):
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
'''

# --- a correct solution, written differently ------------------------------------------------
ALT_SETUP = '''
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold, train_test_split
from threadpoolctl import threadpool_limits
import lightgbm
import xgboost

threadpool_limits(1)
features, labels = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    features, labels, test_size=0.25, stratify=labels, random_state=0)
CV = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
'''
ALT_MODELS = '''
def build_models():
    forest = RandomForestClassifier(n_estimators=60, max_features="sqrt", n_jobs=1, random_state=0)
    hgb = HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=15, random_state=0)
    lgbm = lightgbm.LGBMClassifier(n_estimators=80, num_leaves=7, n_jobs=1, random_state=0,
                                   verbose=-1)
    xgb = xgboost.XGBClassifier(n_estimators=80, max_depth=4, n_jobs=1, random_state=0)
    return dict(random_forest=forest, hist_gradient_boosting=hgb, lightgbm=lgbm, xgboost=xgb)


def compare_models(models, X, y):
    results = {}
    for key in models:
        fold_scores = []
        for fit_rows, score_rows in CV.split(X, y):
            fitted = clone(models[key]).fit(X[fit_rows], y[fit_rows])
            proba = fitted.predict_proba(X[score_rows])[:, 1]
            fold_scores.append(roc_auc_score(y[score_rows], proba))
        results[key] = float(np.mean(fold_scores))
    return results


cv_results = compare_models(build_models(), X_train, y_train)
best_model_name = sorted(cv_results.items(), key=lambda item: item[1])[-1][0]
'''
ALT_SEARCH = '''
def build_search():
    space = {"max_depth": [2, 3, 4], "learning_rate": [0.03, 0.1, 0.3], "subsample": [0.8, 1.0]}
    model = xgboost.XGBClassifier(n_estimators=80, n_jobs=1, random_state=0)
    return RandomizedSearchCV(model, space, n_iter=5, cv=CV, scoring="roc_auc", random_state=0)


search = build_search().fit(X_train, y_train)
search_test_auc = roc_auc_score(y_test, search.best_estimator_.predict_proba(X_test)[:, 1])
'''
ALT_FEATURES_AND_FINAL = '''
def top_features(X, y, k):
    forest = RandomForestClassifier(n_estimators=100, n_jobs=1, random_state=0)
    forest.fit(X, y)
    ranked = pd.Series(forest.feature_importances_).sort_values(ascending=False)
    return ranked.index[:k].tolist()


def train_final_model(X, y):
    booster = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, random_state=0)
    booster.fit(X, y)
    return booster
'''




def test_training_rows_scores_ascending_importances_and_fitted_factory(grade):
    nb = mutant("month4", {"def compare_models": TRAIN_SET_SCORES,
                    "def build_search": FITTED_SEARCH_FACTORY,
                    "def top_features": ASCENDING_IMPORTANCE})
    result = grade("month4", nb)
    assert result.status == "graded"
    assert failed_tests(result) == {"test_compare_models_matches_cv", "test_reported_cv_results",
                                    "test_search_is_unfitted_cv_search", "test_top_features"}
    feedback = feedback_by_test(result)
    assert "rows it was trained on" in feedback["test_compare_models_matches_cv"]
    assert "saw the rows it was scored on" in feedback["test_reported_cv_results"]
    assert "already fitted" in feedback["test_search_is_unfitted_cv_search"]
    assert "largest to the smallest" in feedback["test_top_features"]
    assert result.score == TOTAL - 6


def test_copied_numbers_test_set_peeking_and_linear_model(grade):
    nb = mutant("month4", {"def compare_models": HARD_CODED_SCORES, "def build_search": SEARCH_ON_ALL_ROWS,
                    "def train_final_model": LINEAR_FINAL_MODEL})
    result = grade("month4", nb)
    assert result.status == "graded"
    assert failed_tests(result) == {"test_compare_models_matches_cv", "test_reported_cv_results",
                                    "test_search_no_test_peeking", "test_final_model_auc"}
    feedback = feedback_by_test(result)
    assert "5-fold cross-validation" in feedback["test_compare_models_matches_cv"]
    assert "training split alone" in feedback["test_search_no_test_peeking"]
    assert "linear model" in feedback["test_final_model_auc"]
    assert result.score == TOTAL - 8


def test_correct_alternative_earns_full_marks(grade):
    nb = notebook_from_cells(ALT_SETUP, ALT_MODELS, ALT_SEARCH, ALT_FEATURES_AND_FINAL)
    result = grade("month4", nb)
    assert {t.id for t in result.tests} == ALL_TESTS
    assert [(t.id, t.feedback) for t in result.tests if t.status != "passed"] == []
    assert result.full_marks and result.score == TOTAL


@pytest.mark.slow
def test_reference_full_marks_twice_and_starter_zero():
    """Through `mlgrade validate`'s checks: full marks, deterministic, starter zero."""
    solution_run, again, starter = validated_runs("month4")
    assert solution_run.score == again.score == TOTAL and starter.score == 0
    assert [t.earned for t in solution_run.tests] == [t.earned for t in again.tests]
    assert {t.id for t in starter.tests} == ALL_TESTS
    assert all("not implemented yet" in t.feedback for t in starter.tests
               if t.id not in ("test_search_no_test_peeking", "test_reported_cv_results"))
