"""The churn API: ``/health`` and ``/predict``, serving one versioned model artifact.

    MODEL_PATH=models/churn-1.0.0.joblib uvicorn churn_api.app:app

The grader calls create_app(model_path) itself (with the artifact your training script wrote,
and with a path where no file exists) and serves the app with uvicorn.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from churn_api import FEATURES  # noqa: F401  (you will need them)


class Customer(BaseModel):
    # TODO: the four features with their types and inclusive bounds: tenure_months int 0-120,
    # monthly_charges float 0-500, support_tickets int 0-50, contract_type int 0-2 (Field(ge=, le=))
    pass


def load_artifact(model_path: str | None) -> dict[str, Any] | None:
    """The artifact saved by churn_api.train.save, or None when there is no file there."""
    raise NotImplementedError("TODO: load the artifact with joblib")


def create_app(model_path: str | None) -> FastAPI:
    """The app. It must start even when there is no model file.

    - GET /health: {"status": "ok" or "degraded", "model_loaded": bool, "model_version": ...}
    - POST /predict with a Customer body: {"churn_probability": p, "model_version": ...} where p
      is the model's predict_proba(...)[0, 1] for one row with the columns in FEATURES order;
      HTTP 503 when no model is loaded; invalid bodies get FastAPI's 422.
    """
    raise NotImplementedError("TODO: build the FastAPI app")


app = create_app(os.environ.get("MODEL_PATH")) if os.environ.get("MODEL_PATH") else None
