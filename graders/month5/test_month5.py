"""Hidden graders for month 5. Networks are trained on rows drawn here and scored here on other
fresh rows; the RAG function gets a recording fake client built by grader code."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from mlgrade.grading import Expr, LearnerFailure, expect, points


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


def fresh_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(1_000, 2**31))  # never the notebook's seeds 0 and 1


DEVICE_CHECK = """
import torch
real = torch.cuda.is_available
try:
    torch.cuda.is_available = lambda: True
    with_gpu = ns['get_device']()
    torch.cuda.is_available = lambda: False
    without_gpu = ns['get_device']()
finally:
    torch.cuda.is_available = real
result = [[type(d).__name__, str(d)] for d in (with_gpu, without_gpu)]
"""

MLP_CHECK = """
import torch
from torch import nn
model = ns['build_mlp'](n_features, n_classes)
layers = {type(m).__name__ for m in model.modules()} if isinstance(model, nn.Module) else set()
out = None
if isinstance(model, nn.Module):
    model.eval()
    with torch.no_grad():
        out = model(torch.as_tensor(x)).detach().cpu().numpy()
result = {'module': isinstance(model, nn.Module), 'layers': sorted(layers), 'out': out}
"""

CNN_CHECK = """
import torch
from torch import nn
model = ns['build_cnn']()
ok = isinstance(model, nn.Module)
out = None
if ok:
    model.eval()
    with torch.no_grad():
        out = model(torch.as_tensor(x)).detach().cpu().numpy()
conv = ok and any(isinstance(m, nn.Conv2d) for m in model.modules())
result = {'module': ok, 'conv': conv, 'out': out}
"""

# A recording stand-in for an LLM client; the grader reads back what it was asked.
FAKE_CLIENT = """type('RecordingClient', (), {
    '__module__': 'mlgrade_grader',
    '__init__': lambda self, reply: (setattr(self, 'calls', []), setattr(self, 'reply', reply))[0],
    'generate': lambda self, prompt, temperature=None, **kwargs: (self.calls.append({
        'prompt': prompt if isinstance(prompt, str) else repr(prompt),
        'temperature': temperature if temperature is None or type(temperature) in (int, float)
                       else repr(temperature),
        'other': sorted(str(k) for k in kwargs)}), self.reply)[1],
})"""

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


# -- Q1 --------------------------------------------------------------------------------------
@points(1, question="q1")
def test_get_device(nb):
    """get_device picks CUDA when available and the CPU otherwise"""
    (gpu_type, gpu), (cpu_type, cpu) = nb.eval(DEVICE_CHECK, what="`get_device()`")
    expect(gpu_type == "device" and cpu_type == "device",
           "get_device() should return a torch.device, e.g. torch.device('cpu').")
    expect(gpu.startswith("cuda"), "get_device() does not choose the GPU when "
           "torch.cuda.is_available() is True: ask torch, do not hard-code the device.")
    expect(cpu == "cpu", "get_device() should fall back to the CPU when "
           "torch.cuda.is_available() is False.")


# -- Q2 --------------------------------------------------------------------------------------
@points(2, question="q2")
def test_build_mlp(nb, rng):
    """build_mlp has Linear/BatchNorm1d/ReLU/Dropout layers and outputs one logit per class"""
    n_features, n_classes = int(rng.integers(3, 12)), int(rng.integers(2, 6))
    x = rng.normal(size=(7, n_features)).astype(np.float32)
    info = nb.eval(MLP_CHECK, n_features=n_features, n_classes=n_classes, x=x,
                   what="`build_mlp(...)`")
    expect(info["module"] is True,
           "build_mlp should return a torch.nn.Module (e.g. nn.Sequential).")
    missing = {"Linear", "BatchNorm1d", "ReLU", "Dropout"} - set(info["layers"])
    expect(not missing, "build_mlp is missing layer types: use Linear, BatchNorm1d, ReLU and "
           f"Dropout (missing: {', '.join(sorted(missing))}).")
    out = info["out"]
    expect(isinstance(out, np.ndarray) and out.shape == (7, n_classes),
           "build_mlp(n_features, n_classes) should map (batch, n_features) to (batch, n_classes).")
    expect(not np.allclose(out.sum(axis=1), 1.0, atol=1e-4) or bool(np.any(out < 0)),
           "build_mlp ends with a softmax: return raw logits, CrossEntropyLoss applies the "
           "softmax itself.")


# -- Q3 --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_mlp(nb, seed) -> Any:
    """The learner's train_model fitted on fresh rows (a Ref), or the failure."""
    X, y = make_data(2000, fresh_seed(np.random.default_rng([seed, 5])))
    try:
        return nb.call("train_model", X, y, keep=True, timeout=60)
    except LearnerFailure as exc:
        return exc


