"""Assertions for graders. Each failure carries only the learner-facing message the grader
wrote (plus, at most, the shape or type the learner's value had); expected values are never
printed unless the grader puts them in its message, or, under the public seed only, a check
given an ``example`` (one small input) shows that input, the learner's value and the expected
one: a learner's own `mlgrade check` reproduces those inputs anyway, a secret seed's never."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest


class Fail(AssertionError):
    """A failed check; ``str(exc)`` is shown to the learner as-is."""


_public = False  # whether this grading uses the published default seed (set by the runner)
EXAMPLE_CHARS = 160  # a shown value longer than this is left out: an example is one small input
EXAMPLE_VALUES = 12  # nor an array of more numbers


@contextlib.contextmanager
def public_seed(public: bool) -> Iterator[None]:
    """Within this block, failed checks given an ``example`` show it (``public``) or not."""
    global _public
    before, _public = _public, public
    try:
        yield
    finally:
        _public = before


def _shown(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return np.array2string(value, precision=4, separator=", ")
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return repr(value)


def _with_example(message: str, example: str | None, actual: Any, expected: Any) -> str:
    if not (_public and example) or any(isinstance(v, np.ndarray) and v.size > EXAMPLE_VALUES
                                        for v in (actual, expected)):
        return message
    got, want = _shown(actual), _shown(expected)
    if len(got) > EXAMPLE_CHARS or len(want) > EXAMPLE_CHARS or len(example) > 2 * EXAMPLE_CHARS:
        return message
    return (f"{message} Example (shown with the public seed only): {example}: you returned "
            f"{got}, expected {want}.")


def points(value: float, question: str | None = None) -> pytest.MarkDecorator:
    """Mark a grader test as worth ``value`` points (optionally for a named question)."""
    if not value >= 0:
        raise ValueError("points must be zero or more")
    return pytest.mark.points(float(value), question=question)


def expect(condition: object, message: str) -> None:
    """Fail with ``message`` unless ``condition`` is true (a real ``bool``, not an object)."""
    if not isinstance(condition, (bool, np.bool_)):
        raise TypeError("expect() takes a bool; compare decoded values in the grader")
    if not condition:
        raise Fail(message)


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return f"a {type(value).__name__} of shape {shape}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"a {type(value).__name__}"


def expect_type(value: Any, types: type | tuple[type, ...], message: str) -> None:
    if not isinstance(value, types):
        raise Fail(f"{message} (got {_kind(value)})")


def as_numbers(value: Any, message: str) -> np.ndarray:
    """``value`` (a learner's) as an array of floats, or a failed check with ``message``:
    strings, booleans, ragged lists and objects are not numbers (NaN and infinity are)."""
    if isinstance(value, (str, bytes, bool, np.bool_, dict, set)) or value is None:
        raise Fail(f"{message} (got {_kind(value)})")
    try:
        array = np.asarray(value)
        if array.dtype.kind not in "iuf" and not (array.dtype.kind == "O" and all(
                isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                for v in array.ravel())):
            raise TypeError
        return array.astype(float)
    except (TypeError, ValueError, OverflowError):
        raise Fail(f"{message} (got {_kind(value)})") from None


def expect_close(actual: Any, expected: Any, message: str, *, rtol: float = 1e-6,
                 atol: float = 1e-9, require: type | tuple[type, ...] | None = None,
                 example: str | None = None) -> None:
    """Numbers or arrays equal within tolerance, same shape, all finite.

    Strings, booleans and containers of other things are never taken for numbers. With
    ``require`` the value must also be of that type (e.g. ``np.ndarray``, not a list). With
    ``example`` (the input, in words: ``"X = [[1, 2]], w = [0.5, 0]"``), a wrong value under the
    public seed also shows that input, the learner's value and the expected one.
    """
    if require is not None:
        expect_type(actual, require, message)
    if isinstance(actual, (str, bytes, bool, np.bool_, dict, set)) or actual is None:
        raise Fail(f"{message} (got {_kind(actual)}, expected a number or an array)")
    try:
        got = np.asarray(actual)
        if got.dtype.kind not in "iuf":
            raise TypeError
        got = got.astype(float)
    except (TypeError, ValueError):
        raise Fail(f"{message} (got {_kind(actual)}, expected a number or an array)") from None
    want = np.asarray(expected, dtype=float)
    if got.shape != want.shape:
        wanted = "a single number" if want.ndim == 0 else f"shape {want.shape}"
        raise Fail(f"{message} (expected {wanted}, got {_kind(actual)})")
    if not np.all(np.isfinite(got)):
        raise Fail(f"{message} (the result contains NaN or infinity)")
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        raise Fail(_with_example(message, example, got if got.ndim else float(got), expected))


def expect_equal(actual: Any, expected: Any, message: str, *, example: str | None = None) -> None:
    """Exact equality of plain values (both sides were built in the grader process); with
    ``example``, see :func:`expect_close`."""
    if type(actual) is not type(expected) and not (
        isinstance(actual, (int, float)) and isinstance(expected, (int, float))
        and not isinstance(actual, bool)
    ):
        raise Fail(f"{message} (got {_kind(actual)})")
    if isinstance(expected, np.ndarray):
        if actual.shape != expected.shape or not np.array_equal(actual, expected):
            raise Fail(_with_example(message, example, actual, expected))
    elif actual != expected:
        raise Fail(_with_example(message, example, actual, expected))
