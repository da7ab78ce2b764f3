"""Design-aware red team for month 4: notebooks written by someone who has read the graders.

Month 4's graders once described the models and ran their own cross-validation inside the
learner's kernel (with the kernel's ``cross_val_score``); every case below would have earned
points there. Now the kernel is an oracle: models and searches are rebuilt in the grader from
their specs (classes from an allow-list), cross-validated and fitted there, and the learner's
own objects must predict like what they claim to be. Each case is graded through the real
pipeline in each tier and must earn exactly the points of its honest parts, with a verdict
(graded, every failure explained) and nothing left behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import mutant
from tests.security.oracle_attacks import assert_honest_verdict, grade_attack
from tests.security.redteam_support import TIERS, assert_nothing_survived

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

ALL = frozenset({
    "test_build_models", "test_compare_models_returns_scores", "test_compare_models_matches_cv",
    "test_reported_cv_results", "test_search_is_unfitted_cv_search",
    "test_search_tunes_tree_ensemble", "test_search_no_test_peeking", "test_top_features",
    "test_final_model_auc", "test_final_model_repeats",
})
SECRET_SEED = 2_718_281_828

# cross_val_score and roc_auc_score patched where every caller finds them: the notebook's own
# comparison, and any grader code that would run cross_val_score in this kernel, say "perfect".
PATCHED_CV = '''
import numpy as np
import sklearn.metrics
import sklearn.model_selection

sklearn.model_selection.cross_val_score = lambda *a, **k: np.full(5, 0.999)
sklearn.metrics.roc_auc_score = lambda *a, **k: 0.999
from sklearn.model_selection import cross_val_score


def compare_models(models, X, y):
    return {name: float(cross_val_score(model, X, y, cv=CV, scoring="roc_auc").mean())
            for name, model in models.items()}


cv_results = compare_models(build_models(), X_train, y_train)
best_model_name = max(cv_results, key=cv_results.get)
'''

# The "xgboost" entry is a logistic regression renamed to XGBoost's class, with XGBoost's
# get_params; the search is a fixed-parameter LightGBM renamed to GridSearchCV with a forged
# grid. The notebook's own numbers are honest about the real objects, so they disagree with the
# grader's; the claims alone earn nothing.
FORGED_CLASSES = '''
import sys

from lightgbm import LGBMClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from xgboost import XGBClassifier

_XGB_PARAMS = XGBClassifier(n_estimators=100, max_depth=3, n_jobs=1, random_state=0).get_params()


class FakeXGB(LogisticRegression):
    def get_params(self, deep=True):  # forged only for the grader's spec code
        if sys._getframe(1).f_code.co_name == "_mlgrade_spec":
            return dict(_XGB_PARAMS)
        return super().get_params(deep)


FakeXGB.__name__ = FakeXGB.__qualname__ = "XGBClassifier"
FakeXGB.__module__ = "xgboost.sklearn"


def build_models():
    return {
        "random_forest": RandomForestClassifier(n_estimators=100, min_samples_leaf=2,
                                                n_jobs=1, random_state=0),
        "hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=50, random_state=0),
        "lightgbm": LGBMClassifier(n_estimators=100, num_leaves=15, n_jobs=1, random_state=0,
                                   verbose=-1),
        "xgboost": FakeXGB(max_iter=2000),
    }
'''
FORGED_SEARCH = '''
from sklearn.model_selection import GridSearchCV


class FakeSearch(LGBMClassifier):
    def get_params(self, deep=True):  # forged only for the grader's spec code
        if sys._getframe(1).f_code.co_name != "_mlgrade_spec":
            return super().get_params(deep)
        base = LGBMClassifier(n_estimators=100, n_jobs=1, random_state=0, verbose=-1)
        return GridSearchCV(base, {"num_leaves": [7, 15], "learning_rate": [0.05, 0.1]}, cv=CV,
                            scoring="roc_auc").get_params(deep=False)


FakeSearch.__name__ = FakeSearch.__qualname__ = "GridSearchCV"
FakeSearch.__module__ = "sklearn.model_selection._search"


def build_search():
    return FakeSearch(n_estimators=5, num_leaves=2, n_jobs=1, random_state=0, verbose=-1)


search = build_search().fit(X_train, y_train)
search.best_score_ = 0.999
search_test_auc = 0.999
'''

CASES = {
    "patched-cross-val-score-and-metrics": (
        {"def compare_models": PATCHED_CV},
        ALL - {"test_compare_models_matches_cv", "test_reported_cv_results"}),
    "forged-class-names-and-get-params": (
        {"def build_models": FORGED_CLASSES, "def build_search": FORGED_SEARCH},
        # compare_models is honest and judged on the grader's own models: its points are earned
        ALL - {"test_build_models", "test_reported_cv_results",
               "test_search_is_unfitted_cv_search", "test_search_tunes_tree_ensemble",
               "test_search_no_test_peeking"}),
}


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_design_aware_attack_earns_nothing_unearned(name: str, tier: str, tmp_path: Path) -> None:
    cells, honest = CASES[name]
    graded = grade_attack("month4", mutant("month4", cells), tier, tmp_path, seed=SECRET_SEED)
    assert_honest_verdict(graded, set(honest))
    assert_nothing_survived(graded, "mlgrade-oracle-month4", [])
