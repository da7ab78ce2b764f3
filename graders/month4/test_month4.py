"""Hidden graders for month 4. Every score is computed here, on rows drawn here.

The learner's kernel is only an oracle (docs/security.md): the grader asks it for plain data
(a learner function's answer on grader rows, or a spec of an estimator: its class path and
``get_params``) and judges that here. The learner's models and searches are rebuilt in this
process from their specs (:mod:`mlgrade.grading.estimators`, classes from an allow-list of
scikit-learn, LightGBM and XGBoost) and cross-validated here, so a patched
``cross_val_score``, a renamed class or a forged ``get_params`` has nothing to act on: a claim
that does not describe the learner's real estimator only makes the learner's own numbers
disagree with the grader's.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest
from lightgbm import LGBMClassifier
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import (
    AdaBoostClassifier,
    BaggingClassifier,
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    ParameterGrid,
    ParameterSampler,
    RandomizedSearchCV,
    StratifiedKFold,
    cross_val_score,
    train_test_split,
)
from sklearn.pipeline import Pipeline
from sklearn.tree import BaseDecisionTree
from xgboost import XGBClassifier, XGBRFClassifier

from mlgrade.bridge.client import Expr
from mlgrade.grading import expect, expect_close, points
from mlgrade.grading.estimators import (
    SPEC_SOURCE,
    Started,
    grader_fit,
    learner_errors,
    overlapped,
    rebuild,
    single_threaded,
    spec_of,
    started,
)

CV = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
MODEL_CLASSES: dict[str, type] = {
    "random_forest": RandomForestClassifier,
    "hist_gradient_boosting": HistGradientBoostingClassifier,
    "lightgbm": LGBMClassifier,
    "xgboost": XGBClassifier,
}
MAX_TREES = 200
MIN_CANDIDATES = 4
# The pass mark the starter states. Calibrated on `final_runs`'s own draws (seeds 0-59 with
# [seed, 45]: 1,000 training rows, 2,000 held-out rows), held-out ROC-AUC min/mean/max:
#   the true logit 0.895/0.910/0.923; reference LightGBM 0.831/0.856/0.880;
#   alternatives: HistGradientBoosting(150) 0.828/0.852/0.871, scaled XGBoost(200, depth 3)
#   0.799/0.832/0.869, RandomForest(200, leaf 3) 0.813/0.841/0.869;
#   mutants: scaled logistic regression 0.537/0.589/0.626; a depth-3 tree (the mutant,
#   200 seeds) 0.688/0.731/0.768 (a depth-4 tree reaches 0.792 on some seeds: not a mutant).
FINAL_AUC = 0.78
# A linear model's ceiling on this data (0.626 above), for the hint only: both hints fail the
# same test.
LINEAR_AUC = 0.65
# The tree ensembles Q3 may tune ("a tree ensemble of your choice"); AdaBoost and bagging count
# when their base estimator is a tree (their default).
TREE_ENSEMBLES: tuple[type, ...] = (
    RandomForestClassifier, ExtraTreesClassifier, GradientBoostingClassifier,
    HistGradientBoostingClassifier, LGBMClassifier, XGBClassifier, XGBRFClassifier,
)
TREE_BASED_META: tuple[type, ...] = (AdaBoostClassifier, BaggingClassifier)

# Q2 judges compare_models on the grader's own models (never the learner's build_models(): a
# mistake shared by both would cancel out). The warm-started forest keeps the trees of its
# first fit when it is refitted as the same object, so a fold loop that does not fit a fresh
# copy scores later folds with trees that saw their rows (0.12-0.23 higher than an honest CV on 30 seeds).
GRADER_MODELS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "warm_forest": ("sklearn.ensemble", "RandomForestClassifier",
                    {"n_estimators": 25, "max_depth": 4, "warm_start": True, "n_jobs": 1,
                     "random_state": 0}),
    "boosting": ("sklearn.ensemble", "HistGradientBoostingClassifier",
                 {"max_iter": 30, "random_state": 0}),
    "small_tree": ("sklearn.tree", "DecisionTreeClassifier", {"max_depth": 3, "random_state": 0}),
}


def grader_models() -> dict[str, Any]:
    """The grader's own, unfitted Q2 models, built here."""
    return {key: getattr(importlib.import_module(module), cls)(**params)
            for key, (module, cls, params) in GRADER_MODELS.items()}


