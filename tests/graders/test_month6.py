"""Month 6 graders are tested like code: known-wrong solutions lose exactly the points they
should, a correct solution written differently earns full marks, and `validate` checks the
reference solution (full marks, twice, same scores) and the starter (zero)."""

from __future__ import annotations

import pytest
from tests.conftest import (
    failed_tests,
    mutant,
    notebook_from_cells,
    validated_runs,
)

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

ALL_TESTS = {
    "test_train_model_held_out_auc", "test_train_model_uses_its_arguments",
    "test_artifact_roundtrip", "test_artifact_versions_coexist",
    "test_health_endpoint", "test_predict_valid_requests", "test_predict_rejects_invalid_input",
    "test_model_not_loaded_503", "test_mlflow_params_logged", "test_mlflow_metrics_logged",
    "test_psi_matches_definition", "test_psi_handles_empty_bins", "test_ks_drift",
    "test_group_metrics", "test_disparity", "test_model_card_sections",
    "test_model_card_uses_inputs",
}

# --- the roadmap's "endpoint without validation": the body is a plain dict -------------------
NO_VALIDATION_API = '''
from fastapi import FastAPI, HTTPException


def create_app(model, model_version="0.0.0"):
    app = FastAPI()

    @app.get("/health")
    def health():
        return {"status": "ok" if model is not None else "degraded",
                "model_loaded": model is not None}

    @app.post("/predict")
    def predict(customer: dict):
        if model is None:
            raise HTTPException(status_code=503, detail="no model")
        row = pd.DataFrame([[customer[name] for name in FEATURES]], columns=FEATURES)
        p = float(model.predict_proba(row)[0, 1])
        tier = "high" if p >= 0.7 else "medium" if p >= 0.4 else "low"
        return {"churn_probability": p, "risk_tier": tier, "model_version": model_version}

    return app
'''

# --- PSI without the epsilon floor: an empty bin gives log(0) -> inf -------------------------
PSI_NO_EPSILON = '''
from scipy import stats


def psi(reference, current, bins=10):
    edges = np.quantile(reference, np.linspace(0, 1, bins + 1))
    edges[0], edges[-1] = -np.inf, np.inf
    ref = np.histogram(reference, edges)[0] / len(reference)
    cur = np.histogram(current, edges)[0] / len(current)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sum((cur - ref) * np.log(cur / ref)))


def ks_drift(reference, current, alpha=0.05):
    test = stats.ks_2samp(reference, current)
    return {"statistic": float(test.statistic), "p_value": float(test.pvalue),
            "drift": bool(test.pvalue < alpha)}
'''

# --- per-group metrics computed on the whole set (every group gets the overall numbers) ------
GROUP_METRICS_WHOLE_SET = '''
def group_metrics(y_true, y_pred, groups):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    overall = {"selection_rate": y_pred.mean(), "accuracy": (y_pred == y_true).mean(),
               "tpr": y_pred[y_true == 1].mean(), "fpr": y_pred[y_true == 0].mean()}
    names = sorted(set(np.asarray(groups).tolist()))
    rows = {g: {"n": int((np.asarray(groups) == g).sum()), **overall} for g in names}
    return pd.DataFrame.from_dict(rows, orient="index")[["n", "selection_rate", "accuracy",
                                                         "tpr", "fpr"]]


def disparity(table):
    return {"tpr_gap": float(table["tpr"].max() - table["tpr"].min()),
            "selection_rate_ratio": float(table["selection_rate"].min()
                                          / table["selection_rate"].max())}
'''

# --- PSI with equal-width bins between the min and the max ----------------------------------
PSI_EQUAL_WIDTH = '''
from scipy import stats


def psi(reference, current, bins=10):
    edges = np.linspace(min(np.min(reference), np.min(current)),
                        max(np.max(reference), np.max(current)), bins + 1)
    ref = np.clip(np.histogram(reference, edges)[0] / len(reference), 1e-4, None)
    cur = np.clip(np.histogram(current, edges)[0] / len(current), 1e-4, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def ks_drift(reference, current, alpha=0.05):
    test = stats.ks_2samp(reference, current)
    return {"statistic": float(test.statistic), "p_value": float(test.pvalue),
            "drift": bool(test.pvalue < alpha)}
'''

