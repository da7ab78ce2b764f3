"""Reads the runs of one MLflow experiment for the capstone graders, in a child process
(``run_isolated``), from the grader's own copy of the learner's store. A module of its own so
that the child imports only MLflow, not the graders and everything they import."""

import os


def read_mlflow_runs(store_uri, experiment_name):
    """Every run of ``experiment_name`` as plain data (an empty list when it does not exist)."""
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 keeps its folder store opt-in
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    runs = client.search_runs([experiment.experiment_id], max_results=50)
    return [{"status": str(run.info.status),
             "params": {str(k): str(v) for k, v in run.data.params.items()},
             "metrics": {str(k): float(v) for k, v in run.data.metrics.items()}} for run in runs]
