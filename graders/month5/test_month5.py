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

Where the question names the model (a torch MLP, a CNN), the model a training function returns
is checked to be that kind of network: a torch module, described as plain data (the layer
classes whose forward ran, its logits for grader rows in evaluation mode), judged here against
the grader's labels; predictions alone would let scikit-learn or a rule earn the points.
Stated process is tested by behaviour where it shows: training twice on the same rows gives
the same network (seeding), rows sorted by class still train well (shuffling), and predict's
forward pass runs with gradient tracking off (a hook on a copy of the model reports it over
stdin). Pass marks are calibrated across seeds: see CALIBRATION.md beside this file.
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
    expect(pred.dtype.kind in "iu", f"{what} should return class labels as a NumPy array of "
           f"ints (its dtype is {pred.dtype}), not scores, probabilities or floats.")
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
# A fake GPU that looks like a real one to every query a correct get_device may make (whether
# CUDA is available, how many devices there are, which one is current, its name), and a
# machine without one that looks like a real CPU machine (no CUDA device, no Apple GPU either).
DEVICE_CLAIMS = """
import torch
names = ['is_available', 'device_count', 'current_device', 'get_device_name', 'is_initialized']
saved = {n: getattr(torch.cuda, n) for n in names if hasattr(torch.cuda, n)}
mps = getattr(torch.backends, 'mps', None)
saved_mps = getattr(mps, 'is_available', None)


def fake(gpus):
    torch.cuda.is_available = lambda: gpus > 0
    torch.cuda.device_count = lambda: gpus
    torch.cuda.current_device = lambda: 0
    torch.cuda.get_device_name = lambda device=None: 'NVIDIA H100 80GB HBM3'
    torch.cuda.is_initialized = lambda: gpus > 0
    if saved_mps is not None:
        mps.is_available = lambda: False


try:
    here = ns['get_device']()
    fake(1)
    with_gpu = ns['get_device']()
    fake(0)
    without_gpu = ns['get_device']()
finally:
    for n, f in saved.items():
        setattr(torch.cuda, n, f)
    if saved_mps is not None:
        mps.is_available = saved_mps
result = [[type(d).__name__, str(d)] for d in (here, with_gpu, without_gpu)]
"""

# A learner's network run on grader inputs, the layer classes it claims (names from each
# module's MRO) and the layer classes whose forward actually ran on the way from input to
# output (forward hooks: a layer that is registered but never used does not count).
# Evaluation mode: the batch twice, then rows alone. Training mode (``mixed`` given): the same
# dropout masks for seed 0 (same seed, same batch shape), so a change between ``x`` and
# ``mixed`` (its second half replaced) in the first rows can only come from the batch's
# statistics (BatchNorm), and a change between seeds 0 and 1 only from Dropout.
NET_FACTS = """
import torch
from torch import nn
model = builder(*build_args)
result = {'module': isinstance(model, nn.Module)}
if result['module']:
    result['types'] = sorted({c.__name__ for m in model.modules() for c in type(m).__mro__})
    ran = set()
    hooks = [m.register_forward_hook(
        lambda mod, args, out: ran.update(c.__name__ for c in type(mod).__mro__))
        for m in model.modules()]
    x = torch.as_tensor(inputs)
    out = lambda batch: model(batch).detach().cpu().numpy()
    with torch.no_grad():
        model.eval()
        result['eval'] = [out(x), out(x)]
        for h in hooks:
            h.remove()
        result['ran'] = sorted(ran)
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


# A trained model (a Ref) described as plain data: whether it is a torch module, the layer
# classes whose forward ran, and its logits for grader rows in evaluation mode without gradient
# tracking, on the model's own device. The model's mode is put back afterwards, so that a
# ``predict`` that forgets ``model.eval()`` is still seen forgetting it. With ``then`` (a
# learner function's name), that function is called on (model, raw) in the same round trip:
# its answer and the model's own logits are one answer of the kernel's, compared with each
# other (does the function predict with its model, preparing inputs as the starter says?).
# With ``extra`` (a variable's name), its value comes back in the same answer (a number the
# learner computed from this model, compared with the model's own predictions).
TRAINED_FACTS = """
import torch
from torch import nn
result = {'module': isinstance(model, nn.Module)}
if result['module']:
    ran = set()
    hooks = [m.register_forward_hook(
        lambda mod, args, out: ran.update(c.__name__ for c in type(mod).__mro__))
        for m in model.modules()]
    modes = [(m, m.training) for m in model.modules()]
    params = list(model.parameters())
    try:
        model.eval()
        with torch.no_grad():
            x = torch.as_tensor(inputs).to(params[0].device if params else 'cpu')
            result['logits'] = model(x).detach().cpu().numpy()
    finally:
        for h in hooks:
            h.remove()
        for m, training in modes:
            m.training = training
    result['ran'] = sorted(ran)
    if then is not None:
        result['then'] = ns[then](model, raw)
