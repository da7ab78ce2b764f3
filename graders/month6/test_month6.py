"""Hidden graders for month 6: MLOps and responsible AI.

Expected values are always computed here. The API is exercised through FastAPI's TestClient
*inside the learner's kernel* with a grader-made model, the MLflow run is read back through
MLflow's client in this process, and every model is fitted on data the notebook never had.
"""

import contextlib
import math
import os
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from mlgrade.grading import LearnerFailure, expect, expect_close, points

FEATURES = ["tenure_months", "monthly_charges", "support_tickets", "contract_type"]
GROUPS = ["18-29", "30-49", "50+"]
MIN_AUC = 0.85  # the reference scores 0.88-0.92 on the grader's held-out data (60 seeds)


def make_customers(rng, n):
    """The churn generator behind data/customers.csv (the notebook gets one draw of it; the
    graders draw fresh rows with their own seeds)."""
    group = rng.choice(GROUPS, size=n, p=[0.3, 0.45, 0.25])
    tenure = rng.integers(0, 121, size=n)
    charges = np.round(rng.uniform(15, 150, size=n), 2)
    tickets = np.minimum(rng.poisson(1.2 + 0.8 * (group == "50+"), size=n), 50)
    contract = rng.choice([0, 1, 2], size=n, p=[0.5, 0.3, 0.2])
    logit = -1.5 - 0.045 * tenure + 0.03 * charges + 0.8 * tickets - 1.4 * contract
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"customer_id": np.arange(1, n + 1), "age_group": group,
                         "tenure_months": tenure, "monthly_charges": charges,
                         "support_tickets": tickets, "contract_type": contract,
                         "churned": churned})


def _split(rng, n_train=800, n_test=1500):
    train, test = make_customers(rng, n_train), make_customers(rng, n_test)
    return train[FEATURES], train["churned"], test[FEATURES], test["churned"]


def _positive_proba(nb, ref, X):
    proba = nb.call(ref.attr("predict_proba"), X)
    expect(isinstance(proba, np.ndarray) and proba.ndim == 2 and proba.shape == (len(X), 2),
           "the model's predict_proba should return one row of two class probabilities per "
           "customer; return a fitted scikit-learn classifier.")
    return proba[:, 1]


# -- q1: a model worth serving -----------------------------------------------------------------
@points(1, question="q1")
def test_train_model_held_out_auc(nb, rng):
    """train_model fits on the grader's rows and ranks held-out customers well"""
    X, y, X_test, y_test = _split(rng)
    ref = nb.call("train_model", X, y, keep=True)
    auc = roc_auc_score(y_test, _positive_proba(nb, ref, X_test))
    expect(bool(auc >= MIN_AUC), "train_model's model ranks new customers poorly (held-out "
           "ROC-AUC too low): fit on the X and y it is given, with scaled features.")


@points(1, question="q1")
def test_train_model_uses_its_arguments(nb, rng):
    """train_model learns from the data it is given, not from notebook globals"""
    X, y, X_test, y_test = _split(rng)
    ref = nb.call("train_model", X, 1 - y, keep=True)  # the opposite target
    auc = roc_auc_score(1 - y_test, _positive_proba(nb, ref, X_test))
    expect(bool(auc >= MIN_AUC), "train_model ignores the data passed to it (trained on "
           "flipped labels, it still predicts the original target): fit a new model on its "
           "X and y arguments instead of returning one trained earlier.")


# -- q2: versioned artifacts -------------------------------------------------------------------
FIT = """
from sklearn.linear_model import LogisticRegression
result = LogisticRegression(C=C, max_iter=1000).fit(X, y)
"""


def _grader_model(nb, X, y, C):
    """A model fitted in the kernel by the grader, so that q2 does not depend on q1."""
    return nb.eval(FIT, X=X, y=y, C=C, keep=True, what="fitting the grader's model")


def _saved_file(job_dir, path, version):
    expect(isinstance(path, str), "save_model should return the saved file's path as a string.")
    full = (job_dir / path).resolve()
    expect(full.is_file(), "save_model returned a path where no file exists: return the path "
           "of the file you wrote.")
    expect(full.is_relative_to(job_dir.resolve()),
           "save_model wrote outside the folder it was given.")
    expect(version in full.name, "the saved file's name does not contain the version: put the "
           "version in the file name (e.g. churn-model-v1.2.0.joblib) so versions never clash.")
    return full


