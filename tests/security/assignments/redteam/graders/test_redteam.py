"""Graders of the red-team target. Expected values and labels exist only here, in the grader
process; the kernel only ever sees inputs."""

import numpy as np

from mlgrade.grading import expect, expect_close, expect_type, points


@points(1, question="q1")
def test_answer(nb):
    """`answer` is 42"""
    expect_close(nb.get("answer"), 42.0, "`answer` should be the number 42.")


@points(1, question="q2")
def test_double(nb, rng):
    """double(x) is 2x on a fresh random array"""
    x = rng.normal(size=int(rng.integers(3, 20)))
    expect_close(nb.call("double", x), 2 * x, "double(x) should return 2 * x as an array.",
                 require=np.ndarray)


@points(1, question="q3")
def test_saved(nb, rng):
    """save_result(path, x) writes x**2 as .npy"""
    x = rng.normal(size=7)
    nb.call("save_result", "out.npy", x)
    expect_close(nb.read_npy("out.npy"), x ** 2, "save_result should np.save x**2 to path.",
                 require=np.ndarray)


@points(1, question="q4")
def test_predict(nb, rng):
    """predict(X) scores at least 95% against held-out labels"""
    X = rng.normal(size=(300, 3))
    labels = (X[:, 0] + 0.05 * rng.normal(size=300) > 0).astype(int)  # never sent to the kernel
    pred = nb.call("predict", X)
    expect_type(pred, np.ndarray, "predict(X) should return an array")
    expect(pred.shape == labels.shape and pred.dtype.kind in "biu",
           "predict(X) should return one integer label per row.")
    expect(float(np.mean(pred == labels)) >= 0.95, "predict(X) is not accurate enough.")
