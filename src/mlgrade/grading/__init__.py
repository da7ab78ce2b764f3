"""What grader authors import. Graders are plain pytest files under ``graders/<assignment>/``::

    from mlgrade.grading import points, expect, expect_close

    @points(2, question="q2")
    def test_dot_product(nb, rng):
        \"\"\"dot_product on random vectors\"\"\"
        a, b = rng.normal(size=5), rng.normal(size=5)
        expect_close(nb.call("dot_product", a, b), float(a @ b),
                     "dot_product(a, b) is wrong on random vectors: multiply pairwise, then sum.")

Fixtures: ``nb`` (the learner's live kernel, see :class:`mlgrade.bridge.client.Notebook`),
``rng`` (a NumPy Generator seeded from the run's seed and the test's name), ``seed``,
``job_dir`` (the kernel's working folder) and ``assignment_dir``.
"""

from __future__ import annotations

from mlgrade.bridge.client import Expr, LearnerFailure, Ref, Target
from mlgrade.grading.checks import (
    Fail,
    as_numbers,
    expect,
    expect_close,
    expect_equal,
    expect_type,
    points,
)

__all__ = [
    "Expr",
    "Fail",
    "LearnerFailure",
    "Ref",
    "Target",
    "as_numbers",
    "expect",
    "expect_close",
    "expect_equal",
    "expect_type",
    "points",
]
