"""Hidden graders for the capstone: a learner's portfolio repository (a served churn model).

The repository was copied into ``<job>/repo`` before the sandboxed kernel started; no learner
code has run when these tests begin. The kernel is only an oracle and a launcher: every process
of the learner's (their tests, their training script, their app under uvicorn) runs inside the
sandbox, and every verdict is computed here from plain data:

- q1: the learner's tests run under pytest in a child of the kernel, with the grader's own
  invocation (``python -I``, ``--noconftest``, ``-c /dev/null``, plugin autoload off), so a
  ``conftest.py``, ``sitecustomize.py`` or ``pytest.ini`` of theirs is never loaded; a test
  module that defines pytest hooks or plugins is refused; the outcome is read from a JUnit file
  at a name the grader drew;
- q2: the training script trains on the repository's data with the grader's version, ``C``,
  model folder, tracking URI and experiment; the artifact's name and the MLflow run (read from a
  copy by MlflowClient in a child process) are checked;
- q3: the app is built by the learner's ``create_app`` on the artifact their script wrote, served
  by uvicorn inside the sandbox and questioned over real HTTP (``mlgrade.grading.http``) with
  the grader's fresh customers, whose labels stay here;
- q4: README sections, the held-out ROC-AUC it claims against the grader's measurement of the
  same model on 4,000 fresh rows, and the bias evaluation's numbers;
- q5: the Dockerfile parsed with ``dockerfile-parse`` (the image is never built), the
  ``.dockerignore`` patterns evaluated on data and secret paths, and the workflow parsed as YAML.
"""

import ast
import importlib.util
import io
import math
import os
import re
import secrets
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from mlgrade.grading import LearnerFailure, expect, points
from mlgrade.grading.files import copy_job_tree, read_job_file, run_isolated
from mlgrade.grading.http import serve_app

REPO = "repo"  # where mlgrade copied the repository, inside the job folder
PACKAGE = "churn_api"
FEATURES = ["tenure_months", "monthly_charges", "support_tickets", "contract_type"]
GROUPS = ["18-29", "30-49", "50+"]
MIN_TESTS = 3  # the learner's suite must hold at least this many passing tests
PREDICT_ROWS = 400  # fresh customers sent to /predict one by one
MIN_AUC = 0.80  # over HTTP on those rows; the reference scores 0.87-0.93 (20 seeds)
README_TOLERANCE = 0.05  # claimed vs measured held-out ROC-AUC (reference: 0.880 vs 0.887-0.909)
METRIC_TOLERANCE = 0.06  # the logged val_roc_auc vs the grader's measurement
SECTIONS = ["Problem", "Approach", "Evaluation", "Bias evaluation", "Data provenance",
            "Limitations"]
TEST_LIMIT_S = 240.0
TRAIN_LIMIT_S = 180.0


def _sibling(name):
    """A helper module beside this file (the graders are not on sys.path), loaded under a
    private name; run_isolated's child finds it by its file."""
    module_name = f"_mlgrade_capstone_{name}"
    spec = importlib.util.spec_from_file_location(module_name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


read_mlflow_runs = _sibling("mlflow_reader").read_mlflow_runs


def make_customers(rng, n):
    """The churn generator behind the repository's data/customers.csv (month 6's); the graders
    draw fresh rows with their own seeds."""
    group = rng.choice(GROUPS, size=n, p=[0.3, 0.45, 0.25])
    tenure = rng.integers(0, 121, size=n)
    charges = np.round(rng.uniform(15, 150, size=n), 2)
    tickets = np.minimum(rng.poisson(1.2 + 0.8 * (group == "50+"), size=n), 50)
    contract = rng.choice([0, 1, 2], size=n, p=[0.5, 0.3, 0.2])
    logit = -1.5 - 0.045 * tenure + 0.03 * charges + 0.8 * tickets - 1.4 * contract
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"age_group": group, "tenure_months": tenure,
                         "monthly_charges": charges, "support_tickets": tickets,
                         "contract_type": contract, "churned": churned})


