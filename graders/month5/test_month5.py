"""Hidden graders for month 5.

The kernel is only an oracle: every verdict is computed here from plain data the learner's code
returned for inputs chosen here. Networks are trained on rows made here and judged on other
fresh rows whose labels never leave this process. Those rows cannot be rebuilt in the kernel
from the starter's description or from a bundled data set: the synthetic rows go through a
secret view (features reordered and rescaled, classes renamed) drawn from the run's seed, and
the digits are jittered (a small random affine warp, noise) with their classes renamed too, so
looking an image up in ``load_digits()`` or applying the starter's rule earns nothing, while a
network trained on the rows it is given generalises as usual. The RAG function's LLM client
answers over Jupyter's stdin channel: each ``generate(...)`` call reaches this process, which
records the prompt and chooses the reply, so the call record never lives in the kernel.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import ndimage
from sklearn.datasets import load_digits
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split

from mlgrade.grading import Expr, LearnerFailure, expect, points


# -- Q3's rows: the notebook's generator, seen through a secret view -------------------------
def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The notebook's generator, row for row (the notebook's copy is never trusted)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(4 * n, 6))
    radius = X[:, 0] ** 2 + X[:, 1] ** 2
    side = X[:, 2] + X[:, 3]
    keep = (np.abs(radius - 1.0) > 0.15) & (np.abs(side) > 0.15)
    X, radius, side = X[keep][:n], radius[keep][:n], side[keep][:n]
    y = np.where(radius < 1.0, 0, np.where(side > 0, 1, 2))
    X = X * np.array([1.0, 1.0, 1.0, 1.0, 5.0, 0.2])
    return X.astype(np.float32), y.astype(np.int64)


class View:
    """A secret view of make_data's rows: columns reordered and rescaled, classes renamed.

    A network trained on the rows it is given does as well through any view; a rule copied
    from the starter's description ("inside a circle, or either side of a plane", on columns
    0-3) does not, because it does not know which column is which or what each class is called.
    """

    def __init__(self, rng: np.random.Generator) -> None:
        self.columns = rng.permutation(6)
        self.scales = rng.uniform(0.5, 2.0, size=6)
        self.classes = rng.permutation(3)
        while np.array_equal(self.classes, np.arange(3)):
            self.classes = rng.permutation(3)

    def rows(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        X, y = make_data(n, seed)
        return (X[:, self.columns] * self.scales).astype(np.float32), self.classes[y]


def fresh_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(1_000, 2**31))  # never the notebook's seeds 0 and 1


def as_labels(pred: Any, n: int, what: str) -> np.ndarray:
    """The learner's predictions as an int array of n labels, or a learner-facing failure."""
    expect(isinstance(pred, np.ndarray) and pred.shape == (n,),
           f"{what} should return one predicted class per row, as a NumPy array of shape ({n},).")
    expect(pred.dtype.kind in "iub" or (pred.dtype.kind == "f" and bool(np.all(pred == np.round(pred)))),
           f"{what} should return class labels (integers), not scores or probabilities.")
    return pred.astype(np.int64)


