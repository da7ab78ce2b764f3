from fastapi.testclient import TestClient  # noqa: F401

from churn_api.app import create_app  # noqa: F401

# TODO: test /health (with the model_version), /predict, 422 on invalid input and 503 without a
# model (create_app on a path where no file exists)
