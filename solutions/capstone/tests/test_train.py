import pandas as pd

from churn_api import FEATURES
from churn_api.train import main, save, train

DATA = "data/customers.csv"


def test_train_learns_something():
    model, metrics = train(pd.read_csv(DATA), C=1.0)
    assert metrics["val_roc_auc"] > 0.75
    assert model.predict_proba(pd.read_csv(DATA)[FEATURES].head(3)).shape == (3, 2)


def test_saved_artifact_is_versioned(tmp_path):
    model, _ = train(pd.read_csv(DATA))
    path = save(model, tmp_path, "2.3.4")
    assert path.name == "churn-2.3.4.joblib" and path.is_file()


def test_main_tracks_a_run(tmp_path):
    summary = main(["--data", DATA, "--model-dir", str(tmp_path / "m"), "--version", "0.1.0",
                    "--tracking-uri", (tmp_path / "mlruns").as_uri(), "--experiment", "t"])
    assert summary["run_id"] and (tmp_path / "m" / "churn-0.1.0.joblib").is_file()
