"""Fixtures for batch grading: a folder of real month-2 submissions, one behaviour each."""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from tests.conftest import REPO, replace_cell, solution
from tests.timing import scaled

STARTER = REPO / "assignments" / "month2" / "month2.ipynb"

NAIVE_SIGMOID = "def sigmoid(z):\n    return 1 / (1 + np.exp(-np.asarray(z, float)))\n"
BROKEN_Q1 = "weights = np.array([0.5, 0.3, 0.2]\nprediction = float(weights @ [1.0, 2.0, 3.0])\n"
LOOPS_BEFORE_SOFTMAX = "while True:\n    pass\n"
KILLS_KERNEL = "import os\nos._exit(1)\n"

# learner -> (file under the input folder, expected score out of 15, expected status)
EXPECTED = {
    "alice": ("alice.ipynb", 15.0, "graded"),  # the reference solution
    "bob": ("bob.ipynb", 13.0, "graded"),  # naive sigmoid overflows: loses q7 (2 points)
    "carol": ("carol/month2.ipynb", 0.0, "graded"),  # the starter, folder-per-learner layout
    "dave": ("month2-dave/month2.ipynb", 14.0, "graded"),  # SyntaxError in q1 (classroom name)
    "erin": ("erin.ipynb", 13.0, "graded"),  # infinite loop in the softmax cell: timeout
    "frank": ("frank.ipynb", 13.0, "graded"),  # the sigmoid cell kills the kernel
}
SKIPPED = {"grace.ipynb", "grace/month2.ipynb", "notes.txt"}


def cell_timeout() -> str:
    """``--cell-timeout`` for the class folder: erin's loop must hit it, every other cell must
    finish within it however busy the machine is."""
    return str(math.ceil(scaled(3)))  # whole seconds, as the reports print them


def write(nb: nbformat.NotebookNode, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)


def make_submissions(folder: Path) -> Path:
    """The eight-submission class folder the end-to-end tests grade."""
    ref = solution("month2")
    write(ref, folder / "alice.ipynb")
    write(replace_cell(ref, "def sigmoid", NAIVE_SIGMOID), folder / "bob.ipynb")
    (folder / "carol").mkdir(parents=True)
    shutil.copyfile(STARTER, folder / "carol" / "month2.ipynb")
    write(replace_cell(ref, "prediction =", BROKEN_Q1), folder / "month2-dave" / "month2.ipynb")
    looping = replace_cell(ref, "def softmax", LOOPS_BEFORE_SOFTMAX
                           + next(c.source for c in ref.cells if "def softmax" in c.source))
    write(looping, folder / "erin.ipynb")
    write(replace_cell(ref, "def sigmoid", KILLS_KERNEL), folder / "frank.ipynb")
    write(ref, folder / "grace.ipynb")  # grace submitted twice: both are skipped
    write(ref, folder / "grace" / "month2.ipynb")
    (folder / "notes.txt").write_text("not a notebook\n")
    return folder


@pytest.fixture
def class_folder(tmp_path: Path) -> Path:
    return make_submissions(tmp_path / "submissions")


def scores(db: Path) -> dict[str, tuple[float, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT l.name, s.score, s.status FROM submissions s "
                            "JOIN learners l ON l.id = s.learner_id").fetchall()
    return {name: (score, status) for name, score, status in rows}


def expected_scores() -> dict[str, tuple[float, str]]:
    return {k: (v[1], v[2]) for k, v in EXPECTED.items()}


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLGRADE_GRADEBOOK", "MLGRADE_SEED", "MLGRADE_ISOLATION"):
        monkeypatch.delenv(name, raising=False)
    os.environ.setdefault("COLUMNS", "200")


# Copy detection: the reference solution with every local name changed and the comments and
# docstrings rewritten (a copy that was disguised), and an independent solution (not a copy).
RENAMES = {"total": "acc", "residual": "err_vec", "grad": "g_est", "step": "bump", "out": "res",
           "pos": "mask", "ez": "exp_neg", "X_demo": "Xs", "y_demo": "ys", "w0": "w_start",
           "loss": "objective", "rng": "gen", "e": "expd"}

UNRELATED_CELLS = {
    "prediction =": "weights = np.array([0.5, 0.3, 0.2])\nfeatures = np.array([1.0, 2.0, 3.0])\n"
                    "prediction = sum(wi * fi for wi, fi in zip(weights.tolist(), "
                    "features.tolist()))\n",
    "def dot_product": "def dot_product(a, b):\n    n = len(a)\n    if n != len(b):\n"
                       "        raise ValueError('length mismatch')\n    s = 0.0\n    i = 0\n"
                       "    while i < n:\n        s = s + a[i] * b[i]\n        i += 1\n"
                       "    return float(s)\n",
    "def mse_gradient": "def mse_gradient(X, y, w):\n    X = np.array(X, dtype=float)\n"
                        "    preds = X.dot(np.array(w, dtype=float))\n    n = X.shape[0]\n"
                        "    return 2 * X.T.dot(preds - np.array(y, dtype=float)) / n\n",
    "def gradient_descent": "def gradient_descent(X, y, lr, n_steps):\n    X = np.array(X, float)\n"
                            "    w = np.zeros(X.shape[1])\n    done = 0\n    while done < n_steps:\n"
                            "        w -= lr * mse_gradient(X, y, w)\n        done += 1\n"
                            "    return w\n",
    "def numerical_gradient": "def numerical_gradient(f, w, eps=1e-6):\n    w = np.array(w, float)\n"
                              "    basis = np.eye(len(w)) * eps\n"
                              "    return np.array([(f(w + d) - f(w - d)) / (2 * eps) "
                              "for d in basis])\n",
    "def bayes_posterior": "def bayes_posterior(prior, sensitivity, specificity):\n"
                           "    tp = prior * sensitivity\n"
                           "    fp = (1 - prior) * (1 - specificity)\n    return tp / (tp + fp)\n",
    "def sigmoid": "def sigmoid(z):\n    z = np.asarray(z, dtype=float)\n"
                   "    return np.exp(-np.logaddexp(0.0, -z))\n",
    "def softmax": "def softmax(z):\n    z = np.asarray(z, dtype=float)\n    shifted = z - z.max()\n"
                   "    ex = np.exp(shifted)\n    return ex / np.sum(ex)\n",
}


def renamed_copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with local names renamed, comments dropped and docstrings reworded."""
    import re

    out = nbformat.reads(nbformat.writes(nb), as_version=4)
    for cell in out.cells:
        if cell.cell_type != "code":
            continue
        src = re.sub(r"#[^\n]*", "", cell.source)
        src = re.sub(r'"""[^"]*"""', '"""My own words."""', src)
        for old, new in RENAMES.items():
            src = re.sub(rf"\b{old}\b", new, src)
        cell.source = src
    return out


def unrelated_solution() -> nbformat.NotebookNode:
    """A month-2 solution written independently of the reference."""
    nb = solution("month2")
    for marker, source in UNRELATED_CELLS.items():
        nb = replace_cell(nb, marker, source)
    return nb


class MistakeRows(HTMLParser):
    """The dashboard's "mistakes the group made" table: (test id, learner count, feedback links)
    per row, in the page's order."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str, list[str]]] = []
        self._table = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("class") == "mistakes"
        elif tag == "tr" and self._table and a.get("data-test"):
            self.rows.append((str(a["data-test"]), str(a.get("data-count")), []))
        elif tag == "a" and self._table and self.rows:
            self.rows[-1][2].append(str(a["href"]))