if extra is not None:
    result['extra'] = ns[extra]
"""


def trained_facts(nb: Any, model: Any, inputs: np.ndarray, n_classes: int, what: str,
                  layers: set[str], then: str | None = None, raw: Any = None,
                  extra: str | None = None) -> dict[str, Any]:
    """A trained model's plain-data description, checked to be the stated kind of torch network
    (an nn.Module whose forward runs every layer type of ``layers``) with finite logits."""
    facts = nb.eval_untrusted(TRAINED_FACTS, model=model, inputs=inputs, then=then, raw=raw,
                              extra=extra, what=what)
    expect(isinstance(facts, dict) and facts.get("module") is True,
           f"{what} should be the trained torch network (an nn.Module), not another kind "
           "of model or a rule.")
    missing = layers - set(facts.get("ran") or [])
    expect(not missing, f"{what} does not run {', '.join(sorted(missing))} "
           "layers from input to logits: train the network the question asks for.")
    logits = facts.get("logits")
    expect(isinstance(logits, np.ndarray) and logits.shape == (len(inputs), n_classes)
           and logits.dtype.kind == "f" and bool(np.all(np.isfinite(logits))),
           f"{what} should map {len(inputs)} rows to finite logits of shape "
           f"({len(inputs)}, {n_classes}).")
    return facts


def _model_logits(nb: Any, model: Any, inputs: np.ndarray, n_classes: int, what: str,
                  layers: set[str]) -> np.ndarray:
    return np.asarray(trained_facts(nb, model, inputs, n_classes, what, layers)["logits"])


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


MLP_LAYERS = {"Linear", "BatchNorm1d", "ReLU", "Dropout"}
# what Q3 requires of the model train_model returns: a torch network whose forward runs Linear
# layers (its layer types are Q2's business: build_mlp is graded there)
TORCH_NET = {"Linear"}


@points(2, question="q2")
def test_build_mlp(nb, rng):
    """build_mlp runs Linear/BatchNorm1d/ReLU/Dropout layers and outputs one logit per class"""
    n_features, n_classes = int(rng.integers(3, 12)), int(rng.integers(4, 8))
    x = rng.normal(size=(8, n_features)).astype(np.float32)
    mixed = np.concatenate([x[:4], rng.normal(3.0, 2.0, size=(4, n_features)).astype(np.float32)])
    facts = net_facts(nb, "build_mlp", [n_features, n_classes], x, mixed)
    first, again = outputs(facts, "eval", (n_features,), (8, n_classes))
    missing = MLP_LAYERS - set(facts.get("ran") or [])
    expect(not missing, "build_mlp's network does not run layers of every stated type from input "
           "to logits: use nn.Linear, nn.BatchNorm1d, nn.ReLU and nn.Dropout layers (missing: "
           f"{', '.join(sorted(missing))}).")
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
# Pass marks, calibrated grader-side across seeds (graders/month5/CALIBRATION.md): on fresh
# rows of the view the reference's loop reaches 0.970-0.996 and the alternatives' 0.963-0.995,
# while an untrained network or a rule is near chance; trained on class-sorted rows, a shuffled
# DataLoader reaches 0.969-0.991 and an unshuffled one 0.415-0.611.
MLP_BAR = 0.90
SORTED_BAR = 0.85
MLP_ROWS, SORTED_ROWS, REPEAT_ROWS = 2000, 1000, 500


@pytest.fixture(scope="module")
def view(seed) -> View:
    return View(np.random.default_rng([seed, 3, 0]))


@pytest.fixture(scope="module")
def trained_mlp(nb, seed, view) -> Any:
    """The learner's train_model fitted on fresh rows (a Ref), or the failure."""
    X, y = view.rows(MLP_ROWS, fresh_seed(np.random.default_rng([seed, 5])))
    try:
        return nb.call("train_model", X, y, keep=True, timeout=60)
    except LearnerFailure as exc:
        return exc


