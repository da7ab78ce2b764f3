"""Hidden graders for month 2. Expected values are always computed here, from inputs made
here, never by another learner function; numerical stability is judged by the values that come
back (a naive sigmoid returns exactly 0.0 where the true value is a tiny positive float)."""

from collections.abc import Callable

import numpy as np

from mlgrade.grading import Expr, LearnerFailure, expect, expect_close, points


@points(1, question="q1")
def test_prediction(nb):
    """`prediction` is the weighted sum of the features"""
    expected = float(np.dot([0.5, 0.3, 0.2], [1.0, 2.0, 3.0]))
    got = nb.get("prediction")
    expect_close(got, expected,
                 "`prediction` should be the dot product of the weights and the features "
                 "(multiply pairwise, then add up).")
    # a NumPy float scalar arrives as a Python float; a 0-d or 1-item array stays an array
    expect(isinstance(got, float), "`prediction` has the right value but is not a float (got "
           f"{type(got).__name__}): store a Python or NumPy float, e.g. float(np.dot(w, x)).")


@points(1, question="q2")
def test_dot_product_random_vectors(nb, rng):
    """dot_product on random vectors of any length (none, one, many), arrays or lists"""
    for n in (1, *(int(v) for v in rng.integers(2, 40, size=4))):
        a, b = rng.normal(size=n), rng.normal(size=n)
        expect_close(nb.call("dot_product", a, b), float(a @ b),
                     f"dot_product gives a wrong value for vectors of length {n}: "
                     "multiply each pair a[i]*b[i] and sum all of them.", rtol=1e-9)
    empty_hint = ("dot_product([], []) should be 0.0: start the sum at 0.0 rather than at the "
                  "first product, so vectors of any length work.")
    try:
        got = nb.call("dot_product", [], [])
    except LearnerFailure as exc:
        if "not implemented" in str(exc) or "is not defined" in str(exc):
            raise
        raise LearnerFailure(f"{empty_hint} ({str(exc)[:120]})") from None
    expect(isinstance(got, float) and got == 0.0, empty_hint)
    a = [int(v) for v in rng.integers(-9, 10, size=5)]
    b = [int(v) for v in rng.integers(-9, 10, size=5)]
    got = nb.call("dot_product", a, b)
    expect(isinstance(got, float),
           "dot_product of two lists of integers should still return a float (start the sum "
           "at 0.0, or convert with float()).")
    expect_close(got, float(np.dot(a, b)), "dot_product should also accept plain Python lists.")


@points(1, question="q2")
def test_dot_product_length_mismatch(nb, rng):
    """dot_product refuses vectors of different lengths, whichever is longer"""
    n = int(rng.integers(2, 8))
    a, b = rng.normal(size=n), rng.normal(size=n)  # refusing is worth something only with a
    expect_close(nb.call("dot_product", a, b), float(a @ b),  # working dot product
                 "dot_product gives a wrong value for two vectors of the same length.", rtol=1e-9)
    for len_a, len_b in ((n + 1, n), (n, n + 1)):
        a, b = rng.normal(size=len_a), rng.normal(size=len_b)
        try:
            nb.call("dot_product", a, b)
        except LearnerFailure as exc:
            expect("raised ValueError" in str(exc),
                   "dot_product should raise ValueError for vectors of different lengths "
                   f"(it did something else: {str(exc)[:120]}).")
            continue
        expect(False, "dot_product returned a value for vectors of different lengths (here the "
                      f"{'first' if len_a > len_b else 'second'} one is longer): it should raise "
                      "ValueError instead of silently ignoring the extra items.")


@points(2, question="q3")
def test_mse_gradient(nb, rng):
    """mse_gradient matches (2/n) X^T (Xw - y) on fresh inputs"""
    shapes = [(int(rng.integers(5, 60)), int(rng.integers(2, 6))) for _ in range(2)]
    for n, d in (*shapes, (int(rng.integers(5, 20)), 1)):
        X, y, w = rng.normal(size=(n, d)), rng.normal(size=n), rng.normal(size=d)
        expected = (2.0 / n) * X.T @ (X @ w - y)
        got = nb.call("mse_gradient", X, y, w)
        if isinstance(got, np.ndarray) and got.shape == expected.shape:
            half = np.allclose(got, expected / 2, rtol=1e-6)
            expect(not half, "mse_gradient is off by a factor of 2: the derivative of the "
                             "squared error brings down a 2, so the factor is 2/n.")
            unscaled = np.allclose(got, expected * n / 2, rtol=1e-6) and n != 2
            expect(not unscaled, "mse_gradient is missing the 2/n factor: average over the rows.")
        expect_close(got, expected, "mse_gradient is wrong on random inputs: check the transpose, "
                     "the sign of the residual (X @ w - y) and that n is the number of rows.",
                     require=np.ndarray)


