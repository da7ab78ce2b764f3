"""Churn prediction service: training script and FastAPI app."""

FEATURES = ["tenure_months", "monthly_charges", "support_tickets", "contract_type"]
TARGET = "churned"
GROUP = "age_group"
