"""The churn API: ``/health`` and ``/predict``, serving one versioned model artifact.

    MODEL_PATH=models/churn-1.0.0.joblib uvicorn churn_api.app:app
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from churn_api import FEATURES


class Customer(BaseModel):
    tenure_months: int = Field(ge=0, le=120)
    monthly_charges: float = Field(ge=0, le=500)
    support_tickets: int = Field(ge=0, le=50)
    contract_type: int = Field(ge=0, le=2)


def load_artifact(model_path: str | None) -> dict[str, Any] | None:
    """The saved artifact (model and version), or None when there is no file."""
    if not model_path or not Path(model_path).is_file():
        return None
    return joblib.load(model_path)


def create_app(model_path: str | None) -> FastAPI:
    artifact = load_artifact(model_path)
    model = artifact["model"] if artifact else None
    version = artifact["version"] if artifact else None
    app = FastAPI(title="churn-api")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok" if model is not None else "degraded",
                "model_loaded": model is not None, "model_version": version}

    @app.post("/predict")
    def predict(customer: Customer) -> dict[str, Any]:
        if model is None:
            raise HTTPException(status_code=503, detail="no model loaded")
        row = pd.DataFrame([[getattr(customer, f) for f in FEATURES]], columns=FEATURES)
        p = float(model.predict_proba(row)[0, 1])
        return {"churn_probability": p, "model_version": version}

    return app


app = create_app(os.environ.get("MODEL_PATH"))