# The same models built in the kernel, as the argument the learner's compare_models receives.
GRADER_MODELS_EXPR = Expr("{" + ", ".join(
    f"{key!r}: __import__({module!r}, fromlist=['_']).{cls}(**{params!r})"
    for key, (module, cls, params) in GRADER_MODELS.items()) + "}")

# Runs in the kernel: specs of build_models() and the learner's own answers to "fitted?" and
# "the same object on the next call?". All of it is a learner claim, judged here.
MODELS_CLAIM = SPEC_SOURCE + """
def _fitted(m):
    from sklearn.utils.validation import check_is_fitted
    try:
        check_is_fitted(m)
        return True
    except Exception:
        return False

first, second = ns['build_models'](), ns['build_models']()
if not isinstance(first, dict):
    result = {'not_a_dict': type(first).__name__}
else:
    result = {'specs': {str(k): _mlgrade_spec(m) for k, m in first.items()},
              'fitted': {str(k): _fitted(m) for k, m in first.items()},
              'same': {str(k): isinstance(second, dict) and second.get(k) is m
                       for k, m in first.items()}}
"""

SEARCH_CLAIM = SPEC_SOURCE + """
search = ns['build_search']()
result = {'spec': _mlgrade_spec(search),
          'fitted': hasattr(search, 'best_params_') or hasattr(search, 'cv_results_')}
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


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- the learner's models, rebuilt here -------------------------------------------------------
@pytest.fixture(scope="module")
def models_claim(nb) -> Any:
    """What build_models() returns, as specs and claims (or the failure fetching them met)."""
    try:
        info = nb.eval_untrusted(MODELS_CLAIM, what="`build_models()`")
        expect(isinstance(info, dict) and isinstance(info.get("specs"), dict),
               "build_models() should return a dict of name -> estimator.")
        return info
    except AssertionError as exc:  # a LearnerFailure or a failed expect: the tests report it
        return exc


# Runs in the kernel: fresh build_models() fitted on grader rows, probabilities on other rows
# (learner data: compared here with the same models rebuilt from their specs).
MODELS_FIT = """
models = ns['build_models']()
result = {str(k): np.asarray(m.fit(X, y).predict_proba(X_new))[:, 1] for k, m in models.items()}
"""


@pytest.fixture(scope="module")
def models_agree(nb, seed, models_claim) -> dict[str, bool] | AssertionError:
    """Per model: whether the learner's object, fitted in the kernel on grader rows, predicts
    other rows like the scikit-learn/LightGBM/XGBoost class its spec names, rebuilt here (a
    renamed class or a forged get_params describes something else)."""
    if isinstance(models_claim, AssertionError):
        return models_claim
    rng = np.random.default_rng([seed, 41])
    X, y = interaction_data(200, rng)
    X_new, _y_new = interaction_data(100, rng)
    def grader_side() -> dict[str, Any]:
        models = {key: rebuild(spec) for key, spec in models_claim["specs"].items()}

        def fit() -> dict[str, np.ndarray]:
            fitted = {}
            for key, model in models.items():
                with learner_errors(f"build_models()['{key}']"):
                    fitted[key] = model.fit(X, y).predict_proba(X_new)[:, 1]
            return fitted

        return grader_fit(fit, "build_models()")

    try:
        ours, got = overlapped(grader_side, lambda: nb.eval_untrusted(
            MODELS_FIT, X=X, y=y, X_new=X_new, timeout=120,
            what="the models of `build_models()`, fitted by the grader"))
        expect(isinstance(got, dict), "build_models() should return a dict of name -> estimator.")
        agree = {}
        for key, here in ours.items():
            theirs = got.get(key)
            agree[key] = bool(isinstance(theirs, np.ndarray) and theirs.shape == here.shape
                              and np.allclose(theirs, here, rtol=1e-6, atol=1e-6))
        return agree
    except AssertionError as exc:  # a LearnerFailure or a failed expect: the tests report it
        return exc


def grader_cv(claim: Any, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The grader's own leak-free 5-fold CV ROC-AUC of each learner model, run here."""
    if isinstance(claim, AssertionError):
        raise claim
    models = {key: rebuild(spec) for key, spec in sorted(claim["specs"].items())}

    def cross_validate() -> dict[str, float]:
        scores = {}
        for key, model in models.items():
            with learner_errors(f"build_models()['{key}']"):
                scores[key] = float(cross_val_score(model, X, y, cv=CV, scoring="roc_auc").mean())
        return scores

    return grader_fit(cross_validate, "build_models()")