def _trained(trained_mlp: Any) -> Any:
    if isinstance(trained_mlp, LearnerFailure):
        raise trained_mlp
    return trained_mlp


@points(1.5, question="q3")
def test_mlp_heldout_accuracy(nb, rng, view, trained_mlp):
    """train_model returns a trained torch network, and predict with it, reaching accuracy
    >= 0.90 on 2,000 fresh rows"""
    model = _trained(trained_mlp)
    X_new, y_new = view.rows(2000, fresh_seed(rng))
    logits = _model_logits(nb, model, X_new, 3, "the model train_model(X, y) returns", TORCH_NET)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y_new))
    expect(accuracy >= MLP_BAR, f"the trained network's held-out accuracy is {accuracy:.3f}, "
           f"below {MLP_BAR}: train for more epochs, check the loss is CrossEntropyLoss on logits "
           "and that every batch is used.")
    pred = as_labels(nb.call("predict", model, X_new), len(y_new), "predict(model, X)")
    accuracy = float(np.mean(pred == y_new))
    expect(accuracy >= MLP_BAR, f"predict's held-out accuracy is {accuracy:.3f}, below {MLP_BAR}: "
           "predict the class with the largest logit of the trained model it is given.")


@points(0.5, question="q3")
def test_predict_in_eval_mode(nb, rng, view, trained_mlp):
    """predict is repeatable and does not depend on the rest of the batch (eval mode)"""
    model = _trained(trained_mlp)
    X_new, _ = view.rows(40, fresh_seed(rng))
    hint = ("predict gives different answers for the same rows: call model.eval() before "
            "predicting (Dropout and BatchNorm behave differently while training).")
    first = as_labels(nb.call("predict", model, X_new), 40, "predict(model, X)")
    second = nb.call("predict", model, X_new)
    expect(isinstance(second, np.ndarray) and bool(np.array_equal(first, second)), hint)
    for i in range(3):
        try:
            alone = nb.call("predict", model, X_new[i:i + 1])
        except LearnerFailure:
            expect(False, "predict fails for a single row: BatchNorm is still in training mode; "
                   "call model.eval() before predicting.")
        same = (isinstance(alone, np.ndarray) and alone.shape == (1,)
                and int(alone[0]) == int(first[i]))
        expect(same, hint)


# A copy of the trained model whose layers report, the first time one of them runs, whether
# gradient tracking is on: the report goes over the kernel's stdin channel to the grader.
GRAD_PROBE = """
import copy, json
import torch
probe = copy.deepcopy(model)
state = {'sent': False}


def report(module, args, out):
    if not state['sent']:
        state['sent'] = True
        # the input() of the moment of the call (the probe is made before call_with_stdin
        # opens the channel; in-notebook checks route input() over a pipe)
        __import__('builtins').input(json.dumps({'grad': bool(torch.is_grad_enabled()),
                          'requires_grad': bool(getattr(out, 'requires_grad', False))}))


for m in probe.modules():
    m.register_forward_hook(report)
result = probe
"""