@points(1, question="q2")
def test_artifact_roundtrip(nb, rng, job_dir):
    """save_model writes a file, load_model reads it back with identical predictions"""
    X, y, X_test, _ = _split(rng, 400, 200)
    version = f"{int(rng.integers(1, 9))}.{int(rng.integers(0, 20))}.{int(rng.integers(0, 20))}"
    model = _grader_model(nb, X, y, 1.0)
    path = nb.call("save_model", model, "grader_artifacts", version)
    _saved_file(job_dir, path, version)
    loaded = nb.call("load_model", path, keep=True)
    expect_close(nb.call(loaded.attr("predict_proba"), X_test),
                 nb.call(model.attr("predict_proba"), X_test),
                 "the reloaded model predicts differently from the saved one: save the fitted "
                 "model itself (joblib.dump) and load it back with joblib.load.", rtol=0, atol=0)


@points(1, question="q2")
def test_artifact_versions_coexist(nb, rng, job_dir):
    """saving a new version keeps the old one loadable"""
    X, y, X_test, _ = _split(rng, 400, 200)
    old_version = f"1.{int(rng.integers(0, 50))}.0"
    new_version = f"2.{int(rng.integers(0, 50))}.1"
    old = _grader_model(nb, X, y, 0.01)
    new = _grader_model(nb, X, y, 100.0)
    old_path = nb.call("save_model", old, "grader_registry", old_version)
    new_path = nb.call("save_model", new, "grader_registry", new_version)
    expect(isinstance(old_path, str) and isinstance(new_path, str) and old_path != new_path,
           "saving a second version overwrote the first: each version needs its own file.")
    _saved_file(job_dir, old_path, old_version)
    _saved_file(job_dir, new_path, new_version)
    for path, ref in ((old_path, old), (new_path, new)):
        loaded = nb.call("load_model", path, keep=True)
        expect_close(nb.call(loaded.attr("predict_proba"), X_test),
                     nb.call(ref.attr("predict_proba"), X_test),
                     "loading an older version gave another model: each version's file must "
                     "hold that version's model.", rtol=0, atol=0)


# -- q3: the prediction API, exercised in the kernel with FastAPI's TestClient -----------------
SERVE = """
import warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

class _GraderModel:
    # probability looked up from tenure_months: the grader knows every answer
    def __init__(self, table):
        self.table, self.rows = table, []
    def predict_proba(self, X):
        arr = np.asarray(X, dtype=float).reshape(-1, 4)
        self.rows.extend(arr.tolist())
        p = np.array([self.table[int(round(r[0]))] for r in arr])
        return np.column_stack([1 - p, p])
    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

_model = None if table is None else _GraderModel(table)
_client = TestClient(ns["create_app"](_model, version), raise_server_exceptions=False)
_answers = []
for _method, _url, _body in requests:
    _r = _client.get(_url) if _method == "GET" else _client.post(_url, json=_body)
    try:
        _payload = _r.json()
    except Exception:
        _payload = None
    _answers.append([_r.status_code, _payload])
result = [_answers, [] if _model is None else _model.rows]
"""


def _serve(nb, table, version, requests):
    """Build the learner's app around a grader model (or None) and send it requests."""
    if not nb.has("create_app"):
        raise LearnerFailure("`create_app` is not defined: did you complete and run its cell?")
    answers, rows = nb.eval(SERVE, table=table, version=version, requests=requests,
                            what="`create_app(...)`")
    return [(int(code), payload) for code, payload in answers], rows


def _customer(rng, tenure):
    return {"tenure_months": int(tenure), "monthly_charges": round(float(rng.uniform(15, 150)), 2),
            "support_tickets": int(rng.integers(0, 8)), "contract_type": int(rng.integers(0, 3))}


def _tier(p):
    return "high" if p >= 0.7 else "medium" if p >= 0.4 else "low"


@points(1, question="q3")
def test_health_endpoint(nb, rng):
    """GET /health reports a loaded model"""
    (code, body), = _serve(nb, {0: 0.5}, "3.1.4", [["GET", "/health", None]])[0]
    expect(code == 200, f"GET /health answered HTTP {code}: add a @app.get('/health') route.")
    expect(isinstance(body, dict) and body.get("model_loaded") is True
           and body.get("status") == "ok",
           "GET /health should return JSON with status 'ok' and model_loaded true when a model "
           "is loaded.")


