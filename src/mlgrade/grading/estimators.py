"""Rebuild a learner's estimator in the grader process from a plain-data spec.

The learner's kernel is an oracle (docs/security.md): a grader must not run its own
cross-validation there, nor trust a class name, ``get_params`` or ``isinstance`` computed there.
Instead the grader asks for a *spec* of the learner's estimator (the class path and
``get_params(deep=False)``, recursively), which is plain data the learner could have typed by
hand, and rebuilds the estimator here:

    spec = spec_of_call(nb, "build_pipeline", what="`build_pipeline()`")   # a learner claim
    pipe = rebuild(spec)          # allow-listed classes only, plain-data params, within budget
    scores = grader_fit(lambda: cross_val_score(pipe, X, y, cv=folds, scoring="f1"),
                        "your pipeline")   # in a child under limits; labels never leave here

A spec is JSON-like data: ``None``/bool/int/float/str, lists, tuples, dicts, NumPy arrays of plain
dtypes, and tagged dicts: ``{"__class__": "sklearn.linear_model._logistic.LogisticRegression",
"params": {...}}`` for an estimator (or a cross-validation splitter), ``{"__dtype__": "float64"}``
for a NumPy type, ``{"__function__": "numpy.log1p"}`` for a function, ``{"__distribution__":
"loguniform", "args": [...], "kwds": {...}}`` for a frozen ``scipy.stats`` distribution and
``{"__unsupported__": "what"}`` for a value the kernel could not describe.

Classes are looked up only in a fixed list of scikit-learn, LightGBM and XGBoost packages, by a
public name those packages export; the module named in the spec is never imported. Functions
come from a fixed allow-list (NumPy ufuncs, scikit-learn's feature-scoring functions): an
estimator that holds a learner-written function (``FunctionTransformer(func=my_function)``,
a callable ``scoring``) cannot be rebuilt, and :func:`rebuild` says so.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import numpy as np

from mlgrade.bridge.client import LearnerFailure, Ref
from mlgrade.grading.budget import check_budget
from mlgrade.grading.child import run_budgeted

T = TypeVar("T")
U = TypeVar("U")

# Packages whose public classes may be rebuilt. A spec's module must be one of them or inside
# one (the class's real, private module); the class is then taken from the package itself.
ALLOWED_PACKAGES: tuple[str, ...] = tuple(f"sklearn.{name}" for name in (
    "calibration", "cluster", "compose", "covariance", "cross_decomposition", "decomposition",
    "discriminant_analysis", "dummy", "ensemble", "feature_extraction",
    "feature_extraction.text", "feature_selection", "gaussian_process", "impute", "isotonic",
    "kernel_approximation", "kernel_ridge", "linear_model", "manifold", "mixture",
    "model_selection", "multiclass", "multioutput", "naive_bayes", "neighbors", "neural_network",
    "pipeline", "preprocessing", "random_projection", "semi_supervised", "svm", "tree",
)) + ("lightgbm", "xgboost")

# Functions an estimator may hold (FunctionTransformer's func, SelectKBest's score_func).
_SKLEARN_FUNCTIONS = {
    "sklearn.feature_selection": ("chi2", "f_classif", "f_regression", "mutual_info_classif",
                                  "mutual_info_regression", "r_regression"),
}

# LightGBM keeps unknown keyword arguments and hands them to its C++ core, some of which read or
# write files or open sockets (input_model, output_model, machines, ...): only these pass.
_LIGHTGBM_EXTRAS = frozenset({
    "verbose", "verbosity", "min_data_in_leaf", "min_sum_hessian_in_leaf", "feature_fraction",
    "feature_fraction_bynode", "bagging_fraction", "bagging_freq", "bagging_seed",
    "feature_fraction_seed", "seed", "lambda_l1", "lambda_l2", "max_bin", "min_gain_to_split",
    "deterministic", "force_col_wise", "force_row_wise", "extra_trees", "path_smooth",
    "is_unbalance", "scale_pos_weight", "boost_from_average", "min_data_in_bin",
    "max_cat_to_onehot", "cat_smooth", "cat_l2", "linear_tree", "metric", "num_threads",
})
_THREAD_PARAMS = ("n_jobs", "num_threads", "nthread")

DEFAULT_CAPS: Mapping[str, int] = {
    "n_estimators": 2000, "max_iter": 100_000, "n_iter": 500, "num_iterations": 2000,
    "num_boost_round": 2000, "n_repeats": 20,
}
MAX_DEPTH = 24
MAX_ITEMS = 10_000


class NotRebuildable(LearnerFailure):
    """The learner's estimator cannot be rebuilt in the grader; the message says why."""