# --- the training score logged as the validation score --------------------------------------
MLFLOW_TRAIN_AS_VAL = '''
import mlflow


def log_experiment(tracking_uri, experiment_name, params, X_train, y_train, X_val, y_val):
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment_name)
    with mlflow.start_run() as run:
        mlflow.log_params(params)
        fitted = train_model(X_train, y_train, C=params["C"])
        score = roc_auc_score(y_train, fitted.predict_proba(X_train)[:, 1])
        mlflow.log_metric("train_roc_auc", score)
        mlflow.log_metric("val_roc_auc", score)
    return run.info.run_id
'''

# --- a model card with numbers pasted from one run -------------------------------------------
HARD_CODED_CARD = '''
def model_card(model_name, version, metrics, group_table):
    return f"""# {model_name} {version}
## Model details
Logistic regression.
## Intended use
Retention offers.
## Training data
data/customers.csv
## Evaluation
- val_roc_auc: 0.879
## Fairness
18-29: TPR 0.619; 30-49: TPR 0.727; 50+: TPR 0.880
## Limitations
One service only.
"""
'''

# --- a model trained once on the notebook's data, whatever train_model is given -------------
TRAIN_IGNORES_ARGUMENTS = '''
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

_trained = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)


def train_model(X, y, C=1.0):
    return _trained


model = train_model(X_train, y_train)
val_auc = roc_auc_score(y_val, model.predict_proba(X_val)[:, 1])
'''

# --- one artifact file for every version (each save overwrites the last) --------------------
UNVERSIONED_ARTIFACT = '''
import joblib


def save_model(model, directory, version):
    Path(directory).mkdir(parents=True, exist_ok=True)
    path = Path(directory) / "model.joblib"
    joblib.dump(model, path)
    return str(path)


def load_model(path):
    return joblib.load(path)


MODEL_VERSION = "1.0.0"
'''

# --- no 503: with model=None, /predict crashes (500) ----------------------------------------
NO_503_API = '''
from fastapi import FastAPI
from pydantic import BaseModel, Field


class Customer(BaseModel):
    tenure_months: int = Field(ge=0, le=120)
    monthly_charges: float = Field(ge=0, le=500)
    support_tickets: int = Field(ge=0, le=50)
    contract_type: int = Field(ge=0, le=2)


def create_app(model, model_version="0.0.0"):
    app = FastAPI()

    @app.get("/health")
    def health():
        return {"status": "ok" if model is not None else "degraded",
                "model_loaded": model is not None}

    @app.post("/predict")
    def predict(customer: Customer):
        row = pd.DataFrame([customer.model_dump()])[FEATURES]
        p = float(model.predict_proba(row)[0, 1])
        tier = "high" if p >= 0.7 else "medium" if p >= 0.4 else "low"
        return {"churn_probability": p, "risk_tier": tier, "model_version": model_version}

    return app
'''

# --- a correct solution written differently ------------------------------------------------
ALT_SETUP = '''
import os
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
import pickle
from pathlib import Path
import numpy as np
import pandas as pd
FEATURES = ["tenure_months", "monthly_charges", "support_tickets", "contract_type"]
'''

ALT_MODEL = '''
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def train_model(features, target, C=1.0):
    steps = [("scale", ColumnTransformer([("num", StandardScaler(), list(range(4)))])),
             ("clf", LogisticRegression(C=C, max_iter=2000, solver="liblinear"))]
    return Pipeline(steps).fit(np.asarray(features, dtype=float), np.asarray(target))


def save_model(estimator, directory, version):
    target = Path(directory) / f"v{version}"
    target.mkdir(parents=True, exist_ok=True)
    (target / "meta.json").write_text('{"version": "%s"}' % version)
    artifact = target / f"churn_{version}.pkl"
    artifact.write_bytes(pickle.dumps(estimator))
    return artifact.as_posix()


def load_model(path):
    return pickle.loads(Path(path).read_bytes())
'''