# -- Q4's images: the bundled digits, jittered and relabelled --------------------------------
def jitter(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each 8x8 image warped by a small random affine map (rotation up to 8 degrees, scale
    +-6 %, shift up to 1 px), its contrast varied and noise added, then rounded back to the
    0-16 pixel range: still an ordinary digit for a trained network, never an image of
    ``load_digits()`` (so an image cannot be looked up there)."""
    out = np.empty(images.shape, dtype=np.float64)
    centre = np.array([3.5, 3.5])
    for i, image in enumerate(images):
        angle = np.deg2rad(rng.uniform(-8.0, 8.0))
        matrix = np.array([[np.cos(angle), -np.sin(angle)],
                           [np.sin(angle), np.cos(angle)]]) / rng.uniform(0.94, 1.06)
        offset = centre - matrix @ centre - rng.uniform(-1.0, 1.0, size=2)
        out[i] = ndimage.affine_transform(image.astype(np.float64), matrix, offset=offset,
                                          order=1, mode="constant")
    out *= rng.uniform(0.85, 1.15, size=(len(images), 1, 1))
    out += rng.normal(0.0, 0.7, size=out.shape)
    return np.clip(np.rint(out), 0.0, 16.0)


def digits_task(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and held-out images (jittered) with renamed classes (a secret permutation)."""
    digits = load_digits()
    img_train, img_test, lab_train, lab_test = train_test_split(
        digits.images, digits.target, test_size=0.25, stratify=digits.target,
        random_state=int(rng.integers(0, 2**31)))
    rename = rng.permutation(10)
    while np.any(rename == np.arange(10)):  # no class keeps its digit
        rename = rng.permutation(10)
    return jitter(img_train, rng), rename[lab_train], jitter(img_test, rng), rename[lab_test]


# -- what the graders gather from the kernel (learner-controlled data, judged here) ---------
DEVICE_CLAIMS = """
import torch
real = torch.cuda.is_available
try:
    here = ns['get_device']()
    torch.cuda.is_available = lambda: True
    with_gpu = ns['get_device']()
    torch.cuda.is_available = lambda: False
    without_gpu = ns['get_device']()
finally:
    torch.cuda.is_available = real
result = [[type(d).__name__, str(d)] for d in (here, with_gpu, without_gpu)]
"""

# A learner's network run on grader inputs, and the layer classes it claims (names from each
# module's MRO). Evaluation mode: the batch twice, then rows alone. Training mode (``mixed``
# given): the same dropout masks for seed 0 (same seed, same batch shape), so a change between
# ``x`` and ``mixed`` (its second half replaced) in the first rows can only come from the
# batch's statistics (BatchNorm), and a change between seeds 0 and 1 only from Dropout.
NET_FACTS = """
import torch
from torch import nn
model = builder(*build_args)
result = {'module': isinstance(model, nn.Module)}
if result['module']:
    result['types'] = sorted({c.__name__ for m in model.modules() for c in type(m).__mro__})
    x = torch.as_tensor(inputs)
    out = lambda batch: model(batch).detach().cpu().numpy()
    with torch.no_grad():
        model.eval()
        result['eval'] = [out(x), out(x)]
        result['alone'] = [out(x[i:i + 1]) for i in range(2)]
        if mixed is not None:
            model.train()
            train = []
            for seed, batch in ((0, x), (0, x), (1, x), (0, torch.as_tensor(mixed))):
                torch.manual_seed(seed)
                train.append(out(batch))
            result['train'] = train
"""


def net_facts(nb: Any, builder: str, build_args: list[Any], inputs: np.ndarray,
              mixed: np.ndarray | None) -> dict[str, Any]:
    facts = nb.eval_untrusted(NET_FACTS, builder=Expr(f"ns[{builder!r}]"), build_args=build_args,
                              inputs=inputs, mixed=mixed, what=f"`{builder}(...)` and its outputs")
    expect(isinstance(facts, dict) and facts.get("module") is True,
           f"{builder} should return a torch.nn.Module (e.g. nn.Sequential or a subclass).")
    return facts


def outputs(facts: dict[str, Any], key: str, in_shape: tuple[int, ...],
            out_shape: tuple[int, ...]) -> list[np.ndarray]:
    """The outputs gathered under ``key``, each checked to be finite logits of ``out_shape``."""
    outs = facts.get(key)
    ok = (isinstance(outs, list) and all(isinstance(o, np.ndarray) and o.shape == out_shape
                                         and o.dtype.kind == "f" and bool(np.all(np.isfinite(o)))
                                         for o in outs))
    expect(ok, f"the network should map a tensor of shape {(out_shape[0], *in_shape)} to finite "
           f"float logits of shape {out_shape}.")
    return list(outs)


# -- Q1 --------------------------------------------------------------------------------------
def gpu_on_this_machine() -> bool:
    """Whether this machine has an NVIDIA GPU (device nodes), checked here, not in the kernel.
    Without one, no kernel here can use CUDA, so a "cuda" claim is false."""
    return any(Path("/dev").glob("nvidia[0-9]*"))


@points(1, question="q1")
def test_get_device(nb):
    """get_device picks CUDA when available and the CPU otherwise"""
    claims = nb.eval_untrusted(DEVICE_CLAIMS, what="`get_device()`")
    ok = (isinstance(claims, list) and len(claims) == 3
          and all(isinstance(c, list) and len(c) == 2 and all(isinstance(s, str) for s in c)
                  for c in claims))
    expect(ok, "get_device() should return a torch.device, e.g. torch.device('cpu').")
    (here_type, here), (gpu_type, gpu), (cpu_type, cpu) = claims
    expect(here_type == gpu_type == cpu_type == "device",
           "get_device() should return a torch.device, e.g. torch.device('cpu').")
    expect(gpu.startswith("cuda"), "get_device() does not choose the GPU when "
           "torch.cuda.is_available() is True: ask torch, do not hard-code the device.")
    expect(cpu == "cpu", "get_device() should fall back to the CPU when "
           "torch.cuda.is_available() is False.")
    # the claim about this machine is judged against what the grader can verify itself
    if gpu_on_this_machine():
        expect(here.startswith("cuda"), "this machine has a GPU, but get_device() returned "
               f"{here!r}: return torch.device('cuda') when torch.cuda.is_available().")
    else:
        expect(here == "cpu", f"get_device() returned {here!r} on a machine without a GPU: "
               "return torch.device('cpu') when torch.cuda.is_available() is False.")


# -- Q2 --------------------------------------------------------------------------------------
def _is_softmax(out: np.ndarray) -> bool:
    return bool(np.all(out >= -1e-6) and np.allclose(out.sum(axis=1), 1.0, atol=1e-4))


def _is_log_softmax(out: np.ndarray) -> bool:
    top = out.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(out - top).sum(axis=1))
    return bool(np.all(out <= 1e-6) and np.allclose(lse, 0.0, atol=1e-4))


