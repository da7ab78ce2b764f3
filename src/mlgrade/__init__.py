"""mlgrade: an automated grader for a six-month machine-learning curriculum."""

from typing import Any

__version__ = "0.1.0"


def check(question: Any = None, **options: Any) -> Any:
    """In a notebook: grade ``question`` (e.g. ``"q3"``; all questions when left out) against
    the running kernel's current state, a self-check (see :func:`mlgrade.selfcheck.check`)."""
    from mlgrade.selfcheck import check as _check

    return _check(question, **options)


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext mlgrade``: the ``%mlgrade check q3`` magic."""
    from mlgrade.selfcheck import load_ipython_extension as _load

    _load(shell)