@points(2, question="q3")
def test_predict_valid_requests(nb, rng):
    """POST /predict returns the model's probability, the right risk tier and the version"""
    probabilities = [0.05, 0.3999, 0.4, 0.55, 0.6999, 0.7, 0.93, float(rng.uniform(0, 1))]
    tenures = rng.choice(np.arange(0, 121), size=len(probabilities), replace=False)
    table = {int(t): p for t, p in zip(tenures, probabilities, strict=True)}
    customers = [_customer(rng, t) for t in tenures]
    version = f"{int(rng.integers(1, 9))}.{int(rng.integers(0, 9))}.0"
    answers, rows = _serve(nb, table, version, [["POST", "/predict", c] for c in customers])
    for (code, body), customer in zip(answers, customers, strict=True):
        expect(code == 200, f"POST /predict with a valid customer answered HTTP {code}: it "
               "should answer 200 with a prediction.")
        expect(isinstance(body, dict) and {"churn_probability", "risk_tier", "model_version"}
               <= set(body), "the /predict response needs churn_probability, risk_tier and "
               "model_version fields.")
        p = table[customer["tenure_months"]]
        expect_close(body["churn_probability"], p, "churn_probability is not the churn "
                     "probability of the model create_app was given: call that model's "
                     "predict_proba(...)[:, 1] (class 1 is churn).", rtol=0, atol=6e-5)
        expect(body["risk_tier"] == _tier(p), "risk_tier is wrong for some probabilities: "
               "high when p >= 0.7, medium when 0.4 <= p < 0.7, low otherwise (check the "
               "boundaries).")
        expect(body["model_version"] == version, "model_version in the response should be the "
               "version create_app was given.")
    expected_rows = [[float(c[f]) for f in FEATURES] for c in customers]
    # a model asked twice about the same customer (predict and predict_proba) is fine
    rows = [r for i, r in enumerate(rows) if i == 0 or r != rows[i - 1]]
    expect(len(rows) == len(customers) and np.allclose(rows, expected_rows),
           "the model received the features in the wrong order or shape: pass one row with "
           "columns tenure_months, monthly_charges, support_tickets, contract_type.")


@points(2, question="q3")
def test_predict_rejects_invalid_input(nb, rng):
    """POST /predict answers 422 for out-of-range, missing and mistyped fields"""
    good = _customer(rng, int(rng.integers(1, 100)))
    bad = [
        {**good, "tenure_months": -1}, {**good, "tenure_months": 121},
        {**good, "monthly_charges": -float(rng.uniform(1, 50))}, {**good, "monthly_charges": 900.0},
        {**good, "support_tickets": -2}, {**good, "contract_type": 3},
        {**good, "support_tickets": "many"},
        {k: v for k, v in good.items() if k != "monthly_charges"}, {},
    ]
    table = {t: 0.5 for t in range(-5, 130)}
    answers, rows = _serve(nb, table, "1.0.0", [["POST", "/predict", b] for b in bad])
    wrong = [code for code, _ in answers if code != 422]
    expect(not wrong, f"{len(wrong)} of {len(bad)} invalid requests were not rejected with 422 "
           f"(got HTTP {sorted(set(wrong))}): declare the request body as a pydantic model with "
           "Field(ge=..., le=...) bounds so FastAPI validates it before your code runs.")
    expect(not rows, "invalid requests reached the model: validate the input before predicting.")


@points(1, question="q3")
def test_model_not_loaded_503(nb, rng):
    """with no model loaded, /predict answers 503 and /health says so"""
    answers, _ = _serve(nb, None, "0.0.0", [["POST", "/predict", _customer(rng, 12)],
                                            ["GET", "/health", None]])
    (predict_code, _), (health_code, health) = answers
    expect(predict_code == 503, f"POST /predict without a model answered HTTP {predict_code}: "
           "raise HTTPException(status_code=503) when model is None.")
    expect(health_code == 200 and isinstance(health, dict)
           and health.get("model_loaded") is False,
           "GET /health should still answer 200, with model_loaded false, when no model is "
           "loaded.")


# -- q4: experiment tracking --------------------------------------------------------------------
@contextlib.contextmanager
def _file_store_allowed():
    # MLflow 3 keeps its folder store behind this switch; the grader reads, never writes
    old = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = old