@points(2, question="q2")
def test_build_mlp(nb, rng):
    """build_mlp has Linear/BatchNorm1d/ReLU/Dropout layers and outputs one logit per class"""
    n_features, n_classes = int(rng.integers(3, 12)), int(rng.integers(2, 6))
    x = rng.normal(size=(8, n_features)).astype(np.float32)
    mixed = np.concatenate([x[:4], rng.normal(3.0, 2.0, size=(4, n_features)).astype(np.float32)])
    facts = net_facts(nb, "build_mlp", [n_features, n_classes], x, mixed)
    missing = {"Linear", "BatchNorm1d", "ReLU", "Dropout"} - set(facts.get("types") or [])
    expect(not missing, "build_mlp is missing layer types: use Linear, BatchNorm1d, ReLU and "
           f"Dropout (missing: {', '.join(sorted(missing))}).")
    first, again = outputs(facts, "eval", (n_features,), (8, n_classes))
    alone = outputs(facts, "alone", (n_features,), (1, n_classes))
    seeded, repeated, other_seed, other_rows = outputs(facts, "train", (n_features,), (8, n_classes))
    expect(not _is_softmax(first) and not _is_log_softmax(first),
           "build_mlp ends with a softmax: return raw logits, CrossEntropyLoss applies the "
           "softmax itself.")
    # in evaluation mode the output is a fixed function of each row ...
    expect(bool(np.allclose(first, again, atol=1e-5))
           and all(np.allclose(alone[i][0], first[i], atol=1e-4) for i in range(2)),
           "in evaluation mode the network should give the same logits for a row every time, "
           "whatever else is in the batch.")
    # ... and in training mode Dropout draws new masks and BatchNorm uses the batch's statistics
    expect(not np.allclose(seeded, other_seed, atol=1e-6),
           "in training mode the network's outputs do not change with the random seed: put the "
           "nn.Dropout layers in the path from input to logits.")
    # (standard layers repeat themselves under torch.manual_seed: if they do not, the kernel
    # has been tampered with and no batch dependence is shown)
    expect(bool(np.allclose(seeded, repeated, atol=1e-5))
           and not np.allclose(other_rows[:4], seeded[:4], atol=1e-4),
           "in training mode a row's logits do not depend on the rest of the batch: use "
           "nn.BatchNorm1d in the path from input to logits.")


# -- Q3 --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def view(seed) -> View:
    return View(np.random.default_rng([seed, 3, 0]))