# --------------------------------------------------------------------------- kernel side
# Sent into the kernel and run there: its result is a learner claim (plain data), judged here.
SPEC_SOURCE = r'''
def _mlgrade_spec(value, depth=0):
    import inspect
    import types
    import numpy as _np
    if depth > 24:
        return {"__unsupported__": "a value nested too deeply"}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, _np.generic):
        return value.item()
    if isinstance(value, _np.ndarray):
        if value.dtype.kind in "biufU":
            return value
        return {"__unsupported__": "an array of dtype " + str(value.dtype)}
    if isinstance(value, _np.dtype):
        return {"__dtype__": value.name}
    if isinstance(value, type) and issubclass(value, _np.generic):
        return {"__dtype__": value.__name__}
    if isinstance(value, (list, tuple)):
        items = [_mlgrade_spec(v, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: _mlgrade_spec(v, depth + 1) for k, v in value.items()}
    cls = type(value)
    path = str(getattr(cls, "__module__", "?")) + "." + str(getattr(cls, "__qualname__", "?"))
    if isinstance(value, _np.ufunc):
        return {"__function__": "numpy." + value.__name__}
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        return {"__function__": str(getattr(value, "__module__", "?")) + "."
                + str(getattr(value, "__qualname__", "?"))}
    if hasattr(value, "get_params") and not isinstance(value, type):
        params = value.get_params(deep=False)
        return {"__class__": path,
                "params": {str(k): _mlgrade_spec(v, depth + 1) for k, v in params.items()}}
    dist = getattr(value, "dist", None)
    if dist is not None and hasattr(value, "args") and hasattr(value, "kwds"):
        return {"__distribution__": str(getattr(dist, "name", "?")),
                "args": [_mlgrade_spec(v, depth + 1) for v in value.args],
                "kwds": {str(k): _mlgrade_spec(v, depth + 1) for k, v in value.kwds.items()}}
    try:  # a configuration object such as a CV splitter: its constructor's arguments
        names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
        if names and all(hasattr(value, n) for n in names):
            return {"__class__": path,
                    "params": {n: _mlgrade_spec(getattr(value, n), depth + 1) for n in names}}
    except (TypeError, ValueError):
        pass
    return {"__unsupported__": "a " + path}
'''


def spec_of(nb: Any, target: Ref | str, *, what: str, timeout: float | None = None) -> Any:
    """The spec of a kept object (a :class:`Ref`) or of a learner variable: a learner claim."""
    inputs: dict[str, Any] = {"obj": target} if isinstance(target, Ref) else {"name": target}
    pick = "obj" if isinstance(target, Ref) else "ns[name]"
    return nb.eval_untrusted(f"{SPEC_SOURCE}\nresult = _mlgrade_spec({pick})", what=what,
                             timeout=timeout, **inputs)


def spec_of_call(nb: Any, factory: str, *, what: str, timeout: float | None = None) -> Any:
    """The spec of what the learner's ``factory()`` returns (one round trip): a learner claim."""
    return nb.eval_untrusted(f"{SPEC_SOURCE}\nresult = _mlgrade_spec(ns[name]())", what=what,
                             timeout=timeout, name=factory)