# -- running the learner's processes inside the sandbox ---------------------------------------
# Grader code sent to the kernel: it starts one child process there and reports its exit code
# and the tail of its output (learner-controlled: used as feedback text only, never a verdict).
RUN = """
import os as _os, subprocess as _sp, sys as _sys
_env = dict(_os.environ)
_env.update(extra_env)
with open(log, "wb") as _log:
    try:
        _code = _sp.run([_sys.executable, *argv], cwd=cwd, env=_env, stdin=_sp.DEVNULL,
                        stdout=_log, stderr=_sp.STDOUT, timeout=limit).returncode
    except _sp.TimeoutExpired:
        _code = None
with open(log, "rb") as _log:
    _log.seek(max(0, _os.path.getsize(log) - 1500))
    _tail = _log.read().decode("utf-8", "replace")
result = {"code": _code, "tail": _tail}
"""


def _run(nb, argv, *, cwd, limit, what, extra_env=None):
    log = str(nb.job_dir / f".mlgrade-log-{secrets.token_hex(6)}.txt")
    done = nb.eval_untrusted(RUN, what=what, timeout=limit + 30, argv=list(argv), cwd=str(cwd),
                             extra_env=dict(extra_env or {}), limit=limit, log=log)
    expect(isinstance(done, dict) and "code" in done, f"{what} could not be started.")
    return done