@points(0.5, question="q3")
def test_predict_without_gradients(nb, rng, view, trained_mlp):
    """predict runs the network with gradient tracking off (torch.no_grad)"""
    model = _trained(trained_mlp)
    X_new, _ = view.rows(20, fresh_seed(rng))
    expect(nb.eval_untrusted("isinstance(model, __import__('torch').nn.Module)", model=model,
                             what="the model train_model(X, y) returns") is True,
           "train_model(X, y) should return the trained torch network (an nn.Module).")
    probe = nb.eval_untrusted(GRAD_PROBE, model=model, keep=True,
                              what="a copy of the model train_model(X, y) returns")
    reports: list[Any] = []

    def record(text: str) -> str:
        try:
            reports.append(json.loads(text))
        except ValueError:
            reports.append(None)
        return ""

    nb.call_with_stdin("predict", probe, X_new, answer=record, max_inputs=2)
    expect(len(reports) >= 1, "predict(model, X) never ran the model: predict with the trained "
           "network it is given.")
    first = reports[0]
    expect(isinstance(first, dict) and first.get("grad") is False
           and first.get("requires_grad") is False,
           "predict runs the network with gradient tracking on: wrap the forward pass in "
           "`with torch.no_grad():` (prediction needs no gradients, and tracking them costs "
           "memory and time).")


@points(0.5, question="q3")
def test_train_model_repeatable(nb, rng, view):
    """train_model gives the same network when run twice on the same rows (seeded)"""
    X, y = view.rows(REPEAT_ROWS, fresh_seed(rng))
    X_probe, _ = view.rows(100, fresh_seed(rng))
    runs = [_model_logits(nb, nb.call("train_model", X, y, keep=True, timeout=60), X_probe, 3,
                          "the model train_model(X, y) returns", TORCH_NET) for _ in range(2)]
    # two calls of the same learner function on the same rows: they must agree
    expect(bool(np.allclose(runs[0], runs[1], atol=1e-5)),
           "train_model gives a different network each time it runs on the same rows: call "
           "torch.manual_seed(0) at the start of train_model (repeatable results).")


@points(0.5, question="q3")
def test_train_model_shuffles(nb, rng, view):
    """train_model learns from rows sorted by class (a shuffled DataLoader)"""
    X, y = view.rows(SORTED_ROWS, fresh_seed(rng))
    order = np.argsort(y, kind="stable")
    X_new, y_new = view.rows(1000, fresh_seed(rng))
    model = nb.call("train_model", X[order], y[order], keep=True, timeout=60)
    logits = _model_logits(nb, model, X_new, 3, "the model train_model(X, y) returns", TORCH_NET)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == y_new))
    expect(accuracy >= SORTED_BAR, f"trained on rows sorted by class, the network reaches only "
           f"{accuracy:.3f} held-out accuracy (below {SORTED_BAR}): shuffle the rows every epoch "
           "(DataLoader(..., shuffle=True)), or each epoch ends on batches of one class.")


@points(0.5, question="q3")
def test_val_accuracy_is_on_validation_rows(nb):
    """`val_accuracy` is the trained mlp_model's accuracy on the validation rows"""
    X_val, y_val = make_data(1000, seed=1)  # the grader's own copy of the validation rows
    expect(nb.has("mlp_model"), "`mlp_model` is not defined: train it with train_model(X_train, "
           "y_train) in the last cell of Q3.")
    facts = trained_facts(nb, Expr("ns['mlp_model']"), X_val, 3, "`mlp_model`", TORCH_NET,
                          extra="val_accuracy")
    reported = facts.get("extra")
    expect(isinstance(reported, float) and 0.0 <= reported <= 1.0,
           "`val_accuracy` should be a float between 0 and 1.")
    accuracy = float(np.mean(np.argmax(facts["logits"], axis=1) == y_val))
    expect(accuracy >= MLP_BAR, f"`mlp_model` reaches only {accuracy:.3f} on the validation rows: "
           "train it with train_model(X_train, y_train).")
    # the reported number and the model's predictions are one answer of the kernel's
    expect(abs(reported - accuracy) < 1e-9,
           "`val_accuracy` is not mlp_model's accuracy on X_val, y_val (its predictions in "
           "evaluation mode): measure it on the validation rows, not on the rows the model was "
           "trained on.")