# --------------------------------------------------------------------------- grader side
def _refuse(detail: str) -> NotRebuildable:
    return NotRebuildable(f"the grader could not rebuild your estimator from its parameters: "
                          f"{detail}.")


def _split_path(path: Any, kind: str) -> tuple[str, str, str]:
    """(allowed package, claimed module, public name) of a dotted path, or refuse."""
    if not isinstance(path, str) or not path.isascii() or len(path) > 200:
        raise _refuse(f"a {kind} path that is not a short dotted name")
    module, _, name = path.rpartition(".")
    if not name.isidentifier() or name.startswith("_"):
        raise _refuse(f"`{path}` is not a public {kind}")
    for package in sorted(ALLOWED_PACKAGES, key=len, reverse=True):
        if module == package or module.startswith(package + "."):
            return package, module, name
    raise _refuse(f"`{path}` is not a scikit-learn, LightGBM or XGBoost {kind} (your own "
                  f"classes and functions cannot be rebuilt: use the library's)")


def resolve_class(path: Any) -> type:
    """The allow-listed class a spec's ``__class__`` names (imported from our package list)."""
    package, module, name = _split_path(path, "class")
    try:
        cls = getattr(importlib.import_module(package), name, None)
    except ImportError:
        raise _refuse(f"`{package}` is not installed where the grader runs") from None
    if not isinstance(cls, type) or (module != package and cls.__module__ != module):
        raise _refuse(f"`{path}` is not a class that {package} provides")
    from sklearn.base import BaseEstimator
    from sklearn.compose import make_column_selector
    from sklearn.model_selection import BaseCrossValidator, BaseShuffleSplit

    if not issubclass(cls, (BaseEstimator, BaseCrossValidator, BaseShuffleSplit)) and cls is not make_column_selector:
        raise _refuse(f"`{path}` is not an estimator, transformer or cross-validation splitter")
    return cls


def _resolve_function(path: Any) -> Any:
    if isinstance(path, str) and path.startswith("numpy.") and path.count(".") == 1:
        func = getattr(np, path.split(".", 1)[1], None)
        if isinstance(func, np.ufunc):
            return func
    elif isinstance(path, str):
        for package, names in _SKLEARN_FUNCTIONS.items():
            module, _, name = path.rpartition(".")
            if name in names and (module == package or module.startswith(package + ".")):
                func = getattr(importlib.import_module(package), name)
                if module in (package, func.__module__):
                    return func
    raise _refuse(f"it holds a function (`{path}`) the grader cannot rebuild: only NumPy ufuncs "
                  "and scikit-learn's scoring functions can be; put your own code in a "
                  "scikit-learn transformer the grader knows, or describe it with plain parameters")


