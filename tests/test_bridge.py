"""The `nb` bridge against a real kernel: calls, kept objects, Exprs, odd classes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from tests.conftest import notebook_from_cells

pytestmark = pytest.mark.kernel

NOTEBOOK = notebook_from_cells(
    "import numpy as np\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "def make():\n"
    "    return LogisticRegression()\n"
    "def identity(x):\n"
    "    return x\n"
    "def broken():\n"
    "    raise NotImplementedError\n"
    "Odd = eval(\"type('Odd', (), {})\", {'__builtins__': __builtins__})  # no __module__\n"
    "def odd():\n"
    "    return Odd()\n"
    "values = {'a': np.arange(3), 'b': [1.5, None]}\n"
    "def half(x):\n"
    "    return x / 3\n"
    "def twice_half(x):\n"
    "    return 2 * half(x)\n"
    "def answer():\n"
    "    return 42\n"
    "def listing(x):\n"
    "    import os\n"
    "    return sorted(n for n in os.listdir('.') if n.startswith('.mlgrade'))\n"
    "model = 42",
)

GRADERS = '''
import numpy as np
from mlgrade.grading import Expr, LearnerFailure, expect, points

@points(1)
def test_a_large_argument_arrives_whole_and_leaves_nothing_behind(nb, rng, job_dir):
    big = rng.normal(size=(400, 50))  # 160 KB of float64: sent in a file, not the cell
    expect(np.array_equal(nb.call("identity", big), big), "a large argument changed on the way")
    expect(nb.call("listing", big) == [], "the learner's function saw the request file")
    expect(not list(job_dir.glob(".mlgrade-request-*")), "a request file was left behind")


@points(1)
def test_fit_discard_then_predict(nb, rng):
    """fit is called for its effect, predict brings plain data back"""
    model = nb.call("make", keep=True)
    X = rng.normal(size=(40, 2)); y = (X[:, 0] > 0).astype(int)
    expect(nb.call(model.attr("fit"), X, y, discard=True) is None, "discard returns None")
    pred = nb.call(model.attr("predict"), X)
    expect(isinstance(pred, np.ndarray) and pred.shape == (40,), "predictions are an array")
    expect(nb.describe(model)["type"].endswith("LogisticRegression"), "describe names the type")

@points(1)
def test_expr_argument_that_raises_is_the_learners_failure(nb):
    """an Expr that runs learner code reports what that code raised"""
    try:
        nb.call("identity", Expr("ns['broken']()"))
    except LearnerFailure as exc:
        expect("not implemented yet" in str(exc), f"unexpected message: {exc}")
        return
    expect(False, "no failure")

@points(1)
def test_odd_classes_can_be_kept_and_described(nb):
    """a type()-made class without __module__ can still be kept and described"""
    ref = nb.call("odd", keep=True)
    expect(ref.type.endswith("Odd"), f"type {ref.type}")
    expect(nb.describe(ref)["type"].endswith("Odd"), "describe works")

@points(1)
def test_nested_values_come_back_as_plain_data(nb):
    """dicts of arrays and lists decode to grader-built values"""
    got = nb.get("values")
    expect(set(got) == {"a", "b"} and got["b"] == [1.5, None], "plain containers")
    expect(np.array_equal(got["a"], np.arange(3)), "array inside a dict")
    expect(nb.has("values") and not nb.has("nothing_here"), "has()")

@points(1)
def test_a_patched_call_swaps_a_helper_for_that_call_only(nb):
    """patch= runs a learner function with the grader's helper in place of the learner's"""
    expect(nb.call("twice_half", 6.0) == 4.0, "the learner's own (wrong) helper")
    expect(nb.call("twice_half", 6.0, patch={"half": Expr("lambda x: x / 2")}) == 6.0,
           "with the grader's helper")
    expect(nb.call("twice_half", 6.0) == 4.0, "restored after the call")
    expect(nb.call("identity", 1, patch={"brand_new": 5}) == 1 and not nb.has("brand_new"),
           "a name that did not exist is removed again")

@points(1)
def test_a_missing_attribute_names_what_the_learner_returned(nb):
    """a method missing on what the learner returned blames that object, not the method"""
    kept = nb.call("answer", keep=True)
    for target, message in [
            (kept.attr("fit"), "the object your code returned is an int, which has no `fit`"),
            ("model.predict", "`model` is an int, which has no `predict`"),
            ("nothing_here.predict", "`nothing_here.predict` is not defined")]:
        try:
            nb.call(target)
        except LearnerFailure as exc:
            expect(str(exc).startswith(message), f"unexpected message: {exc}")
        else:
            expect(False, "no failure")
'''


def test_bridge_features(tmp_path: Path) -> None:
    import nbformat

    from mlgrade.assignments import load_assignment
    from mlgrade.config import resolve_settings
    from mlgrade.pipeline import check_notebook

    folder = tmp_path / "bridge"
    (folder / "graders").mkdir(parents=True)
    (folder / "assignment.toml").write_text('title = "bridge"\n', encoding="utf-8")
    (folder / "graders" / "test_bridge_graders.py").write_text(textwrap.dedent(GRADERS),
                                                              encoding="utf-8")
    nbformat.write(NOTEBOOK, folder / "bridge.ipynb")
    result = check_notebook(folder / "bridge.ipynb", load_assignment(folder),
                            resolve_settings({}, None, {})).result
    assert [(t.id, t.status, t.feedback) for t in result.tests if t.status != "passed"] == []
    assert result.score == 7