ALT_API = '''
from typing import Annotated
from fastapi import FastAPI, HTTPException, status
from pydantic import BaseModel, Field


class Payload(BaseModel):
    tenure_months: Annotated[int, Field(ge=0, le=120)]
    monthly_charges: Annotated[float, Field(ge=0.0, le=500.0)]
    support_tickets: Annotated[int, Field(ge=0, le=50)]
    contract_type: Annotated[int, Field(ge=0, le=2)]


def create_app(model, model_version="0.0.0"):
    api = FastAPI()
    state = {"model": model}

    @api.get("/health")
    async def health():
        return {"model_loaded": state["model"] is not None,
                "status": "degraded" if state["model"] is None else "ok"}

    @api.post("/predict")
    async def predict(body: Payload):
        if state["model"] is None:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "model missing")
        x = np.array([[body.tenure_months, body.monthly_charges, body.support_tickets,
                       body.contract_type]], dtype=float)
        prob = state["model"].predict_proba(x)[:, 1][0]
        tiers = [(0.7, "high"), (0.4, "medium"), (0.0, "low")]
        tier = next(name for cut, name in tiers if prob >= cut)
        return {"churn_probability": float(prob), "risk_tier": tier,
                "model_version": model_version}

    return api
'''

ALT_TRACKING = '''
from mlflow.tracking import MlflowClient
from sklearn.metrics import roc_auc_score


def log_experiment(tracking_uri, experiment_name, params, X_train, y_train, X_val, y_val):
    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment_name)
    exp_id = found.experiment_id if found else client.create_experiment(experiment_name)
    run = client.create_run(exp_id)
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    clf = train_model(X_train, y_train, params["C"])
    for split, (X, y) in {"train": (X_train, y_train), "val": (X_val, y_val)}.items():
        auc = roc_auc_score(y, clf.predict_proba(np.asarray(X, dtype=float))[:, 1])
        client.log_metric(run.info.run_id, f"{split}_roc_auc", auc)
    client.set_terminated(run.info.run_id)
    return run.info.run_id
'''

ALT_DRIFT = '''
from scipy.stats import ks_2samp


def psi(reference, current, bins=10):
    reference, current = pd.Series(reference, dtype=float), pd.Series(current, dtype=float)
    cuts = reference.quantile(np.linspace(0, 1, bins + 1)).to_numpy(copy=True)
    cuts[0], cuts[-1] = -np.inf, np.inf
    ref = pd.cut(reference, cuts).value_counts(normalize=True, sort=False).to_numpy()
    cur = pd.cut(current, cuts).value_counts(normalize=True, sort=False).to_numpy()
    ref, cur = np.maximum(ref, 0.0001), np.maximum(cur, 0.0001)
    return float(((cur - ref) * np.log(cur / ref)).sum())


def ks_drift(reference, current, alpha=0.05):
    stat, p = ks_2samp(reference, current)
    return dict(statistic=float(stat), p_value=float(p), drift=bool(p < alpha))
'''

ALT_FAIRNESS = '''
from sklearn.metrics import confusion_matrix


def group_metrics(y_true, y_pred, groups):
    df = pd.DataFrame(dict(t=list(y_true), p=list(y_pred), g=list(groups)))
    out = []
    for g in sorted(df.g.unique()):
        part = df[df.g == g]
        tn, fp, fn, tp = confusion_matrix(part.t, part.p, labels=[0, 1]).ravel()
        out.append(dict(group=g, n=len(part), selection_rate=(tp + fp) / len(part),
                        accuracy=(tp + tn) / len(part), tpr=tp / (tp + fn), fpr=fp / (fp + tn)))
    return pd.DataFrame(out).set_index("group")


def disparity(table):
    rates = table["selection_rate"]
    return {"selection_rate_ratio": rates.min() / rates.max(),
            "tpr_gap": table["tpr"].max() - table["tpr"].min()}


def model_card(model_name, version, metrics, group_table):
    parts = [f"# {model_name} -- {version}"]
    parts.append("### Model Details\\nA scaled logistic regression.")
    parts.append("### Intended Use\\nRetention outreach only.")
    parts.append("### Training Data\\nSubscription customers.")
    parts.append("### Evaluation Results\\n" + "\\n".join(f"* **{k}** = {v:.3f}"
                                                       for k, v in metrics.items()))
    rows = "\\n".join(f"* {g}: TPR {r.tpr:.3f}, FPR {r.fpr:.3f}" for g, r in group_table.iterrows())
    parts.append("### Fairness Analysis\\n" + rows)
    parts.append("### Limitations and Risks\\nOne market, one year of data.")
    return "\\n\\n".join(parts)
'''