@pytest.fixture(scope="module")
def tracked(nb, seed, job_dir):
    """One call of the learner's log_experiment into a fresh store in the job folder, read
    back through MLflow's client: (params sent, data, run, (experiment sent, logged to))."""
    rng = np.random.default_rng([seed, 4])
    X, y, X_val, y_val = _split(rng, 600, 300)
    params = {"C": round(float(rng.uniform(0.05, 0.5)), 4), "model": "logistic_regression",
              "dataset": f"churn-{int(rng.integers(100, 999))}"}
    name = f"grader-churn-{int(rng.integers(1000, 9999))}"
    store = job_dir / "grader_mlruns"
    # the grader chose a folder store, so the grader switches it on (MLflow 3 keeps it opt-in)
    nb.eval("import os\nos.environ['MLFLOW_ALLOW_FILE_STORE'] = 'true'", what="MLflow set-up")
    run_id = nb.call("log_experiment", store.as_uri(), name, params, X, y, X_val, y_val)
    expect(isinstance(run_id, str), "log_experiment should return the run id "
           "(run.info.run_id), a string.")
    with _file_store_allowed():
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=store.as_uri())
        try:
            run = client.get_run(run_id)
            experiment = client.get_experiment(run.info.experiment_id)
        except MlflowException:
            raise LearnerFailure(
                "no MLflow run with the returned id was found under the tracking URI "
                "log_experiment was given: call mlflow.set_tracking_uri(tracking_uri) before "
                "start_run.") from None
    return params, (X, y, X_val, y_val), run, (name, experiment.name)


@points(1, question="q4")
def test_mlflow_params_logged(tracked):
    """the MLflow run is finished, in the named experiment, with every parameter logged"""
    params, _, run, (sent, logged_to) = tracked
    expect(run.info.status == "FINISHED",
           "the MLflow run is not finished: use `with mlflow.start_run():` so it ends.")
    expect(logged_to == sent, "the run was logged to another experiment: call "
           "mlflow.set_experiment(experiment_name).")
    logged = dict(run.data.params)
    expect(logged == {k: str(v) for k, v in params.items()},
           "the logged parameters differ from the params passed in: log every entry of params "
           "(mlflow.log_params(params)), and nothing else.")


@points(2, question="q4")
def test_mlflow_metrics_logged(nb, tracked):
    """train_roc_auc and val_roc_auc are logged, computed on the right split"""
    params, (X, y, X_val, y_val), run, _ = tracked
    metrics = dict(run.data.metrics)
    expect({"train_roc_auc", "val_roc_auc"} <= set(metrics),
           "log both metrics, train_roc_auc and val_roc_auc, with mlflow.log_metric.")
    model = nb.call("train_model", X, y, params["C"], keep=True)
    train_auc = roc_auc_score(y, _positive_proba(nb, model, X))
    val_auc = roc_auc_score(y_val, _positive_proba(nb, model, X_val))
    logged_val = metrics["val_roc_auc"]
    expect(not math.isclose(logged_val, train_auc, rel_tol=1e-9) or
           math.isclose(train_auc, val_auc, rel_tol=1e-9),
           "val_roc_auc holds the training score: compute it on X_val and y_val.")
    expect_close(metrics["train_roc_auc"], train_auc, "train_roc_auc does not match a model "
                 "trained with train_model(X_train, y_train, C=params['C']): use that model and "
                 "predict_proba(...)[:, 1].", rtol=1e-6)
    expect_close(logged_val, val_auc, "val_roc_auc does not match the model's ROC-AUC on the "
                 "validation split: train with params['C'] and score predict_proba(X_val)[:, 1].",
                 rtol=1e-6)


# -- q5: drift ----------------------------------------------------------------------------------
def _psi(reference, current, bins, right):
    edges = np.quantile(reference, np.linspace(0, 1, bins + 1))
    edges[0], edges[-1] = -np.inf, np.inf
    side = "left" if right else "right"  # right=True: bins (a, b]; False: [a, b)

    def share(x):
        idx = np.searchsorted(edges, x, side=side) - 1
        idx = np.clip(idx, 0, bins - 1)
        return np.clip(np.bincount(idx, minlength=bins) / len(x), 1e-4, None)

    ref, cur = share(reference), share(current)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _expect_psi(got, reference, current, bins, message):
    options = [_psi(reference, current, bins, right) for right in (False, True)]
    best = min(options, key=lambda v: abs(v - got) if isinstance(got, float) else 0)
    expect_close(got, best, message, rtol=1e-6, atol=1e-9)