# -- Q4 --------------------------------------------------------------------------------------
@points(1, question="q4")
def test_build_cnn(nb, rng):
    """build_cnn is a convolutional network (its Conv2d runs) mapping (batch, 1, 8, 8) to 10 logits"""
    x = rng.uniform(0, 1, size=(6, 1, 8, 8)).astype(np.float32)
    facts = net_facts(nb, "build_cnn", [], x, None)
    first, _ = outputs(facts, "eval", (1, 8, 8), (6, 10))
    outputs(facts, "alone", (1, 8, 8), (1, 10))  # a batch of one too (a wrong flatten fails here)
    expect("Conv2d" in (facts.get("ran") or []),
           "build_cnn()'s network does not run an nn.Conv2d layer from input to logits: use at "
           "least one convolution in forward.")
    expect(not _is_softmax(first) and not _is_log_softmax(first),
           "build_cnn() ends with a softmax: return raw logits, CrossEntropyLoss applies the "
           "softmax itself.")


# Pass mark, calibrated grader-side across seeds (CALIBRATION.md): on jittered digits with
# renamed classes the reference CNN reaches 0.924-0.967 and the alternatives' networks
# 0.869-0.956, while one epoch of training, or a learning rate 100 times too small, stays at
# 0.473-0.676.
CNN_BAR = 0.80
CNN_REPEAT_IMAGES = 300


@points(1.5, question="q4")
def test_cnn_heldout_accuracy(nb, rng):
    """train_cnn returns a trained CNN reaching accuracy >= 0.80 on jittered digits it never saw,
    and predict_digits prepares images as in training"""
    img_train, lab_train, img_test, lab_test = digits_task(rng)
    model = nb.call("train_cnn", img_train, lab_train, keep=True, timeout=60)
    # the network run here on images prepared exactly as the starter says, and predict_digits
    # on the raw images, in one answer
    prepared = (img_test / 16.0).astype(np.float32)[:, None, :, :]
    facts = trained_facts(nb, model, prepared, 10, "the model train_cnn(images, labels) returns", {"Conv2d"},
                          then="predict_digits", raw=img_test)
    accuracy = float(np.mean(np.argmax(facts["logits"], axis=1) == lab_test))
    pred = as_labels(facts.get("then"), len(lab_test), "predict_digits(model, images)")
    agree = float(np.mean(np.argmax(facts["logits"], axis=1) == pred))
    expect(agree >= 0.99, f"predict_digits disagrees with its own model on {1 - agree:.1%} of the "
           "images prepared as the starter says: prepare images exactly the same way in training "
           "and prediction (pixels divided by 16, a channel dimension) and call model.eval() "
           "before predicting.")
    expect(accuracy >= CNN_BAR, f"held-out accuracy is {accuracy:.3f}, below {CNN_BAR}: train on "
           "the labels train_cnn is given, a little longer, with pixels divided by 16.")
    accuracy = float(np.mean(pred == lab_test))
    expect(accuracy >= CNN_BAR, f"predict_digits' held-out accuracy is {accuracy:.3f}, below "
           f"{CNN_BAR}: return the labels train_cnn was trained with.")


@points(0.5, question="q4")
def test_train_cnn_repeatable(nb, rng):
    """train_cnn gives the same network when run twice on the same images (seeded)"""
    img_train, lab_train, img_test, _ = digits_task(rng)
    images, labels = img_train[:CNN_REPEAT_IMAGES], lab_train[:CNN_REPEAT_IMAGES]
    prepared = (img_test[:60] / 16.0).astype(np.float32)[:, None, :, :]
    runs = [_model_logits(nb, nb.call("train_cnn", images, labels, keep=True, timeout=60),
                          prepared, 10, "the model train_cnn(images, labels) returns", {"Conv2d"})
            for _ in range(2)]
    # two calls of the same learner function on the same images: they must agree
    expect(bool(np.allclose(runs[0], runs[1], atol=1e-5)),
           "train_cnn gives a different network each time it runs on the same images: call "
           "torch.manual_seed(0) at the start of train_cnn (repeatable results).")