# -- Q1 --------------------------------------------------------------------------------------
@points(2, question="q1")
def test_build_models(models_claim, models_agree):
    """build_models returns the four unfitted, seeded, small ensembles"""
    if isinstance(models_claim, AssertionError):
        raise models_claim
    expect(set(models_claim["specs"]) == set(MODEL_CLASSES),
           "build_models() should have exactly the keys 'random_forest', "
           "'hist_gradient_boosting', 'lightgbm' and 'xgboost'.")
    for key, cls in MODEL_CLASSES.items():
        model = rebuild(models_claim["specs"][key])
        expect(isinstance(model, cls), f"build_models()['{key}'] is not a {cls.__name__}.")
        if isinstance(models_agree, AssertionError):
            raise models_agree
        expect(models_agree.get(key) is True, f"build_models()['{key}'] does not predict like a "
               f"{cls.__name__} with the parameters it reports (get_params): use the library's "
               "class itself (with random_state=0, so that it repeats).")
        expect(models_claim["fitted"].get(key) is False, f"build_models()['{key}'] is already "
               "fitted: return an unfitted estimator and let the caller fit it.")
        expect(models_claim["same"].get(key) is False, f"build_models() returns the same '{key}' "
               "object on every call: build new estimators inside the function.")
        params = models_claim["specs"][key].get("params", {})
        expect(_is_int(params.get("random_state")) and params.get("random_state") == 0,
               f"build_models()['{key}'] should have random_state=0 so that results repeat.")
        expect(key == "hist_gradient_boosting" or (_is_int(params.get("n_jobs"))
                                                    and params.get("n_jobs") == 1),
               f"build_models()['{key}'] should use n_jobs=1 (the grader runs on few cores).")
        size = params.get("max_iter" if key == "hist_gradient_boosting" else "n_estimators")
        expect(size is None or (_is_int(size) and 1 <= size <= MAX_TREES),
               f"build_models()['{key}'] is too big: use at most {MAX_TREES} trees / boosting "
               "rounds.")


# -- Q2 --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def comparison_rows(seed) -> tuple[np.ndarray, np.ndarray]:
    """Q2's fresh rows, drawn from the secret seed."""
    return interaction_data(300, np.random.default_rng([seed, 42]))


@pytest.fixture(scope="module")
def grader_comparison(comparison_rows) -> Started[dict[str, float]]:
    """The grader's own 5-fold CV of its own models on Q2's fresh rows: it needs nothing from
    the notebook, so it starts while the notebook still runs (see ``_head_start``);
    ``result()`` gives the scores."""
    X, y = comparison_rows

    def cross_validate() -> dict[str, float]:
        with single_threaded():
            return {key: float(cross_val_score(model, X, y, cv=CV, scoring="roc_auc").mean())
                    for key, model in grader_models().items()}

    return started(cross_validate)


@pytest.fixture(scope="module")
def fresh_comparison(nb, comparison_rows, grader_comparison) -> tuple[Any, dict[str, float]]:
    """(the learner's compare_models answer or its failure, the grader's own CV) for the
    grader's own models on Q2's fresh rows."""
    X, y = comparison_rows
    try:
        got = nb.call("compare_models", GRADER_MODELS_EXPR, X, y, timeout=120)
    except AssertionError as exc:
        got = exc
    return got, grader_comparison.result()


def _is_float(value: Any) -> bool:
    return isinstance(value, (float, np.floating))


@points(1, question="q2")
def test_compare_models_returns_scores(fresh_comparison):
    """compare_models returns one ROC-AUC per model"""
    got, _ = fresh_comparison
    if isinstance(got, AssertionError):
        raise got
    expect(isinstance(got, dict) and set(got) == set(GRADER_MODELS),
           "compare_models should return a dict with the same keys as the models it was given "
           f"(given {sorted(GRADER_MODELS)}, it returned "
           f"{sorted(map(str, got)) if isinstance(got, dict) else type(got).__name__}).")
    for key, value in got.items():
        expect(_is_float(value) and 0.0 <= value <= 1.0,
               f"compare_models()['{key}'] should be a mean ROC-AUC, a float between 0 and 1.")