@pytest.fixture(scope="module")
def trained_mlp(nb, seed, view) -> Any:
    """The learner's train_model fitted on fresh rows (a Ref), or the failure."""
    X, y = view.rows(2000, fresh_seed(np.random.default_rng([seed, 5])))
    try:
        return nb.call("train_model", X, y, keep=True, timeout=60)
    except LearnerFailure as exc:
        return exc


@points(2, question="q3")
def test_mlp_heldout_accuracy(nb, rng, view, trained_mlp):
    """train_model reaches accuracy >= 0.90 on 2,000 fresh rows"""
    if isinstance(trained_mlp, LearnerFailure):
        raise trained_mlp
    X_new, y_new = view.rows(2000, fresh_seed(rng))
    pred = as_labels(nb.call("predict", trained_mlp, X_new), len(y_new), "predict(model, X)")
    accuracy = float(np.mean(pred == y_new))
    expect(accuracy >= 0.90, f"held-out accuracy is {accuracy:.3f}, below 0.90: train for more "
           "epochs, check the loss is CrossEntropyLoss on logits and that every batch is used.")


@points(1, question="q3")
def test_predict_in_eval_mode(nb, rng, view, trained_mlp):
    """predict is repeatable and does not depend on the rest of the batch (eval mode)"""
    if isinstance(trained_mlp, LearnerFailure):
        raise trained_mlp
    X_new, _ = view.rows(40, fresh_seed(rng))
    hint = ("predict gives different answers for the same rows: call model.eval() before "
            "predicting (Dropout and BatchNorm behave differently while training).")
    first = as_labels(nb.call("predict", trained_mlp, X_new), 40, "predict(model, X)")
    second = nb.call("predict", trained_mlp, X_new)
    expect(isinstance(second, np.ndarray) and bool(np.array_equal(first, second)), hint)
    for i in range(3):
        try:
            alone = nb.call("predict", trained_mlp, X_new[i:i + 1])
        except LearnerFailure:
            expect(False, "predict fails for a single row: BatchNorm is still in training mode; "
                   "call model.eval() before predicting.")
        same = (isinstance(alone, np.ndarray) and alone.shape == (1,)
                and int(alone[0]) == int(first[i]))
        expect(same, hint)


@points(1, question="q3")
def test_val_accuracy_is_on_validation_rows(nb):
    """`val_accuracy` is mlp_model's accuracy on the validation rows"""
    X_val, y_val = make_data(1000, seed=1)
    expect(nb.has("mlp_model"), "`mlp_model` is not defined: train it with train_model(X_train, "
           "y_train) in the last cell of Q3.")
    reported = nb.get("val_accuracy")
    expect(isinstance(reported, float) and 0.0 <= reported <= 1.0,
           "`val_accuracy` should be a float between 0 and 1.")
    pred = as_labels(nb.call("predict", Expr("ns['mlp_model']"), X_val), len(y_val),
                     "predict(mlp_model, X_val)")
    expect(abs(reported - float(np.mean(pred == y_val))) < 1e-9,
           "`val_accuracy` is not mlp_model's accuracy on X_val, y_val: measure it on the "
           "validation rows, not on the rows the model was trained on.")


# -- Q4 --------------------------------------------------------------------------------------
@points(1, question="q4")
def test_build_cnn(nb, rng):
    """build_cnn is a convolutional network mapping (batch, 1, 8, 8) to 10 logits"""
    x = rng.uniform(0, 1, size=(6, 1, 8, 8)).astype(np.float32)
    facts = net_facts(nb, "build_cnn", [], x, None)
    expect("Conv2d" in (facts.get("types") or []),
           "build_cnn() should contain at least one nn.Conv2d layer.")
    first, _ = outputs(facts, "eval", (1, 8, 8), (6, 10))
    outputs(facts, "alone", (1, 8, 8), (1, 10))  # a batch of one too (a wrong flatten fails here)
    expect(not _is_softmax(first) and not _is_log_softmax(first),
           "build_cnn() ends with a softmax: return raw logits, CrossEntropyLoss applies the "
           "softmax itself.")