@points(2, question="q3")
def test_mlp_heldout_accuracy(nb, rng, trained_mlp):
    """train_model reaches accuracy >= 0.90 on 2,000 fresh rows"""
    if isinstance(trained_mlp, LearnerFailure):
        raise trained_mlp
    X_new, y_new = make_data(2000, fresh_seed(rng))
    pred = nb.call("predict", trained_mlp, X_new)
    expect(isinstance(pred, np.ndarray) and pred.shape == y_new.shape,
           "predict(model, X) should return one predicted class per row, as a NumPy array.")
    accuracy = float(np.mean(pred == y_new))
    expect(accuracy >= 0.90, f"held-out accuracy is {accuracy:.3f}, below 0.90: train for more "
           "epochs, check the loss is CrossEntropyLoss on logits and that every batch is used.")


@points(1, question="q3")
def test_predict_in_eval_mode(nb, rng, trained_mlp):
    """predict is repeatable and does not depend on the rest of the batch (eval mode)"""
    if isinstance(trained_mlp, LearnerFailure):
        raise trained_mlp
    X_new, _ = make_data(40, fresh_seed(rng))
    hint = ("predict gives different answers for the same rows: call model.eval() before "
            "predicting (Dropout and BatchNorm behave differently while training).")
    first = nb.call("predict", trained_mlp, X_new)
    second = nb.call("predict", trained_mlp, X_new)
    expect(isinstance(first, np.ndarray) and first.shape == (40,),
           "predict(model, X) should return one predicted class per row, as a NumPy array.")
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
    pred = nb.call("predict", Expr("ns['mlp_model']"), X_val)
    expect(isinstance(pred, np.ndarray) and pred.shape == y_val.shape,
           "predict(mlp_model, X_val) should return one class per validation row.")
    expect(abs(reported - float(np.mean(pred == y_val))) < 1e-9,
           "`val_accuracy` is not mlp_model's accuracy on X_val, y_val: measure it on the "
           "validation rows, not on the rows the model was trained on.")


# -- Q4 --------------------------------------------------------------------------------------
@points(1, question="q4")
def test_build_cnn(nb, rng):
    """build_cnn is a convolutional network mapping (batch, 1, 8, 8) to 10 logits"""
    x = rng.uniform(0, 1, size=(5, 1, 8, 8)).astype(np.float32)
    info = nb.eval(CNN_CHECK, x=x, what="`build_cnn()`")
    expect(info["module"] is True, "build_cnn() should return a torch.nn.Module.")
    expect(info["conv"] is True, "build_cnn() should contain at least one nn.Conv2d layer.")
    out = info["out"]
    expect(isinstance(out, np.ndarray) and out.shape == (5, 10),
           "build_cnn() should map a (batch, 1, 8, 8) tensor to (batch, 10) logits.")


@points(2, question="q4")
def test_cnn_heldout_accuracy(nb, rng):
    """train_cnn reaches accuracy >= 0.95 on digits it never saw"""
    digits = load_digits()
    split = int(rng.integers(0, 2**31))
    img_train, img_test, lab_train, lab_test = train_test_split(
        digits.images, digits.target, test_size=0.25, stratify=digits.target, random_state=split)
    model = nb.call("train_cnn", img_train, lab_train, keep=True, timeout=60)
    pred = nb.call("predict_digits", model, img_test)
    expect(isinstance(pred, np.ndarray) and pred.shape == lab_test.shape,
           "predict_digits(model, images) should return one digit per image, as a NumPy array.")
    accuracy = float(np.mean(pred == lab_test))
    expect(accuracy >= 0.95, f"held-out accuracy is {accuracy:.3f}, below 0.95: scale the pixels "
           "the same way in training and prediction, call model.eval(), and train a little longer.")


