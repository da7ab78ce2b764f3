"""mlgrade: an automated grader for a six-month machine-learning curriculum."""

import sys
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


def _prestart_in_notebook() -> None:
    """In a notebook's kernel, ``import mlgrade`` starts the self-check's grader process in the
    background (see :func:`mlgrade.selfcheck.prestart`); anywhere else it does nothing."""
    if "ipykernel" in sys.modules and "IPython" in sys.modules:
        from mlgrade.selfcheck import prestart

        prestart()


_prestart_in_notebook()
