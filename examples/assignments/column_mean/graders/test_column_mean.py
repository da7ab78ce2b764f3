"""Hidden graders for the column_mean example. Expected values are computed here."""

import numpy as np
import pandas as pd

from mlgrade.grading import expect_close, points


def _frame(rng, n):
    values = rng.normal(50, 10, size=n)
    values[rng.choice(n, size=n // 4, replace=False)] = np.nan
    return pd.DataFrame({"id": np.arange(n), "score": values})


@points(1, question="q1")
def test_column_mean_random_frames(nb, rng):
    """column_mean on fresh DataFrames"""
    for n in (5, 17, 60):
        frame = _frame(rng, n).fillna(0.0)
        expect_close(nb.call("column_mean", frame, "score"), float(frame["score"].mean()),
                     "column_mean gives a wrong value: add up the column and divide by the "
                     "number of rows.")


@points(1, question="q1")
def test_column_mean_skips_missing(nb, rng):
    """column_mean ignores missing values"""
    frame = _frame(rng, 24)
    expect_close(nb.call("column_mean", frame, "score"), float(np.nanmean(frame["score"])),
                 "column_mean is wrong when values are missing: skip NaN instead of counting "
                 "it as 0 (divide by the number of values present).")


@points(1, question="q2")
def test_average_price(nb, assignment_dir):
    """average_price is the mean price in data/prices.csv"""
    prices = pd.read_csv(assignment_dir / "data" / "prices.csv")["price"]
    expect_close(nb.get("average_price"), float(prices.mean()),
                 "average_price is off: read data/prices.csv and use your column_mean on its "
                 "`price` column.")