@points(2, question="q5")
def test_psi_matches_definition(nb, rng):
    """psi follows the definition on fresh distributions and bin counts"""
    cases = [(rng.normal(0, 1, 2000), rng.normal(0.3, 1.1, 1500), 10),
             (rng.normal(50, 10, 3000), rng.normal(50, 10, 2500), 10),
             (rng.exponential(2.0, 1200), rng.exponential(2.6, 900), 5),
             (rng.uniform(0, 1, 2500), rng.beta(2, 3, 1800), 20)]
    for reference, current, bins in cases:
        got = nb.call("psi", reference, current, bins)
        _expect_psi(got, reference, current, bins,
                    "psi differs from the definition: cut both samples with the reference's "
                    "quantiles (np.quantile at 0, 1/bins, ..., 1, outer edges open), compare "
                    "the shares in each bin, sum (cur - ref) * ln(cur / ref).")


@points(1, question="q5")
def test_psi_handles_empty_bins(nb, rng):
    """psi stays finite and exact when the current sample leaves bins empty"""
    reference = rng.normal(0, 1, 2000)
    current = rng.normal(2.5, 0.3, 800)  # far in the right tail: most bins are empty
    got = nb.call("psi", reference, current, 10)
    _expect_psi(got, reference, current, 10,
                "psi is wrong (or infinite) when a bin is empty: raise every share below "
                "0.0001 to 0.0001 before taking logs, and nothing else.")


@points(1, question="q5")
def test_ks_drift(nb, rng):
    """ks_drift reports the two-sample KS statistic, its p-value and the decision"""
    same = (rng.normal(0, 1, 400), rng.normal(0, 1, 300))
    shifted = (rng.normal(0, 1, 400), rng.normal(0.4, 1, 300))
    for (reference, current), alpha in ((same, 0.05), (shifted, 0.05), (shifted, 1e-12)):
        got = nb.call("ks_drift", reference, current, alpha)
        want = stats.ks_2samp(reference, current)
        expect(isinstance(got, dict) and {"statistic", "p_value", "drift"} <= set(got),
               "ks_drift should return a dict with statistic, p_value and drift.")
        expect_close(got["statistic"], float(want.statistic), "the KS statistic is wrong: use "
                     "scipy.stats.ks_2samp(reference, current).", rtol=1e-6)
        expect_close(got["p_value"], float(want.pvalue), "the KS p-value is wrong: use "
                     "scipy.stats.ks_2samp(reference, current).", rtol=1e-4, atol=1e-12)
        expect(got["drift"] is bool(want.pvalue < alpha), "drift should be True exactly when "
               "the p-value is below alpha (a bool).")


# -- q6: responsible AI -------------------------------------------------------------------------
def _groups_case(rng):
    names = [f"group-{c}" for c in rng.choice(list("ABCDEFGH"), size=3, replace=False)]
    n = 600
    groups = rng.choice(names, size=n, p=[0.5, 0.3, 0.2])
    y_true = (rng.random(n) < np.select([groups == names[0], groups == names[1]], [0.3, 0.5],
                                        0.2)).astype(int)
    flip = rng.random(n) < np.select([groups == names[0], groups == names[1]], [0.1, 0.25], 0.4)
    y_pred = np.where(flip, 1 - y_true, y_true)
    return y_true, y_pred, groups


@points(2, question="q6")
def test_group_metrics(nb, rng):
    """group_metrics matches the grader's per-group n, selection rate, accuracy, TPR and FPR"""
    y_true, y_pred, groups = _groups_case(rng)
    table = nb.call("group_metrics", y_true, y_pred, groups)
    expect(isinstance(table, pd.DataFrame), "group_metrics should return a pandas DataFrame "
           "with one row per group.")
    expected_groups = sorted(set(groups.tolist()))
    expect([str(g) for g in table.index] == expected_groups, "group_metrics should have one "
           "row per group, indexed by the group's name and sorted.")
    columns = ["n", "selection_rate", "accuracy", "tpr", "fpr"]
    expect(set(columns) <= {str(c) for c in table.columns},
           "group_metrics needs the columns n, selection_rate, accuracy, tpr and fpr.")
    table.columns = [str(c) for c in table.columns]
    for i, g in enumerate(expected_groups):
        m = groups == g
        t, p = y_true[m], y_pred[m]
        want = [m.sum(), p.mean(), (p == t).mean(), p[t == 1].mean(), p[t == 0].mean()]
        expect_close(table[columns].to_numpy(dtype=float)[i], np.array(want, dtype=float),
                     "the per-group numbers are wrong: compute each metric on that group's rows "
                     "only (tpr among its actual positives, fpr among its actual negatives).",
                     rtol=1e-9)


