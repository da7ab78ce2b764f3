"""Train the churn model, save a versioned artifact and track the run in MLflow.

    python -m churn_api.train --data data/customers.csv --model-dir models --version 1.0.0 \
        --tracking-uri file:./mlruns --experiment churn
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import joblib
import mlflow
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from churn_api import FEATURES, TARGET


def build_model(C: float = 1.0) -> Pipeline:
    """Standardised features into a logistic regression with strength C."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))


def train(data: pd.DataFrame, C: float = 1.0, seed: int = 0) -> tuple[Pipeline, dict[str, float]]:
    """Fit on 75% of the rows; return the model and its train/validation ROC-AUC."""
    X_train, X_val, y_train, y_val = train_test_split(
        data[FEATURES], data[TARGET], test_size=0.25, random_state=seed, stratify=data[TARGET])
    model = build_model(C).fit(X_train, y_train)
    metrics = {"train_roc_auc": float(roc_auc_score(y_train, model.predict_proba(X_train)[:, 1])),
               "val_roc_auc": float(roc_auc_score(y_val, model.predict_proba(X_val)[:, 1]))}
    return model, metrics


def save(model: Pipeline, model_dir: str | Path, version: str) -> Path:
    """Write ``model_dir/churn-<version>.joblib`` holding the model and its version."""
    folder = Path(model_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"churn-{version}.joblib"
    joblib.dump({"model": model, "version": version, "features": FEATURES}, path)
    return path


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--model-dir", default="models")
    parser.add_argument("--version", required=True)
    parser.add_argument("--tracking-uri", default="file:./mlruns")
    parser.add_argument("--experiment", default="churn")
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = pd.read_csv(args.data)
    model, metrics = train(data, args.C, args.seed)
    path = save(model, args.model_dir, args.version)
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment(args.experiment)
    with mlflow.start_run() as run:
        mlflow.log_params({"C": args.C, "model_version": args.version})
        mlflow.log_metrics(metrics)
    summary = {"artifact": str(path), "run_id": run.info.run_id, **metrics}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