# The trained network's logits for images prepared as the starter prescribes (pixels / 16, a
# channel dimension), in evaluation mode, on the model's own device.
CNN_LOGITS = """
import torch
params = list(model.parameters())
model.eval()
with torch.no_grad():
    x = torch.as_tensor(prepared).to(params[0].device if params else 'cpu')
    result = model(x).detach().cpu().numpy()
"""


@points(2, question="q4")
def test_cnn_heldout_accuracy(nb, rng):
    """train_cnn reaches accuracy >= 0.85 on jittered digits it never saw, and predict_digits
    prepares images as in training"""
    img_train, lab_train, img_test, lab_test = digits_task(rng)
    model = nb.call("train_cnn", img_train, lab_train, keep=True, timeout=60)
    pred = as_labels(nb.call("predict_digits", model, img_test), len(lab_test),
                     "predict_digits(model, images)")
    accuracy = float(np.mean(pred == lab_test))
    expect(accuracy >= 0.85, f"held-out accuracy is {accuracy:.3f}, below 0.85: scale the pixels "
           "the same way in training and prediction, call model.eval(), predict the labels "
           "train_cnn was given, and train a little longer.")
    # an accuracy bar alone can hide an inconsistent preparation: compare predict_digits with
    # the same model run here on images prepared exactly as the starter says
    prepared = (img_test / 16.0).astype(np.float32)[:, None, :, :]
    logits = nb.eval_untrusted(CNN_LOGITS, model=model, prepared=prepared,
                               what="your trained CNN on prepared images")
    expect(isinstance(logits, np.ndarray) and logits.shape == (len(lab_test), 10),
           "the model train_cnn returns should map (n, 1, 8, 8) images to (n, 10) logits.")
    agree = float(np.mean(np.argmax(logits, axis=1) == pred))
    expect(agree >= 0.99, f"predict_digits disagrees with its own model on {1 - agree:.1%} of the "
           "images: prepare images exactly as in training (pixels divided by 16, a channel "
           "dimension) and call model.eval() before predicting.")


# -- Q5 --------------------------------------------------------------------------------------
def _indices(got: Any, k: int, n: int, what: str) -> list[int]:
    ok = (isinstance(got, (list, tuple, np.ndarray)) and len(got) == k
          and all(isinstance(g, (int, np.integer)) and not isinstance(g, bool) for g in got))
    expect(ok, f"{what} should return a list of {k} row indices (ints).")
    ints = [int(g) for g in got]
    expect(all(0 <= g < n for g in ints) and len(set(ints)) == k,
           f"{what} should return {k} different row indices between 0 and {n - 1}.")
    return ints


@points(1, question="q5")
def test_cosine_top_k(nb, rng):
    """cosine_top_k ranks by cosine similarity, not by raw dot product, for every k"""
    for case in range(5):
        n, d = int(rng.integers(8, 30)), int(rng.integers(3, 10))
        k = [1, n, *rng.integers(2, 6, size=3)][case]  # both ends of k, then inside
        matrix = rng.normal(size=(n, d)) * rng.uniform(0.1, 10.0, size=(n, 1))  # unequal lengths
        query = rng.normal(size=d) * rng.uniform(0.5, 3.0)
        cosine = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
        expected = [int(i) for i in np.argsort(-cosine, kind="stable")[:k]]
        got = _indices(nb.call("cosine_top_k", query, matrix, int(k)), int(k), n,
                       f"cosine_top_k(query, matrix, k={k})")
        by_dot = [int(i) for i in np.argsort(-(matrix @ query), kind="stable")[:k]]
        expect(got == expected or got != by_dot,
               "cosine_top_k ranks by the raw dot product, which favours long vectors: divide by "
               "the norms of the query and of each row (cosine similarity).")
        expect(got == expected, "cosine_top_k does not return the k most cosine-similar rows, "
               "best first: sort the similarities in decreasing order and keep the first k.")