def test_no_validation_psi_without_epsilon_and_whole_set_group_metrics(grade) -> None:
    nb = mutant("month6", {"def create_app": NO_VALIDATION_API, "def psi": PSI_NO_EPSILON,
                    "def group_metrics": GROUP_METRICS_WHOLE_SET})
    result = grade("month6", nb)
    assert result.status == "graded"
    assert failed_tests(result) == {"test_predict_rejects_invalid_input",
                                    "test_psi_handles_empty_bins", "test_group_metrics"}
    feedback = {t.id: t.feedback for t in result.tests}
    assert "pydantic model" in feedback["test_predict_rejects_invalid_input"]
    assert "0.0001" in feedback["test_psi_handles_empty_bins"]
    assert "that group's rows only" in feedback["test_group_metrics"]
    assert result.score == 22 - 5


def test_equal_width_psi_train_auc_as_val_and_hard_coded_card(grade) -> None:
    nb = mutant("month6", {"def psi": PSI_EQUAL_WIDTH, "def log_experiment": MLFLOW_TRAIN_AS_VAL,
                    "def model_card": HARD_CODED_CARD})
    result = grade("month6", nb)
    assert failed_tests(result) == {"test_psi_matches_definition", "test_psi_handles_empty_bins",
                                    "test_mlflow_metrics_logged", "test_model_card_uses_inputs"}
    feedback = {t.id: t.feedback for t in result.tests}
    assert "holds the training score" in feedback["test_mlflow_metrics_logged"]
    assert "3 decimals" in feedback["test_model_card_uses_inputs"]


def test_stale_model_unversioned_artifact_and_no_503(grade) -> None:
    nb = mutant("month6", {"def train_model": TRAIN_IGNORES_ARGUMENTS, "def save_model":
                    UNVERSIONED_ARTIFACT, "def create_app": NO_503_API})
    result = grade("month6", nb)
    assert failed_tests(result) == {"test_train_model_uses_its_arguments",
                                    "test_artifact_roundtrip", "test_artifact_versions_coexist",
                                    "test_model_not_loaded_503"}
    feedback = {t.id: t.feedback for t in result.tests}
    assert "ignores the data passed to it" in feedback["test_train_model_uses_its_arguments"]
    assert "version in the file name" in feedback["test_artifact_roundtrip"]
    assert "503" in feedback["test_model_not_loaded_503"]


def test_correct_alternative_earns_full_marks(grade, tmp_path) -> None:
    nb = notebook_from_cells(ALT_SETUP, ALT_MODEL, ALT_API, ALT_TRACKING, ALT_DRIFT,
                             ALT_FAIRNESS)
    result = grade("month6", nb)
    assert {t.id for t in result.tests} == ALL_TESTS
    assert [t.feedback for t in result.tests if t.status != "passed"] == []
    assert result.full_marks and result.score == 22


def test_reference_full_marks_twice_and_starter_zero() -> None:
    """Through `mlgrade validate`'s checks: full marks, deterministic, starter zero."""
    solution_run, again, starter = validated_runs("month6")
    assert solution_run.score == again.score == 22 and starter.score == 0
    assert {t.id for t in starter.tests} == ALL_TESTS
    assert all("not implemented yet" in t.feedback for t in starter.tests)