@points(1, question="q6")
def test_disparity(nb, rng):
    """disparity gives the TPR gap and the selection-rate ratio of a group table"""
    k = int(rng.integers(2, 6))
    table = pd.DataFrame({"n": rng.integers(50, 500, k), "selection_rate": rng.uniform(0.1, 0.9, k),
                          "accuracy": rng.uniform(0.6, 0.95, k), "tpr": rng.uniform(0.4, 0.99, k),
                          "fpr": rng.uniform(0.01, 0.3, k)},
                         index=[f"g{i}" for i in range(k)])
    got = nb.call("disparity", table)
    expect(isinstance(got, dict) and {"tpr_gap", "selection_rate_ratio"} <= set(got),
           "disparity should return a dict with tpr_gap and selection_rate_ratio.")
    expect_close(got["tpr_gap"], float(table["tpr"].max() - table["tpr"].min()),
                 "tpr_gap should be the largest TPR minus the smallest.", rtol=1e-9)
    expect_close(got["selection_rate_ratio"],
                 float(table["selection_rate"].min() / table["selection_rate"].max()),
                 "selection_rate_ratio should be the smallest selection rate divided by the "
                 "largest (the 'four-fifths rule' ratio).", rtol=1e-9)


# -- q7: the model card -------------------------------------------------------------------------
SECTIONS = ["model details", "intended use", "training data", "evaluation", "fairness",
            "limitations"]


def _sections(markdown):
    """{lower-cased heading: its text, up to the next heading of the same or a higher level}"""
    heads = [(m.start(), m.end(), len(m.group(1)), m.group(2).strip().lower())
             for m in re.finditer(r"(?m)^(#{1,6})\s+(.+?)\s*#*\s*$", markdown)]
    out = {}
    for i, (_, end, level, title) in enumerate(heads):
        stop = next((s for s, _, lv, _ in heads[i + 1:] if lv <= level), len(markdown))
        out[title] = markdown[end:stop]
    return out


def _section(found, name):
    return next((text for title, text in found.items() if name in title), None)


def _card(nb, rng):
    name = f"churn-{rng.choice(['gbm', 'logit', 'forest'])}-{int(rng.integers(10, 99))}"
    version = f"{int(rng.integers(1, 5))}.{int(rng.integers(0, 30))}.{int(rng.integers(0, 9))}"
    metrics = {"roc_auc": float(rng.uniform(0.7, 0.95)), "f1": float(rng.uniform(0.4, 0.8))}
    groups = [f"band-{c}" for c in rng.choice(list("PQRSTUV"), size=3, replace=False)]
    table = pd.DataFrame({"n": rng.integers(50, 300, 3), "selection_rate": rng.uniform(0.1, 0.6, 3),
                          "accuracy": rng.uniform(0.6, 0.9, 3), "tpr": rng.uniform(0.5, 0.9, 3),
                          "fpr": rng.uniform(0.05, 0.3, 3)}, index=groups)
    card = nb.call("model_card", name, version, metrics, table)
    expect(isinstance(card, str) and card.strip() != "", "model_card should return the card "
           "as a Markdown string.")
    return card, name, version, metrics, groups


@points(1, question="q7")
def test_model_card_sections(nb, rng):
    """the model card has every required section"""
    card, *_ = _card(nb, rng)
    found = _sections(card)
    missing = [s for s in SECTIONS if _section(found, s) is None]
    expect(not missing, f"the model card lacks {len(missing)} required section(s): give it "
           "Markdown headings for Model details, Intended use, Training data, Evaluation, "
           "Fairness and Limitations.")


@points(1, question="q7")
def test_model_card_uses_inputs(nb, rng):
    """the model card reports the name, version, metrics and per-group results it is given"""
    card, name, version, metrics, groups = _card(nb, rng)
    found = _sections(card)
    expect(name in card and version in card, "the model card should name the model and its "
           "version (the arguments it was given).")
    evaluation = _section(found, "evaluation") or ""
    expect(all(f"{v:.3f}" in evaluation for v in metrics.values()),
           "the Evaluation section should list each metric passed in, with 3 decimals: build "
           "the card from the arguments, don't paste numbers from one run.")
    fairness = _section(found, "fairness") or ""
    expect(all(g in fairness for g in groups), "the Fairness section should report every group "
           "of the group table it is given.")