CORPUS = [
    "The Eiffel Tower in Paris was completed in 1889 for the World's Fair.",
    "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar.",
    "The Python programming language was created by Guido van Rossum and first released in 1991.",
    "Mount Everest, on the border of Nepal and China, is the highest mountain above sea level.",
    "The human heart has four chambers and pumps blood around the body.",
    "Gradient boosting builds an ensemble of shallow decision trees, each correcting the last.",
    "The Pacific is the largest and deepest of the oceans on Earth.",
    "Vaccines train the immune system to recognise a pathogen before an infection.",
]
QUESTIONS = {
    0: "In which year was the Eiffel Tower in Paris completed?",
    2: "Who created the Python programming language?",
    3: "Which mountain is the highest above sea level?",
    4: "How many chambers does the human heart have?",
    6: "Which ocean is the largest and deepest?",
}
WORDS = ["amber", "birch", "cobalt", "delta", "ember", "falcon", "granite", "harbor", "indigo",
         "juniper", "kestrel", "lantern", "meadow", "nimbus", "orchid", "pebble", "quartz", "raven"]


def random_fact(rng: np.random.Generator) -> tuple[str, str]:
    """A document no learner could have seen, and a question only it answers."""
    name = "-".join(rng.choice(WORDS, size=2, replace=False))
    code = "".join(rng.choice(list("ABCDEFGHJKLMNPQRSTUVWXYZ23456789"), size=6))
    return (f"The warehouse robot {name} unlocks with maintenance code {code}.",
            f"What is the maintenance code of the warehouse robot {name}?")


def shuffled_corpus(rng: np.random.Generator, extra: str) -> tuple[list[str], list[int]]:
    """The corpus plus ``extra``, shuffled; returns the documents and old->new positions."""
    docs = [*CORPUS, extra]
    order = rng.permutation(len(docs))
    where = [int(np.where(order == i)[0][0]) for i in range(len(docs))]
    return [docs[i] for i in order], where


def tfidf_ranking(question: str, docs: list[str]) -> list[int]:
    """The grader's own TF-IDF (fit on the documents) + cosine ranking, best first."""
    vectorizer = TfidfVectorizer().fit(docs)
    doc_vectors = vectorizer.transform(docs).toarray()
    q = vectorizer.transform([question]).toarray()[0]
    norms = np.linalg.norm(doc_vectors, axis=1) * np.linalg.norm(q)
    scores = doc_vectors @ q / np.where(norms == 0, 1.0, norms)
    return [int(i) for i in np.argsort(-scores, kind="stable")]


@points(1, question="q5")
def test_retrieve_finds_the_document(nb, rng):
    """retrieve returns k documents, the one that answers the question first"""
    extra, extra_question = random_fact(rng)
    docs, where = shuffled_corpus(rng, extra)
    cases = [(extra_question, where[len(CORPUS)], 3), (extra_question, where[len(CORPUS)], 1)]
    for old in rng.choice(sorted(QUESTIONS), size=2, replace=False):
        cases.append((QUESTIONS[int(old)], where[int(old)], len(docs)))
    for question, target, k in cases:
        assert tfidf_ranking(question, docs)[0] == target  # the grader's own ranking agrees
        got = _indices(nb.call("retrieve", question, docs, k), k, len(docs),
                       f"retrieve(question, documents, k={k})")
        expect(got[0] == target, "retrieve does not put the matching document first: fit "
               "TfidfVectorizer on the documents, transform the question with the same vectorizer, "
               "and rank by cosine similarity, best first.")


# -- Q6 --------------------------------------------------------------------------------------
# The client handed to answer_question: generate() sends its arguments to the grader over the
# kernel's stdin channel (input()) and returns the grader's reply. Nothing is recorded in the
# kernel; a learner who calls input() directly is simply calling the client with that prompt.
LLM_CLIENT = """type('LLMClient', (), {
    '__module__': 'mlgrade_grader',
    'generate': lambda self, prompt, temperature=None, **kwargs: input(__import__('json').dumps({
        'prompt': prompt if isinstance(prompt, str) else repr(prompt),
        'temperature': temperature if temperature is None or type(temperature) in (int, float)
                       else repr(temperature),
        'other': sorted(str(k) for k in kwargs)})),
})()"""
MAX_CALLS = 4
MAX_PROMPT_CHARS = 100_000


