"""A static estimate of what refitting a rebuilt learner estimator would cost, checked before
any fit (issue 21): caps on single parameters (``n_estimators <= 2000``) do not bound their
*product*, and nested ensembles, searches and wide networks multiply.

The estimate counts **base fits** (one tree, one boosting round, one linear model, one epoch of
a small network: each about a millisecond to a few on a grader's data) over the whole
estimator: an ensemble multiplies its inner estimator's count by ``n_estimators``, a search by
its number of candidates times its folds (plus the refit), with each searched parameter at its
most expensive value; a cross-validating wrapper by its folds plus one; a pipeline, union,
stack or vote adds its parts. Neural networks are also bounded by their **weights** (the
memory one copy of the network takes, 8 bytes each, and a few copies while it trains).

:func:`check_budget` refuses an estimator over either limit with a message that names the limit
and how the estimate was reached. The fit itself still runs in a child with a memory and time
limit (:mod:`mlgrade.grading.child`): this check only refuses, in microseconds, what could
never fit those limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlgrade.bridge.client import LearnerFailure

MAX_FITS = 100_000  # the month 4 reference search: 4 candidates x 5 folds x 100 rounds = 2,100
MAX_WEIGHTS = 2_000_000  # 16 MB a copy; MLPClassifier((100,)) on 30 features: 3,200
NOMINAL_FEATURES = 50  # a network's input width, unknown until it sees data
NOMINAL_ROWS = 1_000  # splitters whose folds depend on the data (LeaveOneOut)
EPOCH_WEIGHTS = 50_000  # weights one epoch of which counts as one base fit
_WORST_VALUES = 64  # searched values tried per parameter when looking for the costliest


class OverBudget(LearnerFailure):
    """The learner's estimator would cost more than the grader's budget; the message says why."""


@dataclass(frozen=True)
class Cost:
    fits: int
    weights: int
    why: str  # the factors, for the learner: "RandomForestClassifier(n_estimators=2000) x ..."


def _number(value: Any, default: int) -> int:
    """A size parameter as a count (a learner's odd value counts as the default; the
    constructor or the fit refuses it later)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return max(int(value), 0)


def _is_estimator(value: Any) -> bool:
    return hasattr(value, "get_params") and not isinstance(value, type)


def _parts(params: dict[str, Any]) -> list[Any]:
    """Estimators a meta-estimator holds: in parameters, and in (name, estimator, ...) lists."""
    found = []
    for value in params.values():
        if _is_estimator(value):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            for item in value:
                if _is_estimator(item):
                    found.append(item)
                elif isinstance(item, (list, tuple)) and len(item) >= 2 and _is_estimator(item[1]):
                    found.append(item[1])
    return found


def folds(cv: Any) -> int:
    """How many fits a ``cv`` parameter asks for (None: scikit-learn's default of 5)."""
    if cv is None:
        return 5
    if isinstance(cv, int) and not isinstance(cv, bool):
        return max(cv, 1)
    getter = getattr(cv, "get_n_splits", None)
    if getter is None:
        return 5
    try:
        return _number(getter(), 5)
    except Exception:  # LeaveOneOut and friends need the data
        import numpy as np

        try:
            return _number(getter(np.zeros((NOMINAL_ROWS, 1)), np.zeros(NOMINAL_ROWS)), 5)
        except Exception:
            return NOMINAL_ROWS


def _network(params: dict[str, Any], name: str) -> Cost:
    sizes = params.get("hidden_layer_sizes", (100,))
    layers = [sizes] if isinstance(sizes, (int, float)) else list(sizes or [])
    widths = [NOMINAL_FEATURES, *(_number(w, 1) for w in layers), 1]
    weights = sum(a * b for a, b in zip(widths, widths[1:], strict=False))
    epochs = _number(params.get("max_iter", 200), 200)
    fits = epochs * max(1, math.ceil(weights / EPOCH_WEIGHTS))
    return Cost(fits, weights, f"{name}(hidden_layer_sizes={tuple(layers)}, max_iter={epochs})")


def _candidates(params: dict[str, Any]) -> tuple[int, list[dict[str, list[Any]]]]:
    """(how many candidates a search tries, its grids as name -> values to try)."""
    grid = params.get("param_grid", params.get("param_distributions"))
    grids: list[dict[str, Any]] = [g for g in (grid if isinstance(grid, list) else [grid])
                                   if isinstance(g, dict)]
    values: list[dict[str, list[Any]]] = []
    total = 0
    for g in grids:
        count, tried = 1, {}
        for key, options in g.items():
            if isinstance(options, (list, tuple)):
                count *= len(options)
                tried[key] = list(options)
            else:  # a distribution: its largest value, where it has one
                count *= NOMINAL_ROWS
                upper = getattr(options, "support", None)
                try:
                    top = float(upper()[1]) if upper is not None else math.inf
                except Exception:
                    top = math.inf
                if math.isfinite(top):
                    tried[key] = [top]
        total += count
        values.append(tried)
    total = max(total, 1)
    if "n_iter" in params:  # randomized: at most n_iter draws
        total = min(total, _number(params.get("n_iter"), 10))
    return total, values


