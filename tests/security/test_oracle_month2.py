"""Design-aware red team for month 2: notebooks written by someone who has read the graders.

Month 2's stability check once ran in the learner's kernel (a `warnings.catch_warnings` block
around the learner's call) and its result was trusted. Now numerical stability is judged by
the values that come back: a naive sigmoid returns exactly 0 at z = -720. Each case is graded
through the real pipeline in each tier and must earn exactly the points of its honest parts,
with an honest verdict (graded, every lost point explained) and nothing left behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import mutant
from tests.security.oracle_attacks import HIJACK, assert_honest_verdict, grade_attack, starter_with
from tests.security.redteam_support import TIERS, assert_nothing_survived

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

ALL = {
    "test_prediction", "test_dot_product_random_vectors", "test_dot_product_length_mismatch",
    "test_mse_gradient", "test_gradient_descent_steps", "test_numerical_gradient",
    "test_numerical_gradient_keeps_w", "test_bayes_posterior", "test_sigmoid_stable",
    "test_softmax_stable",
}

# naive formulas, with every way of hiding NumPy's overflow warning from an in-kernel check:
# warnings ignored, np.errstate and warnings.catch_warnings replaced by no-ops that record
# nothing, np.seterr off, and a sigmoid that empties any `caught` list in its callers' frames
SILENCED = '''
import contextlib
import sys
import warnings

warnings.filterwarnings("ignore")
np.seterr(all="ignore")


class _NoRecord(contextlib.AbstractContextManager):
    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return []

    def __exit__(self, *exc):
        return False


warnings.catch_warnings = _NoRecord
np.errstate = _NoRecord


def sigmoid(z):
    frame = sys._getframe(1)
    while frame is not None:
        caught = frame.f_locals.get("caught")
        if isinstance(caught, list):
            caught.clear()
        frame = frame.f_back
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


def softmax(z):
    e = np.exp(np.asarray(z, dtype=float))
    return np.nan_to_num(e / e.sum())
'''

CASES = {
    # the honest notebook, except sigmoid and softmax: naive, with the warnings hidden
    "naive-formulas-warnings-hidden": (
        # (softmax's cell first: the cell that replaces sigmoid's defines softmax too)
        lambda: mutant("month2", {"def softmax": "pass", "def sigmoid": SILENCED}),
        ALL - {"test_sigmoid_stable", "test_softmax_stable"}),
    # nothing solved; the bridge is hijacked (shadowed __import__ and compile, an audit hook)
    # and claims success for every request
    "hijacked-bridge-claims-success": (lambda: starter_with("month2", HIJACK), set()),
    # nothing solved but sigmoid/softmax naive and hidden, and the bridge hijacked on top
    "hijacked-bridge-and-hidden-warnings": (
        lambda: starter_with("month2", SILENCED, HIJACK), set()),
}


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_design_aware_attack_earns_nothing_unearned(name: str, tier: str, tmp_path: Path) -> None:
    build, honest = CASES[name]
    graded = grade_attack("month2", build(), tier, tmp_path)
    assert_honest_verdict(graded, honest)
    assert_nothing_survived(graded, "mlgrade-oracle-month2", [])