@pytest.fixture(scope="module")
def rag_run(nb, seed) -> Any:
    """answer_question run once with the stdin-backed client: (answer, calls, ...), or the failure."""
    rng = np.random.default_rng([seed, 6])
    extra, question = random_fact(rng)
    docs, _ = shuffled_corpus(rng, extra)
    reply = f"  The code is {''.join(rng.choice(list('abcdefghijkmnpqrstuvwxyz'), size=10))}.\n"
    calls: list[dict[str, Any] | None] = []  # kept here, in the grader process

    def llm(text: str) -> str:
        try:
            call = json.loads(text)
        except ValueError:
            call = None
        ok = (isinstance(call, dict) and isinstance(call.get("prompt"), str)
              and isinstance(call.get("other"), list))
        calls.append(call if ok else None)
        return reply

    try:
        answer = nb.call_with_stdin("answer_question", question, docs, Expr(LLM_CLIENT),
                                    answer=llm, max_inputs=MAX_CALLS,
                                    max_input_chars=MAX_PROMPT_CHARS)
    except LearnerFailure as exc:
        return exc
    return answer, calls, extra, question, reply, docs


def _rag(rag_run: Any) -> Any:
    if isinstance(rag_run, LearnerFailure):
        raise rag_run
    answer, calls, extra, question, reply, docs = rag_run
    expect(len(calls) == 1, "answer_question should call client.generate(prompt, temperature=0) "
           f"exactly once (it was called {len(calls)} times).")
    expect(calls[0] is not None, "client.generate(...) was called with arguments the grader "
           "could not read: pass the prompt as a string.")
    return answer, calls[0], extra, question, reply, docs


@points(1, question="q6")
def test_rag_prompt_carries_context(rag_run):
    """the prompt holds the 2 retrieved documents and the question, not the whole library"""
    _, call, extra, question, _, docs = _rag(rag_run)
    prompt = call["prompt"]
    expect(extra in prompt, "the prompt does not contain the retrieved document that answers the "
           "question: put the text of the top documents into the prompt as context.")
    expect(question in prompt, "the prompt does not contain the question itself.")
    included = sum(doc in prompt for doc in docs)
    expect(included == 2, f"the prompt contains {included} of the documents: send exactly the "
           "2 retrieved ones as context.")


ONLY = r"\b(?:only|solely|exclusively|strictly|just)\b"
SOURCE = (r"\b(?:context|contexts|documents?|passages?|sources?|information|texts?|excerpts?|"
          r"provided|given|above|below|retrieved|snippets?|facts)\b")
GROUNDED = [
    re.compile(ONLY + r"[^.\n]{0,60}?" + SOURCE),                     # "using only the context"
    re.compile(SOURCE + r"[^.\n]{0,40}?" + ONLY),                     # "the documents, and only them"
    re.compile(r"\b(?:do not|don't|never|without)\b[^.\n]{0,30}?"     # "do not use outside knowledge"
               r"\b(?:outside|external|prior|other|own|general|background)\b[^.\n]{0,20}?"
               r"\b(?:knowledge|information|facts|sources)\b"),
]


@points(0.5, question="q6")
def test_rag_prompt_grounds_answer(rag_run):
    """the prompt tells the model to answer only from the context"""
    _, call, _, question, _, docs = _rag(rag_run)
    rest = call["prompt"]
    for text in [*docs, question]:  # judge the learner's own words, not the documents'
        rest = rest.replace(text, "\n")
    rest = rest.lower()
    expect(any(p.search(rest) for p in GROUNDED),
           "the prompt does not tell the model to answer only from the context: add an "
           "instruction such as \"Answer using only the context below.\"")


@points(0.5, question="q6")
def test_rag_temperature_zero(rag_run):
    """the client is called with temperature=0"""
    _, call, *_ = _rag(rag_run)
    temperature = call.get("temperature")
    expect(type(temperature) in (int, float) and temperature == 0,
           "call client.generate(prompt, temperature=0): a factual answer from the context needs "
           "no sampling randomness.")


@points(1, question="q6")
def test_rag_answer_comes_from_client(rag_run):
    """the answer is the client's reply, stripped"""
    answer, _, _, _, reply, _ = _rag(rag_run)
    expect(isinstance(answer, str) and answer == reply.strip(),
           "answer_question should return the model's reply (stripped of surrounding whitespace), "
           "not an answer written or post-processed by your code.")