# -- Q5 --------------------------------------------------------------------------------------
@points(1, question="q5")
def test_cosine_top_k(nb, rng):
    """cosine_top_k ranks by cosine similarity, not by raw dot product"""
    for _ in range(4):
        n, d, k = int(rng.integers(8, 30)), int(rng.integers(3, 10)), int(rng.integers(1, 5))
        matrix = rng.normal(size=(n, d)) * rng.uniform(0.1, 10.0, size=(n, 1))  # unequal lengths
        query = rng.normal(size=d) * rng.uniform(0.5, 3.0)
        cosine = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query))
        expected = [int(i) for i in np.argsort(-cosine, kind="stable")[:k]]
        got = nb.call("cosine_top_k", query, matrix, k)
        expect(isinstance(got, (list, tuple, np.ndarray)) and len(got) == k,
               "cosine_top_k(query, matrix, k) should return k row indices.")
        got_ints = [int(g) for g in got]
        by_dot = [int(i) for i in np.argsort(-(matrix @ query), kind="stable")[:k]]
        expect(got_ints == expected or got_ints != by_dot,
               "cosine_top_k ranks by the raw dot product, which favours long vectors: divide by "
               "the norms of the query and of each row (cosine similarity).")
        expect(got_ints == expected, "cosine_top_k does not return the most cosine-similar rows, "
               "best first: sort the similarities in decreasing order.")


@points(1, question="q5")
def test_retrieve_finds_the_document(nb, rng):
    """retrieve puts the document that answers a question first"""
    extra, extra_question = random_fact(rng)
    docs, where = shuffled_corpus(rng, extra)
    cases = [(extra_question, where[len(CORPUS)])]
    for old in rng.choice(sorted(QUESTIONS), size=3, replace=False):
        cases.append((QUESTIONS[int(old)], where[int(old)]))
    for question, target in cases:
        got = nb.call("retrieve", question, docs, 3)
        expect(isinstance(got, (list, tuple, np.ndarray)) and len(got) == 3,
               "retrieve(question, documents, k) should return k document indices.")
        expect(int(got[0]) == target, "retrieve does not put the matching document first: fit "
               "TfidfVectorizer on the documents, transform the question with the same vectorizer, "
               "and rank by cosine similarity.")


# -- Q6 --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rag_run(nb, seed) -> Any:
    """answer_question run once with a recording fake client, or the failure."""
    rng = np.random.default_rng([seed, 6])
    extra, question = random_fact(rng)
    docs, _ = shuffled_corpus(rng, extra)
    reply = f"  The code is {''.join(rng.choice(list('abcdefghijkmnpqrstuvwxyz'), size=8))}.\n"
    try:
        client = nb.eval("cls(reply)", cls=Expr(FAKE_CLIENT), reply=reply, keep=True,
                         what="the fake client")
        answer = nb.call("answer_question", question, docs, client)
        calls = nb.eval("c.calls", c=client, what="the fake client's record")
    except LearnerFailure as exc:
        return exc
    return answer, calls, extra, question, reply, docs


def _rag(rag_run: Any) -> Any:
    if isinstance(rag_run, LearnerFailure):
        raise rag_run
    answer, calls, extra, question, reply, docs = rag_run
    expect(isinstance(calls, list) and len(calls) == 1,
           "answer_question should call client.generate(prompt, temperature=0) exactly once "
           f"(it was called {len(calls) if isinstance(calls, list) else 0} times).")
    return answer, calls[0], extra, question, reply, docs


@points(1, question="q6")
def test_rag_prompt_carries_context(rag_run):
    """the prompt holds the retrieved document and the question, not the whole library"""
    _, call, extra, question, _, docs = _rag(rag_run)
    prompt = call["prompt"]
    expect(extra in prompt, "the prompt does not contain the retrieved document that answers the "
           "question: put the text of the top documents into the prompt as context.")
    expect(question in prompt, "the prompt does not contain the question itself.")
    included = sum(doc in prompt for doc in docs)
    expect(included <= 3, "the prompt pastes in (almost) every document: send only the few "
           "retrieved ones (k=2) as context.")


@points(1, question="q6")
def test_rag_temperature_zero(rag_run):
    """the client is called with temperature=0"""
    _, call, *_ = _rag(rag_run)
    temperature = call["temperature"]
    expect(isinstance(temperature, (int, float)) and temperature == 0,
           "call client.generate(prompt, temperature=0): a factual answer from the context needs "
           "no sampling randomness.")


@points(1, question="q6")
def test_rag_answer_comes_from_client(rag_run):
    """the answer is the client's reply, stripped"""
    answer, _, _, _, reply, _ = _rag(rag_run)
    expect(isinstance(answer, str) and answer == reply.strip(),
           "answer_question should return the model's reply (stripped of surrounding whitespace), "
           "not an answer written or post-processed by your code.")