# -- Q5 --------------------------------------------------------------------------------------
def _indices(got: Any, k: int, n: int, what: str, kinds: tuple[type, ...] = (list, tuple, np.ndarray),
             ) -> list[int]:
    ok = (isinstance(got, kinds) and len(got) == k
          and all(isinstance(g, (int, np.integer)) and not isinstance(g, (bool, np.bool_))
                  for g in got))
    expect(ok, f"{what} should return a list of {k} row indices (ints)"
           + (", not a NumPy array or a tuple." if kinds == (list,) else "."))
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
                       f"cosine_top_k(query, matrix, k={k})", kinds=(list,))
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


def random_fact(rng: np.random.Generator) -> tuple[str, str, list[str]]:
    """A document no learner could have seen, a question only it answers, and two documents
    that answer it less well (one names the same robot, one only shares common words): the
    best document, then the first of these, is the ranking every TF-IDF setting agrees on."""
    name = "-".join(rng.choice(WORDS, size=2, replace=False))
    code = "".join(rng.choice(list("ABCDEFGHJKLMNPQRSTUVWXYZ23456789"), size=6))
    return (f"The warehouse robot {name} unlocks with maintenance code {code}.",
            f"What is the maintenance code of the warehouse robot {name}?",
            [f"The warehouse robot {name} was moved to the loading hall last week.",
             "Every warehouse robot gets a maintenance check once a month."])


def shuffled_corpus(rng: np.random.Generator, *extra: str) -> tuple[list[str], list[int]]:
    """The corpus plus ``extra``, shuffled; returns the documents and old->new positions."""
    docs = [*CORPUS, *extra]
    order = rng.permutation(len(docs))
    where = [int(np.where(order == i)[0][0]) for i in range(len(docs))]
    return [docs[i] for i in order], where


# TfidfVectorizer's settings a learner may reasonably choose (the starter names none): retrieve
# is judged on the places of the ranking that every one of them agrees on.
TFIDF_SETTINGS: list[dict[str, Any]] = [{}, {"stop_words": "english"}, {"sublinear_tf": True},
                                        {"stop_words": "english", "sublinear_tf": True}]
CLEAR = 1e-3  # a place of the ranking counts when its score is this far above the next one


def tfidf_scores(question: str, docs: list[str], fit_on: list[str], **settings: Any) -> np.ndarray:
    """The grader's own TF-IDF (fit on ``fit_on``) + cosine similarity of each document."""
    vectorizer = TfidfVectorizer(**settings).fit(fit_on)
    doc_vectors = vectorizer.transform(docs).toarray()
    q = vectorizer.transform([question]).toarray()[0]
    norms = np.linalg.norm(doc_vectors, axis=1) * np.linalg.norm(q)
    return doc_vectors @ q / np.where(norms == 0, 1.0, norms)


def settled_ranking(question: str, docs: list[str]) -> list[int]:
    """The first places of the ranking (TF-IDF fit on the documents, best first) on which every
    setting of TFIDF_SETTINGS agrees, each clear of the next place (no tie)."""
    orders = []
    for settings in TFIDF_SETTINGS:
        scores = tfidf_scores(question, docs, docs, **settings)
        order = [int(i) for i in np.argsort(-scores, kind="stable")]
        clear = 0
        while clear < len(docs) - 1 and scores[order[clear]] - scores[order[clear + 1]] >= CLEAR:
            clear += 1
        orders.append(order[:clear])
    settled: list[int] = []
    for place in zip(*orders, strict=False):
        if len(set(place)) != 1:
            break
        settled.append(place[0])
    return settled


# Documents where fitting the vectorizer on the documents *and the question* changes which one
# ranks first (found by a search; the grader checks it on every run below): a retrieve that
# fits on the question as well answers another document.
FIT_DOCS = ["saddle meadow", "willow thunder saddle violet falcon", "violet orchard",
            "violet violet"]