def _descent(X: np.ndarray, y: np.ndarray, lr: float, n_steps: int) -> np.ndarray:
    w = np.zeros(X.shape[1])
    for _ in range(n_steps):
        w = w - lr * (2.0 / len(y)) * X.T @ (X @ w - y)
    return w


@points(2, question="q4")
def test_gradient_descent_steps(nb, rng):
    """gradient_descent takes exactly n_steps steps from w = 0 and lands on least squares"""
    n, d = 120, 3
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.05 * rng.normal(size=n)
    lr = float(rng.uniform(0.02, 0.08))
    for n_steps in (0, 1, int(rng.integers(3, 9))):
        expect_close(nb.call("gradient_descent", X, y, lr, n_steps), _descent(X, y, lr, n_steps),
                     f"gradient_descent(X, y, lr, {n_steps}) is not where {n_steps} step(s) of "
                     "w = w - lr * mse_gradient(X, y, w) from w = 0 lead: start from zeros, "
                     "take exactly n_steps steps and return w as a NumPy array of shape (d,).",
                     rtol=1e-7, atol=1e-12, require=np.ndarray)
    target, *_ = np.linalg.lstsq(X, y, rcond=None)
    expect_close(nb.call("gradient_descent", X, y, 0.1, 1500), target,
                 "gradient_descent does not reach the least-squares solution: start from zeros "
                 "and step against the gradient, w = w - lr * gradient.", rtol=1e-3, atol=1e-3)


# the test function: its exact gradient is cos(w) + w, plus w[-1] on w[0] and w[0] on w[-1]
F_CODE = "lambda w: float(np.sum(np.sin(w)) + 0.5 * w @ w + 3.0 * w[0] ** 2 * w[-1])"


def _f(w: np.ndarray) -> float:
    return float(np.sum(np.sin(w)) + 0.5 * w @ w + 3.0 * w[0] ** 2 * w[-1])


# The default step is judged on a function with a large third derivative, 1e6 cos(1000 w):
# the central difference's own error, eps**2 / 6 times that, is 1.7e-7 at the stated eps = 1e-6
# but 1.7e-5 at 1e-5 and 1.7e-9 at 1e-7, so a tolerance of 1e-8 tells the stated step from ten
# times it or a tenth of it, while rounding in f (|f| < 5) moves the quotient by about 1e-9.
G_CODE = "lambda w: float(np.sum(np.sin(1000.0 * w)) / 1000.0 + 0.5 * w @ w)"


def _g(w: np.ndarray) -> float:
    return float(np.sum(np.sin(1000.0 * w)) / 1000.0 + 0.5 * w @ w)


def _central(w: np.ndarray, eps: float, f: Callable[[np.ndarray], float] = _f) -> np.ndarray:
    grad = np.zeros_like(w)
    for i in range(w.size):
        step = np.zeros_like(w)
        step[i] = eps
        grad[i] = (f(w + step) - f(w - step)) / (2 * eps)
    return grad


@points(1, question="q5")
def test_numerical_gradient(nb, rng):
    """numerical_gradient: central differences with the step it is given (default 1e-6), an
    array shaped like w"""
    w = rng.normal(size=int(rng.integers(3, 7)))
    # a large step separates central from one-sided differences: their errors differ by 1000x
    expect_close(nb.call("numerical_gradient", Expr(F_CODE), w, 1e-2), _central(w, 1e-2),
                 "numerical_gradient(f, w, eps) is not the central difference "
                 "(f(w + eps*e_i) - f(w - eps*e_i)) / (2*eps) for each coordinate (a one-sided "
                 "difference, or a step other than eps?), returned as an array shaped like w.",
                 rtol=1e-7, atol=1e-9, require=np.ndarray)
    # the default step; v[0] sits where cos(1000 v) = 1, so the step's error is at its largest
    v = rng.uniform(-1.5, 1.5, size=int(rng.integers(3, 7)))
    v[0] = np.round(v[0] * 1000 / (2 * np.pi)) * 2 * np.pi / 1000
    expect_close(nb.call("numerical_gradient", Expr(G_CODE), v), _central(v, 1e-6, _g),
                 "numerical_gradient(f, w) without eps is not the central difference with the "
                 "default step eps=1e-6 (is the default another step?).", rtol=1e-8, atol=1e-8,
                 require=np.ndarray)


