"""Hidden graders for month 2. Expected values are always computed here, never copied."""

import numpy as np

from mlgrade.grading import Expr, LearnerFailure, expect, expect_close, points

STABILITY_CHECK = """
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with np.errstate(over="warn", invalid="warn", divide="warn", under="ignore"):
        value = ns[name](z)
result = [value, len(caught)]
"""


@points(1, question="q1")
def test_prediction(nb):
    """`prediction` is the weighted sum of the features"""
    expected = float(np.dot([0.5, 0.3, 0.2], [1.0, 2.0, 3.0]))
    expect_close(nb.get("prediction"), expected,
                 "`prediction` should be the dot product of the weights and the features "
                 "(multiply pairwise, then add up).")


@points(1, question="q2")
def test_dot_product_random_vectors(nb, rng):
    """dot_product on random vectors of random length"""
    for _ in range(5):
        n = int(rng.integers(1, 40))
        a, b = rng.normal(size=n), rng.normal(size=n)
        expect_close(nb.call("dot_product", a, b), float(a @ b),
                     f"dot_product gives a wrong value for vectors of length {n}: "
                     "multiply each pair a[i]*b[i] and sum all of them.", rtol=1e-9)
    a = [int(v) for v in rng.integers(-5, 5, size=4)]
    b = [int(v) for v in rng.integers(-5, 5, size=4)]
    expect_close(nb.call("dot_product", a, b), float(np.dot(a, b)),
                 "dot_product should also accept plain Python lists.")


@points(1, question="q2")
def test_dot_product_length_mismatch(nb, rng):
    """dot_product refuses vectors of different lengths"""
    a, b = rng.normal(size=4), rng.normal(size=3)
    try:
        nb.call("dot_product", a, b)
    except LearnerFailure as exc:
        expect("raised ValueError" in str(exc),
               "dot_product should raise ValueError for vectors of different lengths "
               f"(it did something else: {str(exc)[:120]}).")
        return
    expect(False, "dot_product returned a value for vectors of different lengths: it should "
                  "raise ValueError instead of silently ignoring the extra items.")


@points(2, question="q3")
def test_mse_gradient(nb, rng):
    """mse_gradient matches (2/n) X^T (Xw - y) on fresh inputs"""
    for _ in range(3):
        n, d = int(rng.integers(5, 60)), int(rng.integers(1, 6))
        X, y, w = rng.normal(size=(n, d)), rng.normal(size=n), rng.normal(size=d)
        expected = (2.0 / n) * X.T @ (X @ w - y)
        got = nb.call("mse_gradient", X, y, w)
        if isinstance(got, np.ndarray) and got.shape == expected.shape:
            half = np.allclose(got, expected / 2, rtol=1e-6)
            expect(not half, "mse_gradient is off by a factor of 2: the derivative of the "
                             "squared error brings down a 2, so the factor is 2/n.")
            unscaled = np.allclose(got, expected * n / 2, rtol=1e-6) and n != 2
            expect(not unscaled, "mse_gradient is missing the 2/n factor: average over the rows.")
        expect_close(got, expected, "mse_gradient is wrong on random inputs: check the transpose "
                     "and the sign of the residual (X @ w - y).", require=np.ndarray)


@points(2, question="q4")
def test_gradient_descent_reaches_least_squares(nb, rng):
    """gradient_descent lands on the least-squares weights"""
    n, d = 120, 3
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.05 * rng.normal(size=n)
    target, *_ = np.linalg.lstsq(X, y, rcond=None)
    got = nb.call("gradient_descent", X, y, 0.1, 1500)
    expect_close(got, target, "gradient_descent does not reach the least-squares solution: start "
                 "from zeros and step against the gradient, w = w - lr * gradient.",
                 rtol=1e-3, atol=1e-3)


@points(2, question="q5")
def test_numerical_gradient(nb, rng):
    """numerical_gradient agrees with the exact gradient of a test function"""
    w = rng.normal(size=int(rng.integers(2, 7)))
    f = Expr("lambda w: float(np.sum(np.sin(w)) + 0.5 * w @ w + w[0] * w[-1])")
    exact = np.cos(w) + w
    exact[0] += w[-1]
    exact[-1] += w[0]
    got = nb.call("numerical_gradient", f, w, 1e-6)
    expect_close(got, exact, "numerical_gradient is not close to the true gradient: use central "
                 "differences (f(w+eps*e_i) - f(w-eps*e_i)) / (2*eps) for each coordinate.",
                 rtol=1e-4, atol=1e-5)


@points(2, question="q6")
def test_bayes_posterior(nb, rng):
    """bayes_posterior on random priors, sensitivities and specificities"""
    for _ in range(6):
        prior, sens, spec = rng.uniform(0.001, 0.5), rng.uniform(0.5, 0.999), rng.uniform(0.5, 0.999)
        expected = sens * prior / (sens * prior + (1 - spec) * (1 - prior))
        got = nb.call("bayes_posterior", prior, sens, spec)
        expect_close(got, expected, "bayes_posterior is wrong: P(D|+) = P(+|D)P(D) / P(+), where "
                     "P(+) also counts false positives, (1 - specificity) * (1 - prior).", rtol=1e-6)


def _stable(nb, name, z):
    return nb.eval(STABILITY_CHECK, name=name, z=z, what=f"`{name}(z)`")


@points(2, question="q7")
def test_sigmoid_stable(nb, rng):
    """sigmoid is correct and raises no overflow warning, even for |z| = 1000"""
    z = np.concatenate([rng.normal(scale=5, size=20), [-1000.0, -745.0, 0.0, 745.0, 1000.0]])
    value, warned = _stable(nb, "sigmoid", z)
    expected = np.where(z >= 0, 1 / (1 + np.exp(-np.clip(z, 0, None))),
                        np.exp(np.clip(z, None, 0)) / (1 + np.exp(np.clip(z, None, 0))))
    expect_close(value, expected, "sigmoid gives wrong values: it should be 1 / (1 + exp(-z)), "
                 "elementwise, for an array z.", rtol=1e-9, atol=1e-12)
    expect(warned == 0, "sigmoid overflows for large |z| (NumPy warned): compute exp only of "
                        "non-positive numbers, e.g. exp(z) / (1 + exp(z)) when z < 0.")


@points(2, question="q8")
def test_softmax_stable(nb, rng):
    """softmax is correct and finite for large scores"""
    for z in (rng.normal(size=int(rng.integers(2, 9))), np.array([1000.0, 1001.0, 1002.0]),
              rng.normal(size=5) * 300):
        shifted = np.exp(z - z.max())
        value, warned = _stable(nb, "softmax", z)
        expect_close(value, shifted / shifted.sum(), "softmax is wrong or not finite for large "
                     "scores: subtract max(z) before exponentiating, then normalise.",
                     rtol=1e-9, atol=1e-12)
        expect(warned == 0, "softmax overflows for large scores (NumPy warned): subtract max(z) "
                            "first.")