FIT_QUESTION = "copper violet willow"


@points(1, question="q5")
def test_retrieve_finds_the_document(nb, rng):
    """retrieve returns k documents, best first (TF-IDF fit on the documents), for k = 1 to n"""
    extra, extra_question, decoys = random_fact(rng)
    docs, _ = shuffled_corpus(rng, extra, *decoys)
    cases = [(extra_question, docs, 3), (extra_question, docs, 1)]
    for old in rng.choice(sorted(QUESTIONS), size=2, replace=False):
        cases.append((QUESTIONS[int(old)], docs, len(docs)))
    fit_docs = [FIT_DOCS[i] for i in rng.permutation(len(FIT_DOCS))]
    cases.append((FIT_QUESTION, fit_docs, 2))
    for question, documents, k in cases:
        settled = settled_ranking(question, documents)
        assert settled, "the grader's case has no clear best document"
        got = _indices(nb.call("retrieve", question, documents, k), k, len(documents),
                       f"retrieve(question, documents, k={k})")
        if question == FIT_QUESTION:
            refit = tfidf_scores(question, documents, [*documents, question])
            assert int(np.argmax(refit)) != settled[0]  # the case separates the two fits
            expect(got[0] == settled[0], "retrieve does not put the most similar document first "
                   "on a small library: fit TfidfVectorizer on the documents only (not on the "
                   "question too), then transform the question with it.")
        place = min(k, len(settled))
        expect(got[:place] == settled[:place], "retrieve does not return the most similar "
               "documents best first: fit TfidfVectorizer on the documents, transform the "
               "question with the same vectorizer, and rank by cosine similarity, best first.")


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
    extra, question, _ = random_fact(rng)
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
    """The run's first call to the client (judged by each test), or a learner-facing failure."""
    if isinstance(rag_run, LearnerFailure):
        raise rag_run
    answer, calls, extra, question, reply, docs = rag_run
    expect(len(calls) >= 1, "answer_question never called client.generate(prompt, "
           "temperature=0): the answer must come from the model.")
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
    included = sum(doc in prompt for doc in docs)
    expect(included == 2, f"the prompt contains {included} of the documents: send exactly the "
           "2 retrieved ones as context.")
    expect(question in prompt, "the prompt does not contain the question itself.")


@points(0.5, question="q6")
def test_rag_calls_client_once(rag_run):
    """client.generate is called exactly once"""
    _rag(rag_run)
    calls = rag_run[1]
    expect(len(calls) == 1, "answer_question should call client.generate(prompt, temperature=0) "
           f"exactly once (it was called {len(calls)} times): one question, one request.")


# "Answer only from the context", said in any of the ways people say it: an exclusive word
# next to the source ("using only the context", "based solely on the documents", "the passages
# and nothing else", "rely on the context alone", "restrict your answer to the text"), a ban on
# other knowledge ("do not use outside knowledge", "without relying on prior knowledge", "don't
# make anything up"), or the fallback that only makes sense for a grounded answer ("if the
# context does not contain the answer, say you don't know"). Judged on the learner's own words
# (the documents and the question are taken out of the prompt first).
SOURCE = (r"(?:context|contexts|documents?|docs|passages?|sources?|information|texts?|excerpts?|"
          r"provided|given|above|below|retrieved|snippets?|facts|references?|materials?|"
          r"sections?|paragraphs?|evidence|data|notes|content|knowledge base)")
NEAR = r"[^.!?\n]{0,60}?"
EXCLUSIVE = r"(?:only|solely|exclusively|strictly|purely|entirely|just|alone)"
LIMIT = (r"(?:restrict|limit|confine|base|ground|stick|keep|stay|rely|draw|derive|depend)"
         r"\w*")
OTHER = (r"(?:outside|external|prior|other|own|general|background|additional|extra|"
         r"pre-?trained|world|your|any|previous|personal|memorized|memorised|training)")