@points(2, question="q2")
def test_compare_models_matches_cv(fresh_comparison):
    """compare_models agrees with a leak-free 5-fold CV of the same models on new data"""
    got, expected = fresh_comparison
    for answer in (got, expected):
        if isinstance(answer, AssertionError):
            raise answer
    expect(isinstance(got, dict) and set(got) == set(expected),
           "compare_models should return a dict with the same keys as the models it was given.")
    # The warm-started forest last: when the other two models match, the folds are right, and
    # only a fold loop that refits the same object makes the forest score higher. Scored on its
    # training rows, the boosting model is 0.17 or more above its CV (30 seeds); other folds
    # (cv=5) move it by less than 0.05.
    for key in sorted(expected, key=lambda name: (name == "warm_forest", name)):
        value = got[key]
        expect(_is_float(value), f"compare_models()['{key}'] should be a float.")
        if key == "warm_forest":
            expect(value <= expected[key] + 0.01,
                   f"compare_models()['{key}'] (a warm-started forest) is above a 5-fold "
                   "cross-validation of the same model: each fold must fit a fresh copy "
                   "(sklearn.base.clone) of the model, not refit the same object, which can keep "
                   "what it learned on another fold.")
        else:
            expect(value < expected[key] + 0.1,
                   f"compare_models()['{key}'] is far above a 5-fold cross-validation of the "
                   "same model on new data: was the model scored on the rows it was trained on "
                   "(or the numbers copied from a run)? Score each fold on its held-out part.")
        expect_close(value, expected[key], f"compare_models()['{key}'] differs from a 5-fold "
                     "cross-validation of the same model: use the folds of CV, scoring='roc_auc', "
                     "fit a fresh copy per fold and average the fold scores.",
                     rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def training_cv(models_claim) -> Started[dict[str, float]]:
    """The grader's own CV of each learner model on the notebook's training split, begun in
    the background (see ``_head_start``); ``result()`` gives the scores or raises the failure."""
    X_train, _, y_train, _ = notebook_split()
    return started(lambda: grader_cv(models_claim, X_train, y_train))


@points(1, question="q2")
def test_reported_cv_results(nb, training_cv):
    """`cv_results` and `best_model_name` match a leak-free CV on the training split"""
    reported = nb.get("cv_results")
    expected = training_cv.result()
    expect(isinstance(reported, dict) and set(reported) == set(expected),
           "`cv_results` should be compare_models(build_models(), X_train, y_train): a dict "
           "with the keys of build_models().")
    for key in sorted(expected):
        value = reported[key]
        expect(_is_float(value), f"`cv_results['{key}']` should be a float.")
        expect_close(value, expected[key], f"`cv_results['{key}']` is not the 5-fold CV ROC-AUC "
                     "of that model on the training split (too high means the model saw the rows "
                     "it was scored on): run compare_models on X_train, y_train.",
                     rtol=1e-6, atol=1e-6)
    expect(nb.get("best_model_name") == max(expected, key=lambda k: expected[k]),
           "`best_model_name` should be the key of the highest score in `cv_results`.")


# -- Q3 --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def search_claim(nb) -> Any:
    """build_search()'s spec and its "fitted?" claim (or the failure fetching them met)."""
    try:
        info = nb.eval_untrusted(SEARCH_CLAIM, what="`build_search()`")
        expect(isinstance(info, dict) and "spec" in info, "build_search() could not be read.")
        return info
    except AssertionError as exc:  # a LearnerFailure or a failed expect: the tests report it
        return exc


SEARCH_CLASSES = ("GridSearchCV", "RandomizedSearchCV")


def _search(claim: Any) -> Any:
    if isinstance(claim, AssertionError):
        raise claim
    path = claim["spec"].get("__class__") if isinstance(claim["spec"], dict) else None
    expect(isinstance(path, str) and path.rsplit(".", 1)[-1] in SEARCH_CLASSES,
           "build_search() should return a GridSearchCV or RandomizedSearchCV (it returned "
           f"{str(path).rsplit('.', 1)[-1] if path else 'something else'}).")
    search = rebuild(claim["spec"])
    expect(isinstance(search, (GridSearchCV, RandomizedSearchCV)),
           "build_search() should return a GridSearchCV or RandomizedSearchCV.")
    return search


def _candidates(search: Any) -> int:
    """How many settings the search tries, counted here from its own parameters."""
    with learner_errors("build_search()'s grid"):
        if isinstance(search, GridSearchCV):
            return len(ParameterGrid(search.param_grid))
        sampler = ParameterSampler(search.param_distributions, search.n_iter,
                                   random_state=search.random_state)
        return len(list(sampler))


def _is_notebook_cv(cv: Any) -> bool:
    """Whether ``cv`` (rebuilt here) is the notebook's CV: 5 shuffled stratified folds seeded
    with 0. ``cv=5`` is not: its folds are unshuffled, other folds than the text's."""
    return (type(cv) is StratifiedKFold and _is_int(cv.n_splits) and cv.n_splits == 5
            and cv.shuffle is True and _is_int(cv.random_state) and cv.random_state == 0)


def _tuned_estimator(search: Any) -> Any:
    """The estimator a search tunes (a Pipeline's last step)."""
    model = search.estimator
    while isinstance(model, Pipeline):
        model = model.steps[-1][1]
    return model


def _is_tree_ensemble(model: Any) -> bool:
    if isinstance(model, TREE_ENSEMBLES):
        return True
    if isinstance(model, TREE_BASED_META):
        base = model.estimator
        return base is None or isinstance(base, BaseDecisionTree)
    return False


@pytest.fixture(scope="module")
def search_fit(nb, seed, search_claim) -> dict[str, Any] | AssertionError:
    """build_search() rebuilt here and fitted on fresh rows, and the learner's own
    build_search() fitted in the kernel on the same rows: both sets of probabilities on other
    fresh rows (a search that is not what its parameters say predicts otherwise)."""
    rng = np.random.default_rng([seed, 43])
    X, y = interaction_data(500, rng)
    X_new, _y_new = interaction_data(300, rng)
    def grader_side() -> Any:
        search = _search(search_claim)

        def fit() -> tuple[Any, np.ndarray]:
            search.fit(X, y)
            return search.best_params_, search.predict_proba(X_new)[:, 1]

        return grader_fit(fit, "build_search()")

    def kernel_side() -> Any:
        theirs = nb.call("build_search", keep=True)
        nb.call(theirs.attr("fit"), X, y, timeout=120, discard=True)
        return nb.call(theirs.attr("predict_proba"), X_new)

    try:
        (best, here), proba = overlapped(grader_side, kernel_side)
    except AssertionError as exc:  # a LearnerFailure or a failed expect: the tests report it
        return exc
    agree = bool(isinstance(proba, np.ndarray) and proba.shape == (len(X_new), 2)
                 and np.allclose(proba[:, 1], here, rtol=1e-6, atol=1e-6))
    return {"best_params": best, "agree": agree}


def _agreeing(search_fit: Any) -> dict[str, Any]:
    if isinstance(search_fit, AssertionError):
        raise search_fit
    expect(search_fit["agree"], "the search build_search() returns does not predict like a "
           "scikit-learn search with the parameters it reports (get_params): return a "
           "GridSearchCV or RandomizedSearchCV itself, over a library estimator seeded with "
           "random_state=0.")
    return search_fit


@points(1, question="q3")
def test_search_is_unfitted_cv_search(search_claim, search_fit):
    """build_search returns an unfitted, seeded search with cv=CV and ROC-AUC over >= 4
    candidates"""
    search = _search(search_claim)
    expect(search_claim["fitted"] is False, "build_search() returns a search that is already "
           "fitted: return it unfitted, so it can be fitted on training rows only.")
    expect(search.scoring == "roc_auc", "build_search() should use scoring='roc_auc'.")
    expect(_is_notebook_cv(search.cv), "build_search() should cross-validate with the folds of "
           "CV (cv=CV: 5 shuffled stratified folds, random_state=0), not cv=5 or other folds.")
    expect(_candidates(search) >= MIN_CANDIDATES,
           f"build_search() should try at least {MIN_CANDIDATES} hyperparameter settings.")
    if isinstance(search, RandomizedSearchCV):
        expect(_is_int(search.random_state) and search.random_state == 0,
               "a RandomizedSearchCV needs random_state=0, so that it draws the same candidates "
               "every run.")
    model = _tuned_estimator(search)
    seed_of_model = model.get_params(deep=False).get("random_state", 0)
    expect(_is_int(seed_of_model) and seed_of_model == 0, "the estimator build_search() tunes "
           f"({type(model).__name__}) should have random_state=0, so that the search repeats.")
    _agreeing(search_fit)


@points(1, question="q3")
def test_search_tunes_tree_ensemble(search_claim, search_fit):
    """the search tunes a tree ensemble, and fits on fresh rows like the search it describes"""
    search = _search(search_claim)
    model = _tuned_estimator(search)
    expect(_is_tree_ensemble(model), f"build_search() tunes a {type(model).__name__}: the text "
           "asks for a tree ensemble (a random forest, extra trees or gradient boosting, e.g. "
           "LightGBM).")
    fit = _agreeing(search_fit)
    best = fit["best_params"]
    expect(isinstance(best, dict) and len(best) >= 1,
           "after fitting, the search's best_params_ should be a dict of tuned settings.")


@pytest.fixture(scope="module")
def search_here(nb) -> Started[Any]:
    """The learner's `search` rebuilt here from its own parameters and fitted on the training
    split only, in the background (see ``_head_start``): ``result()`` is its best CV score and
    its probabilities for the test split, or raises the failure that rebuilding or fitting it
    met."""
    X_train, X_test, y_train, _y_test = notebook_split()
    try:
        expect(nb.has("search"), "`search` should be your build_search(), fitted on X_train and "
               "y_train.")
        spec = spec_of(nb, "search", what="`search`")
        expect(spec is not None, "`search` is not set yet (it is None): fit build_search() on "
               "X_train, y_train and store it in `search`.")
        search = rebuild(spec)
    except AssertionError as exc:  # a LearnerFailure or a failed expect: the tests report it
        failure = exc

        def refused() -> dict[str, Any]:
            raise failure

        return started(refused)

    def fit() -> dict[str, Any]:
        search.fit(X_train, y_train)
        return {"best_score": float(search.best_score_),
                "proba": search.predict_proba(X_test)[:, 1]}

    return started(lambda: grader_fit(fit, "your `search`"))


@pytest.fixture(scope="module", autouse=True)
def _head_start(request) -> None:
    """The grader-only refits of Q2 and Q3 start before the first test, in the background, so
    they share the cores with the kernel's fits that the other tests wait for instead of
    running after them (each only where its test is selected). The first test starts before
    the notebook has run, so the one that needs nothing from it runs beside the notebook."""
    selected = {item.originalname for item in request.session.items}
    for test, fixture in (("test_compare_models_matches_cv", "grader_comparison"),  # first:
                          # it needs no kernel, so it runs while the notebook does
                          ("test_reported_cv_results", "training_cv"),
                          ("test_search_no_test_peeking", "search_here")):
        if test in selected:
            request.getfixturevalue(fixture)


@points(2, question="q3")
def test_search_no_test_peeking(nb, search_here):
    """`search` was fitted on the training split only, and `search_test_auc` is honest"""
    _X_train, X_test, _y_train, y_test = notebook_split()
    search_here = search_here.result()
    expect(nb.has("search.best_score_"), "`search` should be your build_search(), fitted on "
           "X_train and y_train.")
    honest_auc = float(roc_auc_score(y_test, search_here["proba"]))
    expect_close(nb.get("search.best_score_"), search_here["best_score"], "`search` was not "
                 "fitted on the training split alone (its best CV score differs from the same "
                 "search fitted on X_train, y_train): fit it on the training rows only; the test "
                 "rows must stay unseen until the end.", rtol=1e-6, atol=1e-6)
    expect_close(nb.get("search_test_auc"), honest_auc, "`search_test_auc` should be "
                 "roc_auc_score(y_test, search.predict_proba(X_test)[:, 1]) for the search fitted "
                 "on the training split.", rtol=1e-6, atol=1e-6)


# -- Q4 --------------------------------------------------------------------------------------
@points(2, question="q4")
def test_top_features(nb, rng):
    """top_features returns the columns with the largest random-forest importances, most
    important first"""
    n, d = 600, 12
    X = rng.normal(size=(n, d))
    informative = rng.choice(d, size=3, replace=False)  # a few columns carry the signal
    logit = X[:, informative] @ np.array([3.0, -2.5, 2.0])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)

    def ranked() -> list[int]:
        with single_threaded():
            forest = RandomForestClassifier(n_estimators=100, n_jobs=1, random_state=0).fit(X, y)
        return [int(i) for i in np.argsort(-forest.feature_importances_, kind="stable")]

    ks = (5, d)  # k == the number of columns: every column, in order
    ranking, answers = overlapped(ranked, lambda: [nb.call("top_features", X, y, k) for k in ks])
    for k, got in zip(ks, answers, strict=True):
        expect(isinstance(got, list), "top_features(X, y, k) should return a list of ints (it "
               f"returned a {type(got).__name__}: e.g. `.tolist()` or `[int(i) for i in ...]`).")
        expect(len(got) == k, "top_features(X, y, k) should return k column indices.")
        # ints only (NumPy integers arrive as ints; floats, bools and strings are not indices)
        expect(all(_is_int(g) for g in got), "top_features should return a list of ints.")
        expect(len(set(got)) == k and all(0 <= i < d for i in got),
               "top_features should return k distinct column indices.")
        expect(set(got) == set(ranking[:k]), "top_features does not return the k columns with "
               "the largest feature_importances_ of RandomForestClassifier(n_estimators=100, "
               "n_jobs=1, random_state=0) fitted on X, y: fit that forest, sort its "
               "feature_importances_ from the largest to the smallest and take the first k.")
        expect(got == ranking[:k], "top_features has the right columns in the wrong order: "
               "list them most important first (the largest importance first).")


