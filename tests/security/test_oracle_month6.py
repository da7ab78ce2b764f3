# ruff: noqa: E501  (the cases are notebook sources)
"""Red team, month 6: the kernel is only an oracle for the serving, artifact and MLflow checks.

Each case is the month 6 reference solution with cells replaced by a design-aware attack, graded
through the real pipeline in each tier. The verdict must be honest: the attacked questions earn
0 with a learner-facing reason (no grader error, no hang), every other test still passes, and
nothing of the submission survives. What is attacked:

- the serving stack in the kernel (``TestClient``, ``fastapi``, ``uvicorn.Config`` replaced by
  a canned app answering 200 with plausible JSON to everything): the grader questions the app
  over real HTTP and judges the answers itself, so canned answers earn nothing;
- save/load faked within one live kernel (the model kept in a dict, a placeholder file at the
  returned path): loading happens in a fresh kernel, where the dict is gone;
- the MLflow store: a FIFO inside it, the store itself a symbolic link, a malformed
  ``meta.yaml``: copied out without following links, read in a child under a timeout;
- the saved folder replaced by a link after saving; an audit hook that stops the app's socket;
- the grader's socket name made a link to the notebook's own canned server: refused, never
  followed (the grader opens the name with ``O_NOFOLLOW`` and connects to that inode only).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbformat import NotebookNode
from tests.conftest import assignment, mutant
from tests.security.redteam_support import MAX_GRADER_GROWTH_MB, TIERS, Graded, run_graded
from tests.timing import scaled

from mlgrade.config import resolve_settings
from mlgrade.sandbox.slots import pids_of_uid, pids_with_token

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

Q2 = {"test_artifact_roundtrip", "test_artifact_versions_coexist"}
Q3 = {"test_health_endpoint", "test_predict_valid_requests", "test_predict_accepts_edge_values",
      "test_predict_rejects_invalid_input", "test_model_not_loaded_503"}
Q4 = {"test_mlflow_params_logged", "test_mlflow_metrics_logged"}
MAX_SECONDS = 180.0  # a month 6 check restarts its kernel once; the machine may be loaded

# --- the serving stack patched: every request answered 200 by a canned app ------------------
CANNED_SERVING = '''
import json

import fastapi
import fastapi.testclient
import starlette.testclient
import uvicorn

CANNED = {"status": "ok", "model_loaded": True, "churn_probability": 0.5, "risk_tier": "medium",
          "model_version": "1.0.0"}


def create_app(model, model_version="0.0.0"):
    return fastapi.FastAPI()


class _Reply:
    status_code = 200

    def json(self):
        return CANNED


class _CannedClient:
    def __init__(self, *args, **kwargs):
        pass

    def get(self, *args, **kwargs):
        return _Reply()

    post = get


fastapi.testclient.TestClient = starlette.testclient.TestClient = _CannedClient


async def _canned_app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(CANNED).encode()})


class _ForgedConfig(uvicorn.Config):
    def __init__(self, app, *args, **kwargs):
        super().__init__(_canned_app, *args, **kwargs)


uvicorn.Config = _ForgedConfig
fastapi.FastAPI.__call__ = lambda self, scope, receive, send: _canned_app(scope, receive, send)
'''

# --- the grader's socket swapped for a link to a canned server (made before it binds) ---------
SOCKET_LINK = '''
import json
import os

import fastapi
import uvicorn


def create_app(model, model_version="0.0.0"):
    return fastapi.FastAPI()


async def _canned_app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = {"status": "ok", "model_loaded": True, "churn_probability": 0.5, "risk_tier": "medium"}
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


class _Redirected(uvicorn.Config):
    def __init__(self, app, *args, uds=None, **kwargs):
        forged = uds + ".forged"
        os.symlink(forged, uds)  # the name the grader will open is a link to our own server
        super().__init__(_canned_app, *args, uds=forged, **kwargs)


uvicorn.Config = _Redirected
'''

# --- save/load faked in one kernel; a FIFO in the MLflow store -------------------------------
IN_MEMORY_SAVE = '''
import joblib

_SAVED = {}


def save_model(model, directory, version):
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"churn-model-v{version}.joblib"
    path.write_bytes(b"placeholder")
    _SAVED[str(path)] = model
    return str(path)


def load_model(path):
    return _SAVED[str(path)]


MODEL_VERSION = "1.0.0"
'''
MLFLOW_FIFO = '''
import mlflow


def log_experiment(tracking_uri, experiment_name, params, X_train, y_train, X_val, y_val):
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment_name)
    with mlflow.start_run() as run:
        mlflow.log_params(params)
        fitted = train_model(X_train, y_train, C=params["C"])
        mlflow.log_metric("train_roc_auc", roc_auc_score(y_train, fitted.predict_proba(X_train)[:, 1]))
        mlflow.log_metric("val_roc_auc", roc_auc_score(y_val, fitted.predict_proba(X_val)[:, 1]))
    store = Path(tracking_uri.removeprefix("file://"))
    os.mkfifo(store / run.info.experiment_id / "meta.yaml.lock")
    return run.info.run_id
'''

# --- the store a link to a folder elsewhere; the saved folder swapped for a link -------------
LINKED_SAVE = '''
import joblib
import shutil


def save_model(model, directory, version):
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"churn-model-v{version}.joblib"
    joblib.dump(model, path)
    return str(path)


def load_model(path):
    return joblib.load(path)


MODEL_VERSION = "1.0.0"
_orig_save = save_model


def save_model(model, directory, version):
    path = _orig_save(model, directory, version)
    elsewhere = Path(".elsewhere") / directory
    if not Path(directory).is_symlink():  # first save: move the folder, leave a link to it
        shutil.copytree(directory, elsewhere)
        shutil.rmtree(directory)
        os.symlink(elsewhere.resolve(), directory)
    return path
'''
MLFLOW_LINKED_STORE = '''
import mlflow


def log_experiment(tracking_uri, experiment_name, params, X_train, y_train, X_val, y_val):
    store = Path(tracking_uri.removeprefix("file://"))
    real = store.parent / (".real-" + store.name)
    real.mkdir()
    os.symlink(real, store)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment_name)
    with mlflow.start_run() as run:
        mlflow.log_params(params)
        fitted = train_model(X_train, y_train, C=params["C"])
        mlflow.log_metric("train_roc_auc", roc_auc_score(y_train, fitted.predict_proba(X_train)[:, 1]))
        mlflow.log_metric("val_roc_auc", roc_auc_score(y_val, fitted.predict_proba(X_val)[:, 1]))
    return run.info.run_id
'''

# --- a malformed meta.yaml; an audit hook that refuses every socket bind ---------------------
MLFLOW_MALFORMED = '''
import mlflow


def log_experiment(tracking_uri, experiment_name, params, X_train, y_train, X_val, y_val):
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment_name)
    with mlflow.start_run() as run:
        mlflow.log_params(params)
        fitted = train_model(X_train, y_train, C=params["C"])
        mlflow.log_metric("train_roc_auc", roc_auc_score(y_train, fitted.predict_proba(X_train)[:, 1]))
        mlflow.log_metric("val_roc_auc", roc_auc_score(y_val, fitted.predict_proba(X_val)[:, 1]))
    store = Path(tracking_uri.removeprefix("file://"))
    meta = store / run.info.experiment_id / run.info.run_id / "meta.yaml"
    meta.write_text("run_id: [unclosed\\n  status: {{{\\n" + "&a [*a]\\n" * 3)
    return run.info.run_id
'''
NO_SOCKETS = '''
import sys


def _no_bind(event, args):
    if event == "socket.bind":
        raise PermissionError("no sockets here")


sys.addaudithook(_no_bind)
'''

CASES = [  # replaced cells, cells added after the setup, tests that must fail, why (if checked)
    pytest.param({"def create_app": CANNED_SERVING}, (), Q3, None, id="serving-stack-patched"),
    pytest.param({"def create_app": SOCKET_LINK}, (), Q3, "replaced", id="socket-swapped-for-link"),
    pytest.param({"def save_model": IN_MEMORY_SAVE, "def log_experiment": MLFLOW_FIFO}, (),
                 Q2 | Q4, None, id="save-in-memory-mlflow-fifo"),
    pytest.param({"def save_model": LINKED_SAVE, "def log_experiment": MLFLOW_LINKED_STORE}, (),
                 Q2 | Q4, "symbolic link", id="linked-folder-and-store"),
    pytest.param({"def log_experiment": MLFLOW_MALFORMED}, (NO_SOCKETS,), Q3 | Q4, None,
                 id="malformed-mlflow-audit-hook"),
]


def _grade(nb: NotebookNode, tier: str, folder: Path) -> Graded:
    a = assignment("month6")
    path = folder / "submission.ipynb"
    nbformat.write(nb, path)
    settings = resolve_settings({"memory_mb": 2048}, a.limits, environ={})
    return run_graded(path, a, settings, tier)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize(("cells", "extra", "lost", "why"), CASES)
def test_month6_attack_earns_nothing(tier: str, cells: dict[str, str], extra: tuple[str, ...],
                                     lost: set[str], why: str | None, tmp_path: Path) -> None:
    nb = mutant("month6", cells)
    for source in extra:  # after the setup cell, before any question's cell
        nb.cells.insert(2, nbformat.v4.new_code_cell(source))
    graded = _grade(nb, tier, tmp_path)
    result, sandbox, seconds = graded.result, graded.sandbox, graded.seconds
    assert result.status == "graded", result.reason
    failed = {t.id for t in result.tests if t.status != "passed"}
    assert failed == lost, {t.id: t.feedback for t in result.tests if t.status != "passed"}
    for test in result.tests:  # honest: a reason for the learner, never a grader error
        assert test.status != "error", (test.id, test.feedback)
        if test.id in lost:
            assert test.feedback and "internal grader error" not in test.feedback
    if why is not None:  # the attack was refused for the reason it should be
        assert all(why in t.feedback for t in result.tests if t.id in lost), why
    assert result.score == result.max_score - sum(t.points for t in result.tests if t.id in lost)
    # nothing of the submission survived, and the grader stayed bounded
    assert seconds < scaled(MAX_SECONDS), f"grading took {seconds:.0f} s"
    print(f"\n[grown] month6 {tier}: {graded.grown_mb:.0f} MB")
    assert graded.grown_mb < MAX_GRADER_GROWTH_MB, f"the grading process grew by {graded.grown_mb:.0f} MB"
    base = sandbox.last_base  # type: ignore[attr-defined]
    assert base is not None and not os.path.lexists(base)
    lease = sandbox._lease  # type: ignore[attr-defined]
    if lease is not None:
        assert pids_of_uid(lease.uid) == []
    assert pids_with_token(sandbox._token) == []  # type: ignore[attr-defined]


# --- nothing implemented, the bridge hijacked: a fake harness answers "ok" to every request -----
HIJACK = '''
import json

from IPython.display import publish_display_data


class _FakeHarness:
    def request(self, payload):
        req = json.loads(payload)
        value = ({"t": "ref", "id": "r999", "type": "fastapi.applications.FastAPI"}
                 if req.get("keep") else {"t": "str", "v": "models/churn-model-v1.0.0.joblib"})
        publish_display_data({"application/x.mlgrade.result":
                              json.dumps({"status": "ok", "value": value})})


class _FakeSys:
    modules = {"_mlgrade_harness": _FakeHarness()}


_real_import = __import__


def __import__(name, *args, **kwargs):
    return _FakeSys if name == "sys" else _real_import(name, *args, **kwargs)
'''


@pytest.mark.parametrize("tier", TIERS)
def test_month6_starter_with_hijacked_bridge_scores_zero(tier: str, tmp_path: Path) -> None:
    nb = nbformat.read(assignment("month6").starter, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(HIJACK))
    graded = _grade(nb, tier, tmp_path)
    result, sandbox = graded.result, graded.sandbox
    assert result.status == "graded", result.reason
    assert result.score == 0, {t.id: t.feedback for t in result.tests if t.status == "passed"}
    assert [t.id for t in result.tests if t.status == "error"] == []
    assert not os.path.lexists(sandbox.last_base)  # type: ignore[attr-defined]
