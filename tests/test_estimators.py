"""Rebuilding a learner's estimator in the grader from a plain-data spec
(``mlgrade.grading.estimators``): what is rebuilt, what is refused and why, and one run through a
real kernel where the spec comes over the bridge."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.stats
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from tests.conftest import notebook_from_cells

from mlgrade.bridge.client import LearnerFailure
from mlgrade.grading.estimators import SPEC_SOURCE, NotRebuildable, rebuild, resolve_class


def spec(obj: Any) -> Any:
    """The spec the kernel-side code makes of ``obj`` (run here on a grader-built object)."""
    scope: dict[str, Any] = {}
    exec(SPEC_SOURCE, scope)
    return scope["_mlgrade_spec"](obj)


def lr(**params: Any) -> dict[str, Any]:
    return {"__class__": "sklearn.linear_model._logistic.LogisticRegression", "params": params}


@pytest.mark.parametrize("original", [
    make_pipeline(StandardScaler(), LogisticRegression(C=0.5, class_weight={0: 1, 1: 3})),
    ColumnTransformer([("num", StandardScaler(), [0, 1]),
                       ("cat", OneHotEncoder(dtype=np.float32),
                        make_column_selector(dtype_include=np.number))], remainder="passthrough"),
    make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()),
    GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, scoring="roc_auc",
                 cv=StratifiedKFold(5, shuffle=True, random_state=0)),
    RandomizedSearchCV(LogisticRegression(), {"C": scipy.stats.loguniform(0.01, 10)}, n_iter=3,
                       random_state=0),
], ids=["pipeline", "column-transformer", "numpy-function", "grid-search", "randomized-search"])
def test_rebuilt_estimator_has_the_same_parameters(original: Any) -> None:
    rebuilt = rebuild(spec(original))
    assert type(rebuilt) is type(original) and rebuilt is not original
    assert repr(spec(rebuilt)) == repr(spec(original))


def test_rebuilt_pipeline_predicts_like_the_original() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3)) * [1, 100, 0.01]
    y = (X[:, 0] + X[:, 1] / 100 > 0).astype(int)
    original = make_pipeline(StandardScaler(), LogisticRegression(C=0.3)).fit(X, y)
    rebuilt = rebuild(spec(original)).fit(X, y)
    assert np.array_equal(original.predict_proba(X), rebuilt.predict_proba(X))


def test_lightgbm_and_xgboost_rebuild_single_threaded() -> None:
    lgbm = rebuild(spec(__import__("lightgbm").LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=-1)))
    xgb = rebuild(spec(__import__("xgboost").XGBClassifier(n_estimators=5, max_depth=2)))
    assert lgbm.get_params()["n_jobs"] == 1 and lgbm.get_params()["verbose"] == -1
    assert xgb.get_params()["max_depth"] == 2 and xgb.get_params()["n_jobs"] == 1


def test_memory_folder_is_dropped() -> None:
    rebuilt = rebuild(spec(Pipeline([("m", LogisticRegression())], memory="/tmp/somewhere")))
    assert rebuilt.memory is None


@pytest.mark.parametrize(("bad", "words"), [
    ({"__class__": "os.system", "params": {}}, "not a scikit-learn"),
    ({"__class__": "__main__.MyModel", "params": {}}, "your own"),
    ({"__class__": "sklearn.linear_model._logistic._private", "params": {}}, "not a public"),
    ({"__class__": "sklearn.linear_model.os", "params": {}}, "not a class"),
    ({"__class__": "sklearn.linear_model._base.LinearRegression_", "params": {}}, "not a class"),
    ({"__class__": "sklearn.linear_model._other.LogisticRegression", "params": {}}, "not a class"),
    ({"__class__": "sklearn.utils.Bunch", "params": {}}, "not a scikit-learn"),
    ({"__class__": "sklearn.metrics.make_scorer", "params": {}}, "not a scikit-learn"),
    ({"__class__": "sklearn.model_selection.ParameterGrid", "params": {}}, "not an estimator"),
    (lr(C=object()), "not plain data"),
    (lr(C={"__unsupported__": "a __main__.Thing"}), "__main__.Thing"),
    (lr(bogus=1), "no parameter `bogus`"),
    (lr(max_iter=10**9), "at most"),
    ({"__class__": "sklearn.preprocessing.FunctionTransformer",
      "params": {"func": {"__function__": "__main__.my_log"}}}, "my_log"),
    ({"__class__": "sklearn.preprocessing.FunctionTransformer",
      "params": {"func": {"__function__": "os.system"}}}, "os.system"),
    ({"__class__": "sklearn.preprocessing.FunctionTransformer",
      "params": {"func": {"__function__": "numpy.load"}}}, "numpy.load"),
    ({"__class__": "lightgbm.sklearn.LGBMClassifier", "params": {"machines": "10.0.0.1:1234"}},
     "no parameter `machines`"),
    ({"__class__": "lightgbm.sklearn.LGBMClassifier", "params": {"output_model": "/tmp/x"}},
     "no parameter `output_model`"),
    ({"__class__": "sklearn.feature_extraction.text.CountVectorizer",
      "params": {"input": "filename"}}, "read files"),
    ({"__class__": "sklearn.model_selection.GridSearchCV",
      "params": {"estimator": lr(), "param_grid": {"max_iter": [10, 10**8]}}}, "at most"),
    ({"__class__": "sklearn.model_selection.RandomizedSearchCV",
      "params": {"estimator": lr(), "param_distributions": {"C": {"__distribution__": "system",
                                                                  "args": [], "kwds": {}}}}},
     "not a scipy.stats"),
    ({"__unsupported__": "a __main__.Handmade"}, "__main__.Handmade"),
    ([1, 2], "not a scikit-learn estimator"),
])
def test_refused_with_a_reason(bad: Any, words: str) -> None:
    with pytest.raises(NotRebuildable) as info:
        rebuild(bad)
    assert isinstance(info.value, LearnerFailure) and words in str(info.value)


def test_a_named_learner_function_is_not_rebuildable() -> None:
    def my_log(x: Any) -> Any:
        return np.log1p(x)

    with pytest.raises(NotRebuildable, match="my_log"):
        rebuild(spec(make_pipeline(FunctionTransformer(my_log), LogisticRegression())))


def test_public_and_private_module_paths_name_the_same_class() -> None:
    assert resolve_class("sklearn.linear_model.LogisticRegression") is LogisticRegression
    assert resolve_class("sklearn.linear_model._logistic.LogisticRegression") is LogisticRegression
    assert resolve_class("sklearn.model_selection._split.StratifiedKFold") is StratifiedKFold


KERNEL_NOTEBOOK = notebook_from_cells(
    "import numpy as np\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "from sklearn.pipeline import make_pipeline\n"
    "from sklearn.preprocessing import StandardScaler, FunctionTransformer\n"
    "def build():\n"
    "    return make_pipeline(StandardScaler(), LogisticRegression(C=0.25))\n"
    "def build_own():\n"
    "    return make_pipeline(FunctionTransformer(lambda x: x * 2), LogisticRegression())\n"
    "# a forged name: the class claims to be scikit-learn's, but is the learner's\n"
    "class Forged(LogisticRegression):\n"
    "    def predict(self, X):\n"
    "        return np.ones(len(X), dtype=int)\n"
    "Forged.__module__ = 'sklearn.linear_model._logistic'\n"
    "Forged.__qualname__ = Forged.__name__ = 'LogisticRegression'\n"
    "forged = Forged(C=0.25)\n",
)

KERNEL_GRADERS = '''
import numpy as np
from mlgrade.grading import LearnerFailure, expect, points
from mlgrade.grading.estimators import rebuild, spec_of, spec_of_call

@points(1)
def test_rebuilt_from_the_kernel_predicts_like_the_kernel(nb, rng):
    """a spec fetched over the bridge rebuilds the same pipeline here"""
    X = rng.normal(size=(60, 3)) * [1, 50, 0.1]
    y = (X[:, 0] > 0).astype(int)
    pipe = nb.call("build", keep=True)
    nb.call(pipe.attr("fit"), X, y, discard=True)
    here = rebuild(spec_of(nb, pipe, what="the pipeline")).fit(X, y)
    expect(np.array_equal(here.predict(X), nb.call(pipe.attr("predict"), X)), "same predictions")
    expect(rebuild(spec_of_call(nb, "build", what="build()")).get_params()["logisticregression__C"]
           == 0.25, "params came over")

@points(1)
def test_own_function_is_refused(nb):
    """a pipeline holding a lambda cannot be rebuilt, and the failure says so"""
    try:
        rebuild(spec_of_call(nb, "build_own", what="build_own()"))
    except LearnerFailure as exc:
        expect("cannot rebuild" in str(exc), "names the reason")
    else:
        expect(False, "a lambda was rebuilt")

@points(1)
def test_forged_class_is_rebuilt_as_the_real_one(nb, rng):
    """a class that renames itself is rebuilt as the library class it claims to be"""
    X = rng.normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)
    model = rebuild(spec_of(nb, "forged", what="forged")).fit(X, y)
    expect(type(model).__module__.startswith("sklearn.") and model.predict(X).min() == 0,
           "the grader's own class, not the learner's")
'''


@pytest.mark.kernel
def test_specs_over_a_real_kernel(tmp_path: Path) -> None:
    import nbformat

    from mlgrade.assignments import load_assignment
    from mlgrade.config import resolve_settings
    from mlgrade.pipeline import check_notebook

    folder = tmp_path / "specs"
    (folder / "graders").mkdir(parents=True)
    (folder / "assignment.toml").write_text('title = "specs"\n', encoding="utf-8")
    (folder / "graders" / "test_specs.py").write_text(textwrap.dedent(KERNEL_GRADERS),
                                                      encoding="utf-8")
    nbformat.write(KERNEL_NOTEBOOK, folder / "specs.ipynb")
    result = check_notebook(folder / "specs.ipynb", load_assignment(folder),
                            resolve_settings({}, None, {})).result
    assert [(t.id, t.status, t.feedback) for t in result.tests if t.status != "passed"] == []
    assert result.score == 3


def test_overlapped_returns_both_and_raises_the_kernels_error_first() -> None:
    import threading

    from mlgrade.grading.estimators import overlapped

    caller = threading.get_ident()
    seen: list[int] = []
    ours, theirs = overlapped(lambda: seen.append(threading.get_ident()) or 1,
                              lambda: threading.get_ident())
    assert ours == 1 and theirs == caller and seen != [caller]  # kernel work stays on this thread

    def grader_fails() -> None:
        raise ValueError("grader")

    def kernel_fails() -> None:
        raise LearnerFailure("kernel")

    with pytest.raises(LearnerFailure, match="kernel"):
        overlapped(grader_fails, kernel_fails)
    with pytest.raises(ValueError, match="grader"):
        overlapped(grader_fails, lambda: 2)