def _size(value: Any) -> float:
    """How large a searched value looks, to try the largest first (numbers, tuples of them)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) else 0.0
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return float(math.prod(min(float(v), 1e12) for v in value))
    return 0.0


def _worst(estimator: Any, grids: list[dict[str, list[Any]]], depth: int) -> Cost:
    """The cost of ``estimator`` with each searched parameter at its costliest value."""
    from sklearn.base import clone

    worst = cost(estimator, depth + 1)
    for grid in grids:
        chosen: dict[str, Any] = {}
        for key, options in grid.items():
            best, best_fits = None, -1
            if options and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                               for v in options):
                options = [max(options, key=_size)]  # sizes cost more as they grow
            for value in sorted(options, key=_size, reverse=True)[:_WORST_VALUES]:
                try:
                    fits = cost(clone(estimator).set_params(**{key: value}), depth + 1).fits
                except Exception:  # an unknown parameter: the search's fit will say so
                    continue
                if fits > best_fits:
                    best, best_fits = value, fits
            if best_fits >= 0:
                chosen[key] = best
        try:
            here = cost(clone(estimator).set_params(**chosen), depth + 1)
        except Exception:
            continue
        if here.fits > worst.fits:
            worst = here
    return worst


def cost(estimator: Any, depth: int = 0) -> Cost:
    """The estimated cost of fitting ``estimator`` once (a rebuilt, allow-listed object)."""
    if not _is_estimator(estimator) or depth > 40:
        return Cost(1, 0, type(estimator).__name__)
    name = type(estimator).__name__
    try:
        params = estimator.get_params(deep=False)
    except Exception:
        return Cost(1, 0, name)
    if "hidden_layer_sizes" in params:
        return _network(params, name)
    if "param_grid" in params or "param_distributions" in params:
        inner_est = params.get("estimator")
        count, grids = _candidates(params)
        inner = _worst(inner_est, grids, depth) if _is_estimator(inner_est) else Cost(1, 0, "?")
        k = folds(params.get("cv"))
        fits = inner.fits * (count * k + 1)
        return Cost(fits, inner.weights, f"{name}({count:,} candidates x {k} folds) x {inner.why}")
    parts = [cost(p, depth + 1) for p in _parts(params)]
    inner = Cost(max(1, sum(p.fits for p in parts)), max([0, *(p.weights for p in parts)]), "")
    rounds_key = next((k for k in ("n_estimators", "num_iterations", "num_boost_round")
                       if k in params), None)
    if rounds_key is None and "max_iter" in params and "Boosting" in name:
        rounds_key = "max_iter"
    factor, label = 1, name
    if rounds_key is not None:
        factor = _number(params[rounds_key], 100) if params[rounds_key] is not None else 100
        label = f"{name}({rounds_key}={factor})"
    if "cv" in params and not isinstance(params.get("cv"), str):
        k = folds(params.get("cv"))
        factor *= k + 1
        label = f"{label}({k} folds + 1)" if rounds_key is None else f"{label} x {k + 1}"
    inner_why = " + ".join(p.why for p in parts)
    if not parts:
        why = label
    elif factor == 1 and rounds_key is None:  # a pipeline, a union, a vote: its parts
        why = inner_why
    else:
        why = f"{label} x {f'({inner_why})' if len(parts) > 1 else inner_why}"
    return Cost(factor * inner.fits, inner.weights, why)


def check_budget(estimator: Any, *, max_fits: int = MAX_FITS,
                 max_weights: int = MAX_WEIGHTS) -> Cost:
    """Refuse (:class:`OverBudget`) an estimator whose estimated cost is over either limit."""
    found = cost(estimator)
    if found.weights > max_weights:
        raise OverBudget(f"the grader will not train your estimator: {found.why} has about "
                         f"{found.weights:,} network weights, over the grader's limit of "
                         f"{max_weights:,}; use smaller hidden layers.")
    if found.fits > max_fits:
        raise OverBudget(f"the grader will not train your estimator: {found.why} is about "
                         f"{found.fits:,} model fits, over the grader's limit of {max_fits:,} "
                         "(the sizes of nested estimators, ensembles and search grids "
                         "multiply); use fewer or smaller estimators, rounds or candidates.")
    return found
