"""The learner's fault, as one exception type below every layer that raises it (the bridge, the
graders' file helpers, the budgets)."""

from __future__ import annotations


class LearnerFailure(AssertionError):
    """The learner's code did not give a usable answer; the message is learner-facing."""


__all__ = ["LearnerFailure"]