def _accepted_params(cls: type) -> set[str] | None:
    """Parameter names a rebuilt ``cls`` may take (None: its constructor's own check decides)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        getter = getattr(klass, "_get_param_names", None)
        if getter is not None:
            with contextlib.suppress(Exception):
                names.update(getter())
    if cls.__module__.startswith("lightgbm"):
        names |= _LIGHTGBM_EXTRAS
    return names if names else None


def _capped(key: str, value: Any, caps: Mapping[str, int]) -> None:
    base = key.rsplit("__", 1)[-1]
    cap = caps.get(base)
    if cap is None:
        return
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(item, (int, float)) and not isinstance(item, bool) and item > cap:
            raise _refuse(f"`{key}={item}` is more than the grader will train (at most {cap})")


def _value(value: Any, caps: Mapping[str, int], depth: int) -> Any:
    """A spec value checked as plain data and turned into what the constructor receives."""
    if depth > MAX_DEPTH:
        raise _refuse("its parameters are nested too deeply")
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        if len(value) > MAX_ITEMS:
            raise _refuse("a parameter is an overly long string")
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufU" or value.size > MAX_ITEMS:
            raise _refuse("a parameter is an array the grader does not accept")
        return value.copy()
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ITEMS:
            raise _refuse("a parameter is an overly long list")
        items = [_value(v, caps, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        if "__class__" in value:
            return _build(value, caps, depth + 1)
        if "__unsupported__" in value:
            raise _refuse(f"a parameter holds {str(value['__unsupported__'])[:120]}, which is "
                          "not plain data")
        if "__dtype__" in value:
            kind = getattr(np, str(value["__dtype__"]), None)
            if not (isinstance(kind, type) and issubclass(kind, np.generic)):
                raise _refuse(f"`{str(value['__dtype__'])[:60]}` is not a NumPy type")
            return kind
        if "__function__" in value:
            return _resolve_function(value["__function__"])
        if "__distribution__" in value:
            return _distribution(value, caps, depth)
        if len(value) > MAX_ITEMS:
            raise _refuse("a parameter is an overly large dict")
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if not (key is None or isinstance(key, (bool, int, float, str))):
                raise _refuse("a dict parameter has a key that is not plain data")
            if isinstance(key, str):
                _capped(key, item, caps)
            out[key] = _value(item, caps, depth + 1)
        return out
    raise _refuse(f"a parameter of type {type(value).__name__} is not plain data")


def _distribution(value: dict[str, Any], caps: Mapping[str, int], depth: int) -> Any:
    import scipy.stats

    name = value.get("__distribution__")
    dist = getattr(scipy.stats, name, None) if isinstance(name, str) and name.isidentifier() else None
    if not isinstance(dist, (scipy.stats.rv_continuous, scipy.stats.rv_discrete)):
        raise _refuse(f"`{str(name)[:60]}` is not a scipy.stats distribution")
    args, kwds = value.get("args", []), value.get("kwds", {})
    if not isinstance(args, (list, tuple)) or not isinstance(kwds, dict):
        raise _refuse("a distribution's arguments are not plain data")
    plain_args = [_value(a, caps, depth + 1) for a in args]
    plain_kwds = {str(k): _value(v, caps, depth + 1) for k, v in kwds.items()}
    try:
        return dist(*plain_args, **plain_kwds)
    except Exception as exc:
        raise _refuse(f"the distribution {name}{tuple(plain_args)} is invalid ({exc})") from None


def _build(spec: dict[str, Any], caps: Mapping[str, int], depth: int) -> Any:
    cls = resolve_class(spec.get("__class__"))
    params = spec.get("params", {})
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise _refuse(f"the parameters of `{cls.__name__}` are not a dict of names")
    accepted = _accepted_params(cls)
    unknown = sorted(set(params) - accepted) if accepted is not None else []
    if unknown:
        raise _refuse(f"`{cls.__name__}` takes no parameter `{unknown[0][:60]}` the grader accepts")
    kwargs: dict[str, Any] = {}
    for key, value in params.items():
        _capped(key, value, caps)
        kwargs[key] = _value(value, caps, depth + 1)
    # What never changes a result but would act on the grading machine: caching folders, file
    # inputs, threads (every rebuilt estimator fits single-threaded).
    if kwargs.get("memory") is not None:
        kwargs["memory"] = None
    if "input" in kwargs and kwargs["input"] != "content":
        raise _refuse(f"`{cls.__name__}(input={kwargs['input']!r})` would read files")
    boosting = cls.__module__.startswith(("lightgbm", "xgboost"))  # None: every core there
    for key in _THREAD_PARAMS:
        if key in kwargs and (kwargs[key] is not None or boosting):
            kwargs[key] = 1
    try:
        return cls(**kwargs)
    except Exception as exc:
        raise _refuse(f"`{cls.__name__}(...)` rejects these parameters ({str(exc)[:160]})") from None


def rebuild(spec: Any, *, caps: Mapping[str, int] = DEFAULT_CAPS) -> Any:
    """A new, unfitted estimator (or splitter) built in this process from a plain-data ``spec``.

    Raises :class:`NotRebuildable` (a :class:`LearnerFailure`: the test fails with a learner-facing
    message) when a class is not allow-listed, a parameter is not plain data, a function is the
    learner's own, or a size parameter (``n_estimators``, ``max_iter``...) exceeds ``caps``; and
    :class:`~mlgrade.grading.budget.OverBudget` when the estimator as a whole (nested
    ensembles, search grids, network sizes: their product) is over the grader's budget.
    """
    if not isinstance(spec, dict) or "__class__" not in spec:
        detail = spec.get("__unsupported__") if isinstance(spec, dict) else None
        raise _refuse(f"it is {str(detail)[:120]}, not an estimator" if detail else
                      "it is not a scikit-learn estimator")
    built = _build(spec, caps, 0)
    check_budget(built)
    return built


def grader_fit(work: Callable[[], T], what: str) -> T:
    """The grader's fit, search or scoring of a *rebuilt learner estimator* (``work``), run in
    a child process under the grader's time and memory limits (:mod:`mlgrade.grading.child`),
    single-threaded and silent; ``work`` returns plain data (scores, predictions, best
    parameters), never the fitted estimator. Whatever goes wrong in it (bad parameter values,
    a missing ``predict_proba``, a limit) is a :class:`LearnerFailure` naming ``what``."""
    return run_budgeted(work, what=what)


def spec_params(spec: Any) -> dict[str, Any]:
    """The ``params`` of an estimator spec (empty when the spec has none): learner claims."""
    params = spec.get("params") if isinstance(spec, dict) else None
    return params if isinstance(params, dict) else {}


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Native thread pools (BLAS, OpenMP) limited to one thread while the grader fits: the
    notebooks do the same, and grading machines are small and shared."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@contextlib.contextmanager
def learner_errors(what: str) -> Iterator[None]:
    """Errors raised while the grader fits or scores a *rebuilt learner estimator* are the
    learner's (bad parameter values, a grid naming unknown parameters): a learner failure."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence and undefined-metric warnings
            yield
    except (LearnerFailure, MemoryError):  # a MemoryError: the budget's, said by grader_fit
        raise
    except Exception as exc:
        message = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise LearnerFailure(f"{what} failed when the grader fitted it on its own data "
                             f"({type(exc).__name__}{': ' + message if message else ''}).") from None


