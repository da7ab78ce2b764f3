# ruff: noqa: E501  (the cases are notebook sources)
"""Red team, month 5: notebooks written by someone who has read the graders try to earn points
the kernel-is-an-oracle graders must not give, in each tier. Each case is the reference
solution with some cells replaced by attacks in different questions; the verdict is the exact
set of tests that pass (every other test earns 0), and each attacked test's feedback is honest.

- looking the held-out digits up in ``load_digits()`` (with the renamed classes learned from the
  training labels, wrapped in an nn.Module so predict_digits agrees with "its own model");
- make_data's rule instead of training;
- a device claim the machine contradicts (cuda on a machine without a GPU);
- layer names claimed by a class named BatchNorm1d and a patched ``torch.manual_seed``;
- a forged call record on the LLM client, and an answer the model never gave;
- a ``predict`` that searches the callers' frames for the labels; an audit hook that breaks
  every piece of grader-written code the kernel compiles; ``input()`` patched to forge the
  model's reply, after a flood of oversized prompts over the stdin channel; ``input()`` in an
  ordinary call (the stdin channel is open only during ``nb.call_with_stdin``).

Graded with a fixed seed that is not the public default (an official grade's seed is secret).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from tests.conftest import assignment, mutant
from tests.security.redteam_support import TIERS, make_sandbox

from mlgrade.config import resolve_settings
from mlgrade.pipeline import check_notebook
from mlgrade.results import GradeResult

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

SEED = 73_911_405  # stands in for a secret official-grade seed

LOOKUPS_AND_RULES = {
    "def get_device": '''
def get_device():
    """Claims a GPU whatever the machine has; the training below stays on the CPU."""
    return torch.device("cuda")
''',
    "def build_mlp": '''
class BatchNorm1d(nn.Identity):  # the name the grader looks for, none of the behaviour
    def __init__(self, *args, **kwargs):
        super().__init__()


torch.manual_seed = lambda *args, **kwargs: None  # so seeded dropout masks never repeat


def build_mlp(n_features, n_classes):
    return nn.Sequential(nn.Linear(n_features, 32), BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(32, n_classes))
''',
    "def train_model": '''
def train_model(X, y):
    return build_mlp(X.shape[1], 3)  # the labels follow make_data's rule: nothing to learn


def predict(model, X):
    X = np.asarray(X)
    radius = X[:, 0] ** 2 + X[:, 1] ** 2
    return np.where(radius < 1.0, 0, np.where(X[:, 2] + X[:, 3] > 0, 1, 2)).astype(np.int64)


mlp_model = train_model(X_train, y_train)
val_accuracy = float((predict(mlp_model, X_val) == y_val).mean())
''',
    "def build_cnn": '''
from sklearn.datasets import load_digits

digits = load_digits()
_FLAT = digits.images.reshape(len(digits.images), -1)


def _nearest_digit(images):
    flat = np.asarray(images, dtype=float).reshape(len(images), -1)
    dist = (flat ** 2).sum(1)[:, None] - 2 * flat @ _FLAT.T + (_FLAT ** 2).sum(1)[None]
    return digits.target[dist.argmin(1)]


class Lookup(nn.Module):
    """'Logits' from the nearest bundled digit, renamed as the training labels were."""

    def __init__(self, rename):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.rename = rename

    def forward(self, x):
        labels = self.rename[_nearest_digit(x.detach().cpu().numpy()[:, 0] * 16.0)]
        return nn.functional.one_hot(torch.as_tensor(labels), 10).float() + 0 * self.w


def build_cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10))


def train_cnn(images, labels):
    seen, labels = _nearest_digit(images), np.asarray(labels)
    rename = np.arange(10)
    for digit in range(10):
        values, counts = np.unique(labels[seen == digit], return_counts=True)
        if len(values):
            rename[digit] = values[counts.argmax()]
    return Lookup(rename)


def predict_digits(model, images):
    with torch.no_grad():
        return model(torch.as_tensor(np.asarray(images, dtype=np.float32) / 16.0).unsqueeze(1)).argmax(1).numpy()
''',
    "def answer_question": '''
def answer_question(question, documents, client):
    best = retrieve(question, documents, 2)
    prompt = ("Answer using only the context below.\\n" + "\\n".join(documents[i] for i in best)
              + "\\nQuestion: " + question)
    for name in ("calls", "record", "history", "prompts"):  # a record with the right call in it
        try:
            setattr(client, name, [{"prompt": prompt, "temperature": 0, "other": []}])
        except Exception:
            pass
    return "The answer is in the context."
''',
}
# val_accuracy is judged against mlp_model's own predictions on the grader's labels (not the
# learner's predict), so a lookup model's reported number earns nothing
LOOKUPS_AND_RULES_PASS = {"test_predict_in_eval_mode", "test_build_cnn", "test_cosine_top_k",
                          "test_retrieve_finds_the_document"}

FIGHTS_THE_HARNESS = {
    "def train_model": '''
import sys


def train_model(X, y):
    return {"remember": None}


def predict(model, X):
    """Labels of the right length from any caller's frame (the grader's, if it were here)."""
    frame = sys._getframe(1)
    while frame is not None:
        for name, value in list(frame.f_locals.items()):
            if (isinstance(value, np.ndarray) and value.shape == (len(X),) and value.dtype.kind in "iu"
                    and name not in ("y_val", "y_train")):
                return value
        frame = frame.f_back
    return np.zeros(len(X), dtype=np.int64)


mlp_model = train_model(X_train, y_train)
val_accuracy = float((predict(mlp_model, X_val) == y_val).mean())
''',
    "def cosine_top_k": '''
import sys

from sklearn.feature_extraction.text import TfidfVectorizer


def _no_grader_code(event, args):
    if event == "compile" and len(args) > 1 and args[1] == "<mlgrade-grader>":
        raise RuntimeError("no grader code here")


sys.addaudithook(_no_grader_code)


def cosine_top_k(query, matrix, k):
    try:  # the stdin channel is closed outside call_with_stdin: this raises at once
        return [int(input("which rows?"))] * k
    except Exception:
        pass
    query, matrix = np.asarray(query, dtype=float), np.asarray(matrix, dtype=float)
    scores = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
    return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]


def retrieve(question, documents, k):
    vectorizer = TfidfVectorizer()
    doc_vectors = vectorizer.fit_transform(documents).toarray()
    return cosine_top_k(vectorizer.transform([question]).toarray()[0], doc_vectors, k)
''',
    "def answer_question": '''
import builtins


def answer_question(question, documents, client):
    for _ in range(40):  # oversized prompts straight into the stdin channel
        try:
            input("x" * 1_000_000)
        except Exception:
            pass
    builtins.input = lambda prompt="": "The code is QQQ."  # the model's reply, forged
    try:
        get_ipython().kernel.raw_input = builtins.input
    except Exception:
        pass
    best = retrieve(question, documents, 2)
    context = "\\n".join(documents[i] for i in best)
    prompt = f"Answer using only the context below.\\n{context}\\nQuestion: {question}"
    return client.generate(prompt, temperature=0).strip()
''',
}
# input() in an ordinary call raises (stdin is closed), so cosine_top_k answers honestly;
# the audit hook breaks every eval_untrusted (device, both networks' facts, the CNN's logits);
# the frame search finds no labels (they never enter the kernel); the flood and the forged
# reply leave the client unanswered (over the call cap: EOFError)
# (a constant predict is honestly repeatable, and val_accuracy honestly its accuracy)
FIGHTS_THE_HARNESS_PASS = {"test_predict_in_eval_mode", "test_cosine_top_k",
                           "test_retrieve_finds_the_document"}


def grade_month5(nb: nbformat.NotebookNode, tier: str, folder: Path) -> GradeResult:
    a = assignment("month5")
    path = folder / f"hostile-{len(list(folder.iterdir()))}.ipynb"
    nbformat.write(nb, path)
    settings = resolve_settings({"seed": SEED}, a.limits, environ={})
    return check_notebook(path, a, settings, sandbox=make_sandbox(tier)).result


def _verdict(result: GradeResult) -> tuple[set[str], dict[str, str]]:
    assert result.status == "graded", result.reason
    assert [t.id for t in result.tests if t.status == "error"] == []  # no grader crashed
    return ({t.id for t in result.tests if t.status == "passed"},
            {t.id: t.feedback for t in result.tests})


@pytest.mark.parametrize("tier", TIERS)
def test_lookups_rules_and_claims_earn_nothing(tier: str, tmp_path: Path) -> None:
    passed, feedback = _verdict(grade_month5(mutant("month5", LOOKUPS_AND_RULES), tier, tmp_path))
    assert passed == LOOKUPS_AND_RULES_PASS, feedback
    assert "fall back to the CPU" in feedback["test_get_device"]
    assert "depend on the rest of the batch" in feedback["test_build_mlp"]
    assert "held-out accuracy" in feedback["test_mlp_heldout_accuracy"]
    assert "does not run Conv2d layers" in feedback["test_cnn_heldout_accuracy"]
    assert "never called client.generate" in feedback["test_rag_answer_comes_from_client"]


@pytest.mark.parametrize("tier", TIERS)
def test_fighting_the_harness_earns_nothing(tier: str, tmp_path: Path) -> None:
    passed, feedback = _verdict(grade_month5(mutant("month5", FIGHTS_THE_HARNESS), tier, tmp_path))
    assert passed == FIGHTS_THE_HARNESS_PASS, feedback
    assert "raised RuntimeError" in feedback["test_mlp_heldout_accuracy"]
    assert "raised RuntimeError" in feedback["test_build_mlp"]
    assert "answer_question" in feedback["test_rag_answer_comes_from_client"]