@points(1, question="q5")
def test_numerical_gradient_keeps_w(nb, rng):
    """numerical_gradient leaves the w it was given unchanged"""
    # a tiny coordinate: nudging it by eps and back in place does not restore it
    w = np.concatenate([[float(rng.uniform(1e-23, 1e-22))], rng.normal(size=4)])
    kept = nb.eval_untrusted("w", w=w, keep=True, what="the grader's w")
    got = nb.call("numerical_gradient", Expr(F_CODE), kept, 1e-3)
    after = nb.get(kept)
    # leaving w alone is only worth something together with a working gradient check
    expect_close(got, _central(w, 1e-3), "numerical_gradient(f, w, eps) is not the central "
                 "difference of f at w.", rtol=1e-6, atol=1e-8)
    expect(isinstance(after, np.ndarray) and after.shape == w.shape
           and bool(np.array_equal(after, w)),
           "numerical_gradient changed the array w it was given (it stepped w[i] in place): "
           "work on a copy, e.g. w = np.array(w, dtype=float), or build w + step as a new array.")


@points(2, question="q6")
def test_bayes_posterior(nb, rng):
    """bayes_posterior on random priors, sensitivities and specificities"""
    cases = [(rng.uniform(0.001, 0.5), rng.uniform(0.5, 0.999), rng.uniform(0.5, 0.999))
             for _ in range(5)]
    cases.append((float(rng.uniform(0.01, 0.2)), 0.9, 1.0))  # a perfect specificity: P = 1
    for prior, sens, spec in cases:
        expected = sens * prior / (sens * prior + (1 - spec) * (1 - prior))
        got = nb.call("bayes_posterior", prior, sens, spec)
        expect_close(got, expected, "bayes_posterior is wrong: P(D|+) = P(+|D)P(D) / P(+), where "
                     "P(+) also counts false positives, (1 - specificity) * (1 - prior).", rtol=1e-6)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Stable and accurate to the last bits: exp only sees numbers <= 0."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@points(2, question="q7")
def test_sigmoid_stable(nb, rng):
    """sigmoid is correct for any z: tiny values such as sigmoid(-720) come out, not as 0"""
    edges = [-1000.0, -745.0, -730.0, -720.0, -710.0, -40.0, 0.0, 40.0, 710.0, 720.0, 745.0, 1000.0]
    z = np.concatenate([rng.normal(scale=5, size=20), edges, -rng.uniform(709.5, 735, size=4)])
    value = nb.call("sigmoid", z)
    expected = _sigmoid(z)
    expect_close(value, expected, "sigmoid gives wrong values: it should be 1 / (1 + exp(-z)), "
                 "elementwise, for an array z (and finite everywhere).", rtol=1e-9, atol=1e-12,
                 require=np.ndarray)
    # exp(-z) overflows below -709.78, yet the true value stays a positive float64 down to
    # -745; above -736 it is large enough (>= 1e-320) to be compared to within 0.1 %
    tiny = (z < -709) & (z > -736)
    got = np.asarray(value, dtype=float)
    expect(bool(np.all(got[tiny] > 0)),
           "sigmoid returns exactly 0 for very negative z (e.g. z = -720), where the true value "
           "is a tiny positive number: np.exp(-z) overflowed. For z < 0 use exp(z) / (1 + exp(z)).")
    expect_close(got[tiny], expected[tiny], "sigmoid's tiny values for very negative z are not "
                 "right: for z < 0 use exp(z) / (1 + exp(z)).", rtol=1e-3, atol=0.0)


@points(2, question="q8")
def test_softmax_stable(nb, rng):
    """softmax is correct and finite for large scores"""
    # large scores, scores far below the others (subtracting min(z) overflows) and one score
    # far above many others (subtracting the mean overflows): only max(z) is safe for all
    one_high = rng.permutation(np.concatenate([rng.normal(size=5), [float(rng.uniform(900, 990))]]))
    for z in (rng.normal(size=int(rng.integers(2, 9))), np.array([1000.0, 1001.0, 1002.0]),
              rng.normal(size=5) * 300, np.array([-1000.0, 0.0, 5.0]), one_high):
        shifted = np.exp(z - z.max())
        expect_close(nb.call("softmax", z), shifted / shifted.sum(), "softmax is wrong or not "
                     "finite for large scores: subtract max(z) before exponentiating, then "
                     "normalise.", rtol=1e-9, atol=1e-12)