def _last_line(tail):
    lines = [line.strip() for line in str(tail).splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


# -- q1: the learner's own tests, with the grader's pytest invocation -------------------------
MACHINERY = ("_pytest", "pluggy")


def _reaches_into_pytest(source):
    """Why a test module may not run as written (hooks, plugins, pytest's internals), or None."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None  # pytest reports it as a collection error
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("pytest_"):
            return f"it defines the pytest hook {node.name}"
        if isinstance(node, ast.Name) and node.id == "pytest_plugins":
            return "it sets pytest_plugins"
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(n.split(".")[0] in MACHINERY for n in names):
            return "it imports pytest's internals"
    return None


def _test_modules(job_dir):
    """Relative paths of the repository's test modules (regular files, links not followed)."""
    root = Path(job_dir) / REPO
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")):
                found.append((Path(folder) / name).relative_to(job_dir).as_posix())
    return sorted(found)


def _own_tests(nb, job_dir):
    for relpath in _test_modules(job_dir):
        why = _reaches_into_pytest(read_job_file(job_dir, relpath, 2_000_000))
        if why is not None:
            return f"{relpath.removeprefix(REPO + '/')} is not run: {why}. Write plain tests."
    repo = job_dir / REPO
    junit = job_dir / f".mlgrade-junit-{secrets.token_hex(8)}.xml"
    argv = ["-I", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest",
            "-c", "/dev/null", "--rootdir", str(repo), "--confcutdir", str(repo),
            "-o", f"pythonpath={repo}",
            "-o", "addopts=", "--junitxml", str(junit), "tests"]
    done = _run(nb, argv, cwd=repo, limit=TEST_LIMIT_S, what="your tests (`python -m pytest`)",
                extra_env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    if done["code"] is None:
        return f"your tests did not finish within {TEST_LIMIT_S:.0f} s."
    try:
        root = ET.fromstring(read_job_file(job_dir, junit.name, 5_000_000))
    except LearnerFailure:
        return ("pytest wrote no report: is there a tests/ folder with test_*.py modules? "
                f"(pytest said: {_last_line(done['tail'])})")
    except ET.ParseError:
        return "pytest's report could not be read."
    outcomes, first = [], None
    for case in root.iter("testcase"):
        bad = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        outcomes.append("passed" if bad is None else bad.tag)
        if bad is not None and bad.tag != "skipped" and first is None:
            message = (bad.get("message") or "").strip().splitlines()
            first = f"{case.get('name')} ({message[0][:120] if message else bad.tag})"
    failed = sum(o in ("failure", "error") for o in outcomes)
    passed = outcomes.count("passed")
    if failed:
        return (f"{failed} of your tests failed or errored under pytest, e.g. {first[:200]} "
                "(run `python -m pytest` in the repository; the grader does not load "
                "conftest.py files).")
    if passed < MIN_TESTS:
        return f"only {passed} passing tests were found; write at least {MIN_TESTS} (tests/test_*.py)."
    return None


@pytest.fixture(scope="module", autouse=True)
def own_tests(nb, job_dir):
    """The learner's tests, run first (before any of their code is imported into the kernel):
    None when they pass, else why not."""
    try:
        return _own_tests(nb, job_dir)
    except AssertionError as exc:
        return str(exc)


@points(2, question="q1")
def test_own_tests_pass(own_tests):
    """the repository's own tests pass under the grader's pytest"""
    expect(own_tests is None, str(own_tests))


# -- q2: training script, versioned artifact, MLflow run ---------------------------------------
class _Training:
    def __init__(self, seed, job_dir):
        rng = np.random.default_rng([seed, 19])
        self.version = f"{int(rng.integers(1, 9))}.{int(rng.integers(0, 20))}.{int(rng.integers(0, 20))}"
        self.C = round(float(rng.uniform(0.5, 2.0)), 3)
        self.experiment = f"grader-capstone-{int(rng.integers(1000, 9999))}"
        self.models = f"models-{secrets.token_hex(6)}"
        self.store = f"mlruns-{secrets.token_hex(6)}"
        self.test = make_customers(rng, 4000)
        self.fresh = make_customers(rng, PREDICT_ROWS)
        self.job_dir = job_dir
        self.artifact = None  # the file the script wrote, relative to the job folder
        self.failure = None

    def argv(self):
        repo = self.job_dir / REPO
        return ["-m", f"{PACKAGE}.train", "--data", str(repo / "data" / "customers.csv"),
                "--model-dir", str(self.job_dir / self.models), "--version", self.version,
                "--tracking-uri", (self.job_dir / self.store).as_uri(),
                "--experiment", self.experiment, "--C", str(self.C)]


@pytest.fixture(scope="module")
def training(nb, seed, job_dir, own_tests):
    """One run of the learner's training script with the grader's arguments."""
    plan = _Training(seed, job_dir)
    repo = job_dir / REPO
    try:
        done = _run(nb, plan.argv(), cwd=repo, limit=TRAIN_LIMIT_S,
                    what=f"`python -m {PACKAGE}.train`",
                    extra_env={"PYTHONPATH": str(repo), "MLFLOW_ALLOW_FILE_STORE": "true"})
        expect(done["code"] == 0, f"`python -m {PACKAGE}.train ...` failed (exit "
               f"{done['code']}): {_last_line(done['tail'])}")
        folder = job_dir / plan.models
        written = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        expect(len(written) == 1, f"the training script should write one artifact into "
               f"--model-dir; it wrote {len(written)} files there.")
        plan.artifact = f"{plan.models}/{written[0]}"
    except AssertionError as exc:
        plan.failure = exc
    return plan


def _trained(training):
    if training.failure is not None:
        raise training.failure
    return training


@points(1, question="q2")
def test_training_writes_versioned_artifact(training):
    """the training script writes churn-<version>.joblib into --model-dir"""
    plan = _trained(training)
    expect(plan.artifact.endswith(f"/churn-{plan.version}.joblib"),
           f"the artifact should be named churn-<version>.joblib (the --version given); it was "
           f"{plan.artifact.split('/')[-1]!r}.")


@pytest.fixture(scope="module")
def measured(nb, training):
    """The grader's ROC-AUC of the trained artifact on 4,000 fresh customers (the kernel only
    computes predict_proba on rows sent from here; the labels stay here)."""
    plan = _trained(training)
    code = ("import joblib\n_art = joblib.load(path)\n"
            "_model = _art['model'] if isinstance(_art, dict) else _art\n"
            "result = [float(v) for v in _model.predict_proba(X)[:, 1]]")
    proba = nb.eval_untrusted(code, what="loading the artifact with joblib",
                              path=str(nb.job_dir / plan.artifact), X=plan.test[FEATURES])
    expect(isinstance(proba, list) and len(proba) == len(plan.test)
           and all(isinstance(p, float) and math.isfinite(p) for p in proba),
           "the artifact should be a dict with the fitted model under 'model' (joblib.dump).")
    return float(roc_auc_score(plan.test["churned"], proba))


@pytest.fixture(scope="module")
def mlflow_runs(training):
    plan = _trained(training)
    tmp = Path(tempfile.mkdtemp(prefix="mlgrade-mlflow-"))
    try:
        copy = copy_job_tree(plan.job_dir, plan.store, tmp, max_bytes=20_000_000,
                             max_files=2_000, max_depth=12)
        return run_isolated(read_mlflow_runs, copy.as_uri(), plan.experiment, timeout=90,
                            what="no MLflow experiment named by --experiment could be read "
                            "under --tracking-uri")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@points(1, question="q2")
def test_mlflow_run_logged(training, mlflow_runs, measured):
    """the training run is tracked in MLflow with C, model_version and val_roc_auc"""
    plan = _trained(training)
    runs = [r for r in mlflow_runs if r["status"] == "FINISHED"]
    expect(len(runs) == 1, f"the experiment should hold one finished run; it holds {len(runs)}.")
    params, metrics = runs[0]["params"], runs[0]["metrics"]
    try:
        logged_c = float(params.get("C", "nan"))
    except ValueError:
        logged_c = math.nan
    expect(math.isclose(logged_c, plan.C, rel_tol=1e-6) and params.get("model_version") == plan.version,
           "log the parameters C and model_version (the --C and --version given).")
    val = metrics.get("val_roc_auc")
    expect(val is not None, "log the metric val_roc_auc.")
    expect(abs(val - measured) <= METRIC_TOLERANCE, f"the logged val_roc_auc ({val:.3f}) is "
           f"far from the grader's measurement of the same model ({measured:.3f}).")


# -- q3: the API served by uvicorn in the sandbox ------------------------------------------------
SERVE = """
import importlib, sys
if repo not in sys.path:
    sys.path.insert(0, repo)
app = importlib.import_module(package + ".app").create_app(model_path)
"""


def _customer(row):
    return {"tenure_months": int(row.tenure_months), "monthly_charges": float(row.monthly_charges),
            "support_tickets": int(row.support_tickets), "contract_type": int(row.contract_type)}


@pytest.fixture(scope="module")
def loaded(nb, training):
    plan = _trained(training)
    with serve_app(nb, SERVE, what=f"`create_app(model_path)` of {PACKAGE}/app.py",
                   repo=str(nb.job_dir / REPO), package=PACKAGE,
                   model_path=str(nb.job_dir / plan.artifact)) as api:
        yield plan, api


@pytest.fixture(scope="module")
def empty(nb, training, own_tests):
    missing = str(nb.job_dir / f"no-model-{secrets.token_hex(4)}.joblib")
    with serve_app(nb, SERVE, what=f"`create_app(model_path)` of {PACKAGE}/app.py",
                   repo=str(nb.job_dir / REPO), package=PACKAGE, model_path=missing) as api:
        yield api


@points(1, question="q3")
def test_health_reports_version(loaded):
    """GET /health answers status ok, model_loaded and the artifact's model_version"""
    plan, api = loaded
    reply = api.get("/health")
    expect(reply.status == 200 and isinstance(reply.body, dict),
           f"GET /health answered HTTP {reply.status}: it should answer 200 with JSON.")
    expect(reply.body.get("status") == "ok" and reply.body.get("model_loaded") is True
           and reply.body.get("model_version") == plan.version,
           "GET /health should say status 'ok', model_loaded true and the model_version saved "
           "in the artifact.")


@points(2, question="q3")
def test_predictions_meet_bar(loaded):
    """POST /predict on the grader's fresh customers ranks them well (ROC-AUC bar)"""
    plan, api = loaded
    got = []
    for row in plan.fresh.itertuples():
        reply = api.post("/predict", _customer(row))
        expect(reply.status == 200 and isinstance(reply.body, dict), f"POST /predict answered "
               f"HTTP {reply.status} for a valid customer.")
        p = reply.body.get("churn_probability")
        expect(isinstance(p, float | int) and not isinstance(p, bool) and 0 <= p <= 1,
               "churn_probability should be a number between 0 and 1.")
        expect(reply.body.get("model_version") == plan.version,
               "every /predict answer should carry the model_version of the artifact.")
        got.append(float(p))
    auc = roc_auc_score(plan.fresh["churned"], got)
    expect(bool(auc >= MIN_AUC), f"the served predictions rank new customers poorly (ROC-AUC "
           f"{auc:.3f} < {MIN_AUC}): return the probability of churn (class 1).")


INVALID = [{"tenure_months": -1}, {"tenure_months": 121}, {"monthly_charges": -0.5},
           {"support_tickets": 51}, {"contract_type": 3}, {"tenure_months": 12.5},
           {"monthly_charges": "a lot"}]


@points(1, question="q3")
def test_invalid_input_422(loaded):
    """after a valid request succeeds, invalid bodies are rejected with 422"""
    plan, api = loaded
    good = _customer(next(plan.fresh.itertuples()))
    reply = api.post("/predict", good)
    expect(reply.status == 200, f"POST /predict answered HTTP {reply.status} for a valid customer.")
    bodies = [{**good, **change} for change in INVALID]
    bodies += [{k: v for k, v in good.items() if k != "support_tickets"}, {}]
    for body in bodies:
        reply = api.post("/predict", body)
        expect(reply.status == 422, f"POST /predict with an invalid body answered HTTP "
               f"{reply.status}, not 422: declare the body as a pydantic model with the stated "
               "types and bounds.")


@points(1, question="q3")
def test_no_model_503(empty):
    """without a model file the app starts, /health says so and /predict answers 503"""
    reply = empty.get("/health")
    expect(reply.status == 200 and isinstance(reply.body, dict)
           and reply.body.get("model_loaded") is False,
           "with no model file, GET /health should answer 200 with model_loaded false.")
    body = {"tenure_months": 10, "monthly_charges": 50.0, "support_tickets": 1, "contract_type": 0}
    reply = empty.post("/predict", body)
    expect(reply.status == 503, f"with no model loaded, POST /predict answered HTTP "
           f"{reply.status}: it should answer 503.")


# -- q4: the README ------------------------------------------------------------------------------
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _readme(job_dir):
    try:
        return read_job_file(job_dir, f"{REPO}/README.md", 1_000_000).decode("utf-8", "replace")
    except LearnerFailure as exc:
        raise AssertionError(f"README.md could not be read: {exc}") from None


def _sections(text):
    """Heading text (lower case) -> the section's body, for ATX headings."""
    out, current, body = {}, None, []
    fence = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        match = None if fence else HEADING.match(line)
        if match:
            if current is not None:
                out.setdefault(current, "\n".join(body))
            current, body = match.group(2).strip().lower(), []
        else:
            body.append(line)
    if current is not None:
        out.setdefault(current, "\n".join(body))
    return out


def _content(body):
    """A section's own words: comments and TODO lines do not count."""
    body = re.sub(r"<!--.*?-->", "", body, flags=re.S)
    return "\n".join(line for line in body.splitlines() if "todo" not in line.lower()).strip()


def _section(text, name):
    sections = _sections(text)
    found = next((body for heading, body in sections.items() if heading.startswith(name.lower())), None)
    expect(found is not None, f"README.md has no '## {name}' section.")
    return _content(found)


@points(1, question="q4")
def test_readme_sections(job_dir):
    """README.md has every required section, each with real content"""
    text = _readme(job_dir)
    for name in SECTIONS:
        expect(len(_section(text, name)) >= 40, f"the README's '{name}' section is empty or "
               "still a TODO: write a few sentences.")


CLAIM = re.compile(r"held[- ]out\s+roc[- ]auc\s*[:=]?\s*\**\s*(\d?\.\d+)", re.I)


@points(1, question="q4")
def test_readme_numbers_honest(job_dir, measured):
    """the held-out ROC-AUC the README claims agrees with the grader's measurement"""
    claims = CLAIM.findall(_section(_readme(job_dir), "Evaluation"))
    expect(len(claims) >= 1, "the Evaluation section should state `Held-out ROC-AUC: 0.xxx`.")
    claimed = float(claims[0])
    expect(abs(claimed - measured) <= README_TOLERANCE,
           f"the README claims a held-out ROC-AUC of {claimed:.3f}, but the model your script "
           f"trains scores {measured:.3f} on the grader's fresh customers (tolerance "
           f"{README_TOLERANCE}): report what you measured.")


NUMBER = re.compile(r"(?<![\w.-])(\d*\.\d+|\d+(?:\.\d+)?%)")


@points(1, question="q4")
def test_readme_bias_evaluation(job_dir):
    """the bias evaluation gives numbers for every age group"""
    body = _section(_readme(job_dir), "Bias evaluation")
    for group in GROUPS:
        lines = [line.replace(group, " ") for line in body.splitlines() if group in line]
        expect(any(NUMBER.search(line) for line in lines), f"the Bias evaluation section "
               f"should give numbers (e.g. selection rate, true positive rate) for the age "
               f"group {group}.")


# -- q5: Dockerfile, .dockerignore, CI workflow (parsed, never built or run) -------------------
def _text(job_dir, name):
    try:
        return read_job_file(job_dir, f"{REPO}/{name}", 200_000).decode("utf-8", "replace")
    except LearnerFailure as exc:
        raise AssertionError(f"{name} could not be read: {exc}") from None


def _dockerfile(job_dir):
    from dockerfile_parse import DockerfileParser

    with tempfile.TemporaryDirectory(prefix="mlgrade-docker-") as tmp:
        parser = DockerfileParser(path=tmp)
        parser.content = _text(job_dir, "Dockerfile")
        return [(item["instruction"].upper(), item["value"]) for item in parser.structure]


PINNED = re.compile(r"@sha256:[0-9a-f]{64}$|:[^:/@]*\d+\.\d+[^:/@]*$")


@points(2, question="q5")
def test_dockerfile(job_dir):
    """Dockerfile: pinned base image, non-root USER, HEALTHCHECK on /health, uvicorn command"""
    steps = _dockerfile(job_dir)
    stages = set()
    bases = []
    for instruction, value in steps:
        if instruction == "FROM":
            words = [w for w in value.split() if not w.startswith("--")]
            bases.append(words[0] if words else "")
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
    expect(bool(bases), "the Dockerfile has no FROM instruction.")
    for base in bases:
        expect(base.lower() in stages or PINNED.search(base) is not None,
               f"the base image {base!r} is not pinned: name an exact version tag (e.g. "
               "python:3.12.7-slim) or a digest, never latest or a bare name.")
    users = [value.split(":")[0].strip() for instruction, value in steps if instruction == "USER"]
    expect(bool(users) and users[-1] not in ("root", "0", ""),
           "the image should switch to a non-root user (a USER instruction after the installs).")
    checks = [value for instruction, value in steps if instruction == "HEALTHCHECK"]
    expect(bool(checks) and "none" not in checks[-1].lower().split()[:1] and "/health" in checks[-1],
           "add a HEALTHCHECK whose command requests the app's /health endpoint.")
    commands = [value for instruction, value in steps if instruction in ("CMD", "ENTRYPOINT")]
    served = " ".join(commands[-2:])
    expect("uvicorn" in served and f"{PACKAGE}.app:app" in served,
           f"the image's CMD should serve the app: uvicorn {PACKAGE}.app:app.")


def _ignored(patterns, path):
    """Whether Docker's build context leaves ``path`` out (last matching pattern wins; a
    pattern also covers everything below a folder it matches)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip().strip("/").removeprefix("./")
        if not pattern:
            continue
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, p) or fnmatchcase(p, pattern) for p in prefixes):
            excluded = not negate
    return excluded


KEPT_OUT = ["data/customers.csv", ".env", "mlruns/0/meta.yaml"]


@points(1, question="q5")
def test_dockerignore(job_dir):
    """.dockerignore keeps the data, secrets and MLflow runs out of the image"""
    lines = [line.strip() for line in _text(job_dir, ".dockerignore").splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    for path in KEPT_OUT:
        expect(_ignored(patterns, path), f".dockerignore lets {path} into the build context: "
               "exclude data/, .env (secrets) and mlruns/.")


def _triggers(workflow):
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    if isinstance(on, str):
        return {on}
    if isinstance(on, list):
        return {str(t) for t in on}
    if isinstance(on, dict):
        return {str(t) for t in on}
    return set()


@points(1, question="q5")
def test_ci_workflow(job_dir):
    """.github/workflows/ci.yml runs the tests with pytest on push and pull_request"""
    try:
        workflow = yaml.safe_load(io.StringIO(_text(job_dir, ".github/workflows/ci.yml")))
    except yaml.YAMLError:
        raise AssertionError(".github/workflows/ci.yml is not valid YAML.") from None
    expect(isinstance(workflow, dict), ".github/workflows/ci.yml should be a workflow mapping.")
    triggers = _triggers(workflow)
    expect({"push", "pull_request"} <= triggers,
           "the workflow should run on both push and pull_request.")
    jobs = workflow.get("jobs")
    steps = [step for job in (jobs.values() if isinstance(jobs, dict) else [])
             if isinstance(job, dict) for step in (job.get("steps") or []) if isinstance(step, dict)]
    expect(any("pytest" in str(step.get("run", "")) for step in steps),
           "a step of the workflow should run the tests (`python -m pytest`).")
