import pandas as pd
import pytest
from fastapi.testclient import TestClient

from churn_api.app import create_app
from churn_api.train import save, train

GOOD = {"tenure_months": 12, "monthly_charges": 70.5, "support_tickets": 2, "contract_type": 0}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    model, _ = train(pd.read_csv("data/customers.csv"))
    path = save(model, tmp_path_factory.mktemp("models"), "9.9.9")
    return TestClient(create_app(str(path)))


def test_health_reports_version(client):
    body = client.get("/health").json()
    assert body == {"status": "ok", "model_loaded": True, "model_version": "9.9.9"}


def test_predict(client):
    body = client.post("/predict", json=GOOD).json()
    assert 0 <= body["churn_probability"] <= 1 and body["model_version"] == "9.9.9"


@pytest.mark.parametrize("change", [{"tenure_months": -1}, {"contract_type": 3},
                                    {"monthly_charges": "a lot"}])
def test_invalid_input_is_422(client, change):
    assert client.post("/predict", json={**GOOD, **change}).status_code == 422


def test_no_model_is_503(tmp_path):
    client = TestClient(create_app(str(tmp_path / "missing.joblib")))
    assert client.post("/predict", json=GOOD).status_code == 503
    assert client.get("/health").json()["model_loaded"] is False