def is_finite_number(value: Any) -> bool:
    """Whether a learner value is a real, finite number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Started(Generic[T]):
    """Grader-side work begun now on a daemon thread of this process; :meth:`result` waits for
    it and returns its value or raises what it raised (an ``AssertionError`` such as a
    :class:`LearnerFailure` reaches the test that reads it, as if run there)."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._done = threading.Event()
        self._value: T | None = None
        self._error: BaseException | None = None
        self._work = work
        threading.Thread(target=self._run, daemon=True, name="mlgrade-grader-work").start()

    def _run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as exc:  # handed to the reader
            self._error = exc
        finally:
            self._done.set()

    def wait(self) -> None:
        """Until the work has ended, whatever its outcome."""
        self._done.wait()

    def result(self) -> T:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def started(work: Callable[[], T]) -> Started[T]:
    """Begin the grader's own work (a refit that needs nothing more from the kernel) now, in
    the background, so it runs while later tests question the kernel instead of after them:
    on a small machine the kernel's fits and the grader's then share the cores."""
    return Started(work)


def overlapped(grader_work: Callable[[], T], kernel_work: Callable[[], U]) -> tuple[T, U]:
    """Run the grader's own fits (``grader_work``, in a worker thread of this process) while
    the kernel works on the learner's side (``kernel_work``, on the calling thread: the one
    that may drive the kernel). The kernel is another process, so on a small machine the two
    share the cores instead of taking turns. Exceptions come out as if run one after the other
    (the kernel's first)."""
    work = started(grader_work)
    try:
        theirs = kernel_work()
    finally:
        work.wait()  # the grader's fits have ended before anything is raised or returned
    return work.result(), theirs
