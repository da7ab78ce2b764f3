"""Reads one MLflow run for the month 6 graders, in a child process (``run_isolated``), from
the grader's own copy of the learner's store. A module of its own so that the child imports
only MLflow, not the graders and everything they import."""

import os


def read_mlflow_run(store_uri, run_id):
    """The run ``run_id`` and its experiment as plain data."""
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 keeps its folder store opt-in
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store_uri)
    run = client.get_run(run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    return {"status": str(run.info.status), "experiment": str(experiment.name),
            "params": {str(k): str(v) for k, v in run.data.params.items()},
            "metrics": {str(k): float(v) for k, v in run.data.metrics.items()}}
