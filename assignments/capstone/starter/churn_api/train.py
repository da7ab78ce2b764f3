"""Train the churn model, save a versioned artifact and track the run in MLflow.

    python -m churn_api.train --data data/customers.csv --model-dir models --version 1.0.0 \
        --tracking-uri file:./mlruns --experiment churn --C 1.0

The grader runs exactly this command (with its own folders, version, experiment and C) and
then serves the artifact it wrote with your app.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from sklearn.pipeline import Pipeline

from churn_api import FEATURES, TARGET  # noqa: F401  (you will need them)


def build_model(C: float = 1.0) -> Pipeline:
    """Standardise the four FEATURES, then a LogisticRegression with strength C."""
    raise NotImplementedError("TODO: build the pipeline")


def train(data: pd.DataFrame, C: float = 1.0, seed: int = 0) -> tuple[Pipeline, dict[str, float]]:
    """Hold out 25% of the rows (stratified, random_state=seed), fit build_model(C) on the rest
    and return the model and {"train_roc_auc": ..., "val_roc_auc": ...}."""
    raise NotImplementedError("TODO: split, fit, evaluate")


def save(model: Pipeline, model_dir: str | Path, version: str) -> Path:
    """Create model_dir if needed and joblib.dump {"model": model, "version": version,
    "features": FEATURES} to model_dir/churn-<version>.joblib; return that path. Write nothing
    else into model_dir."""
    raise NotImplementedError("TODO: save a versioned artifact")


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
    # TODO: track the run in MLflow: mlflow.set_tracking_uri(args.tracking_uri),
    # mlflow.set_experiment(args.experiment), then ONE run (`with mlflow.start_run() as run:`)
    # logging the params C and model_version and the metrics train_roc_auc and val_roc_auc.
    # (A file: tracking URI needs os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true" with MLflow 3.)
    run_id = None
    summary = {"artifact": str(path), "run_id": run_id, **metrics}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