KNOWLEDGE = r"(?:knowledge|information|facts|sources|memory|data|training|assumptions)"
NOT = r"(?:do not|don't|dont|never|without|avoid|no|not|must not|cannot|can't|may not)"
MISSING = (r"(?:not|isn't|doesn't|does not|is not|cannot|can't|no|insufficient|lacks?|"
           r"missing|unavailable|absent|unknown)")
UNKNOWN = (r"(?:don't know|do not know|dont know|cannot answer|can't answer|unable to answer|"
           r"not know|unknown|no answer|not (?:enough|sufficient)|insufficient|not found|"
           r"not (?:in|available)|cannot be (?:answered|determined)|can't be (?:answered|determined)"
           r"|i'm not sure|not sure)")
GROUNDED = [
    re.compile(rf"\b{EXCLUSIVE}\b{NEAR}\b{SOURCE}\b"),      # "using only the context"
    re.compile(rf"\b{SOURCE}\b{NEAR}\b{EXCLUSIVE}\b"),      # "the documents, and only them"
    re.compile(rf"\b{SOURCE}\b{NEAR}\bnothing (?:else|more)\b"),  # "the context and nothing else"
    re.compile(rf"\bnothing but\b{NEAR}\b{SOURCE}\b"),
    re.compile(rf"\b{LIMIT}\b{NEAR}\b(?:to|on|in|within|from)\b{NEAR}\b{SOURCE}\b"
               rf"{NEAR}\b(?:only|alone|exclusively|solely|nothing else)\b"),
    re.compile(rf"\b(?:restrict|limit|confine)\w*\b{NEAR}\bto\b{NEAR}\b{SOURCE}\b"),
    re.compile(rf"\b(?:stay|stick|keep)\w*\b[^.!?\n]{{0,30}}?\b(?:within|to)\b{NEAR}"
               rf"\b{SOURCE}\b"),
    re.compile(rf"\b{NOT}\b{NEAR}\b{OTHER}\b[^.!?\n]{{0,30}}?\b{KNOWLEDGE}\b"),
    re.compile(rf"\b{NOT}\b{NEAR}\b(?:not|isn't|aren't|wasn't)\b[^.!?\n]{{0,30}}?"
               rf"\b(?:in|from|within|part of|contained in|found in|given in|stated in)\b{NEAR}"
               rf"\b{SOURCE}\b"),
    re.compile(rf"\b{NOT}\b{NEAR}\b(?:outside|beyond)\b{NEAR}\b{SOURCE}\b"),
    re.compile(rf"\b{NOT}\b{NEAR}\b(?:make (?:anything|things|something|up)|made up|"
               rf"invent|fabricate|guess|speculate|hallucinate)\w*"),
    re.compile(rf"\bif\b{NEAR}\b{SOURCE}\b{NEAR}\b{MISSING}\b[^.!?]{{0,120}}?{UNKNOWN}"),
    re.compile(rf"\bif\b{NEAR}\b{MISSING}\b{NEAR}\b{SOURCE}\b[^.!?]{{0,120}}?{UNKNOWN}"),
]


def grounds_answer(text: str) -> bool:
    """Whether ``text`` (the learner's own words of a prompt) tells the model to answer only
    from the context, in any usual phrasing."""
    text = re.sub(r"\s+", " ", text.lower().replace("\u2019", "'"))
    return any(p.search(text) for p in GROUNDED)


@points(0.5, question="q6")
def test_rag_prompt_grounds_answer(rag_run):
    """the prompt tells the model to answer only from the context"""
    _, call, _, question, _, docs = _rag(rag_run)
    rest = call["prompt"]
    for text in [*docs, question]:  # judge the learner's own words, not the documents'
        rest = rest.replace(text, "\n")
    expect(grounds_answer(rest),
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


@points(0.5, question="q6")
def test_rag_answer_comes_from_client(rag_run):
    """the answer is the client's reply, stripped"""
    answer, _, _, _, reply, _ = _rag(rag_run)
    expect(isinstance(answer, str) and answer == reply.strip(),
           "answer_question should return the model's reply (stripped of surrounding whitespace), "
           "not an answer written or post-processed by your code.")