# -- Q5 --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def final_runs(nb, seed) -> dict[str, Any] | AssertionError:
    """train_final_model trained twice on the same 1,000 fresh rows (drawn from the secret
    seed), each model's probabilities for 2,000 other rows whose labels stay here."""
    rng = np.random.default_rng([seed, 45])
    X, y = interaction_data(1000, rng)
    X_new, y_new = interaction_data(2000, rng)
    try:
        runs = []
        for _ in range(2):
            model = nb.call("train_final_model", X, y, keep=True, timeout=120)
            proba = nb.call(model.attr("predict_proba"), X_new)
            expect(isinstance(proba, np.ndarray) and proba.shape == (len(y_new), 2)
                   and proba.dtype.kind == "f" and bool(np.isfinite(proba).all()),
                   "train_final_model(X, y) should return the fitted model: its predict_proba "
                   "should give one row of two probabilities per sample.")
            runs.append(proba[:, 1])
    except AssertionError as exc:  # a LearnerFailure or a failed expect: the tests report it
        return exc
    return {"first": runs[0], "second": runs[1], "y_new": y_new}


def _runs(final_runs: Any) -> dict[str, Any]:
    if isinstance(final_runs, AssertionError):
        raise final_runs
    return final_runs


@points(2, question="q5")
def test_final_model_auc(final_runs):
    """train_final_model reaches ROC-AUC >= 0.78 on 2,000 rows it never saw"""
    runs = _runs(final_runs)
    auc = float(roc_auc_score(runs["y_new"], runs["first"]))
    expect(auc >= LINEAR_AUC, f"held-out ROC-AUC is {auc:.3f}, close to a linear model's: the "
           "label depends on interactions and curves, which tree ensembles capture.")
    expect(auc >= FINAL_AUC, f"held-out ROC-AUC is {auc:.3f}, below the {FINAL_AUC} required: "
           "try a boosted ensemble with a moderate learning rate and enough rounds.")


@points(1, question="q5")
def test_final_model_repeats(final_runs):
    """train_final_model, trained twice on the same rows, gives the same predictions"""
    runs = _runs(final_runs)
    same = np.allclose(runs["second"], runs["first"], rtol=1e-9, atol=1e-12)
    expect(same, "train_final_model trained twice on the same rows gives different "
           "predictions: seed it (random_state=0 wherever an estimator takes one).")
