"""Month 1 graders are tested like code: known-wrong solutions (the usual pandas, SQL and
plotting mistakes) lose exactly the points they should, with a hint that names the mistake; a
correct solution written differently earns full marks; the reference earns full marks twice
with the same scores and the starter earns zero (through `mlgrade validate`'s checks)."""

from __future__ import annotations

import pytest
from tests.conftest import (
    failed_tests,
    feedback_by_test,
    mutant,
    notebook_from_cells,
    validated_runs,
)

pytestmark = [pytest.mark.kernel]

ALL_TESTS = {
    "test_column_stats_mean_std", "test_column_stats_null_pct", "test_column_stats_columns",
    "test_clean_imputes_median", "test_clean_age_groups", "test_clean_does_not_modify_input",
    "test_purchase_rate_by_group", "test_revenue_by_city", "test_customer_orders",
    "test_customer_orders_names_with_quotes", "test_big_spenders", "test_plot_saved_as_png",
    "test_plot_axes_labelled", "test_plot_points", "test_top_words",
    "test_top_words_ties_and_short_texts",
}
TOTAL = 17

# --- np.std (population std) and a fraction instead of a percentage -------------------------
STATS_NUMPY_DEFAULTS = '''
def column_stats(df):
    out = {}
    for col in df.select_dtypes("number").columns:
        values = df[col].to_numpy(dtype=float)
        present = values[~np.isnan(values)]
        out[col] = {"mean": present.mean(), "std": np.std(present),
                    "null_pct": np.isnan(values).mean()}
    return out
'''

# --- fillna(inplace=True) on the caller's frame, and income filled with the mean -------------
CLEAN_IN_PLACE_WITH_MEAN = '''
AGE_BINS = [0, 25, 35, 50, 120]
AGE_LABELS = ["18-25", "26-35", "36-50", "51+"]


def clean_customers(df):
    df.fillna({"age": df["age"].median()}, inplace=True)
    df["income"] = df["income"].fillna(df["income"].mean())
    df["age_group"] = pd.cut(df["age"], bins=AGE_BINS, labels=AGE_LABELS)
    return df


def purchase_rate_by_group(df):
    return df.groupby("age_group", observed=True)["purchased"].mean() * 100
'''

# --- Counter.most_common: ties come out in first-seen order ---------------------------------
TOP_WORDS_MOST_COMMON = '''
def top_words(text, k):
    return Counter(re.findall(r"[a-z]+", text.lower())).most_common(k)
'''

# --- SQL built with f-strings, and a LEFT JOIN that keeps cities without orders -------------
SQL_FORMATTED = '''
def _query(db_path, sql):
    con = sqlite3.connect(db_path)
    try:
        return pd.read_sql_query(sql, con)
    finally:
        con.close()


def revenue_by_city(db_path):
    return _query(db_path, """
        SELECT c.city AS city, COUNT(o.order_id) AS n_orders, SUM(o.amount) AS revenue
        FROM customers AS c LEFT JOIN orders AS o ON o.customer_id = c.customer_id
        GROUP BY c.city ORDER BY revenue DESC, city""")


def customer_orders(db_path, name):
    return _query(db_path, f"""
        SELECT o.order_id AS order_id, o.order_date AS order_date, o.amount AS amount
        FROM orders AS o JOIN customers AS c ON c.customer_id = o.customer_id
        WHERE c.name = '{name}' ORDER BY o.order_date, o.order_id""")


def big_spenders(db_path, min_total):
    return _query(db_path, f"""
        SELECT c.name AS name, SUM(o.amount) AS total
        FROM customers AS c JOIN orders AS o ON o.customer_id = c.customer_id
        GROUP BY c.customer_id, c.name HAVING SUM(o.amount) >= {min_total}
        ORDER BY total DESC, name""")
'''

# --- x and y swapped (labels still say age/income), saved as JPEG ---------------------------
PLOT_SWAPPED_JPEG = '''
def scatter_plot(df, path):
    fig, ax = plt.subplots()
    ax.scatter(df["income"], df["age"], c=df["purchased"])
    ax.set_xlabel("Age")
    ax.set_ylabel("Income")
    ax.set_title("Customers")
    fig.savefig(path, format="jpeg")
    return fig
'''

# --- numbers copied from a run on the sample data -------------------------------------------
HARD_CODED = '''
def column_stats(df):
    return {"customer_id": {"mean": 20.5, "std": 11.7, "null_pct": 0.0},
            "age": {"mean": 44.1, "std": 16.2, "null_pct": 15.0},
            "income": {"mean": 50414.3, "std": 13170.6, "null_pct": 12.5},
            "purchased": {"mean": 0.45, "std": 0.5, "null_pct": 0.0}}
'''
HARD_CODED_RATES = '''
AGE_BINS = [0, 25, 35, 50, 120]
AGE_LABELS = ["18-25", "26-35", "36-50", "51+"]


def clean_customers(df):
    out = df.copy()
    for col in ["age", "income"]:
        out[col] = out[col].fillna(df[col].median())
    out["age_group"] = pd.cut(out["age"], bins=AGE_BINS, labels=AGE_LABELS)
    return out


def purchase_rate_by_group(df):
    return pd.Series({"18-25": 0.25, "26-35": 0.4, "36-50": 0.5, "51+": 0.55})
'''

# --- a correct solution written differently --------------------------------------------------
ALT_IMPORTS = '''
import re
import sqlite3

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
'''

ALT_PANDAS = '''
def column_stats(frame):
    result = {}
    for name in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[name]):
            col = frame[name]
            result[name] = dict(mean=col.mean(skipna=True), std=col.std(ddof=1),
                                null_pct=100.0 * int(col.isnull().sum()) / len(col))
    return result


def clean_customers(raw):
    medians = raw[["age", "income"]].median()
    cleaned = raw.assign(age=raw["age"].fillna(medians["age"]),
                         income=raw["income"].fillna(medians["income"]))
    cleaned["age_group"] = pd.cut(cleaned["age"], [0, 25, 35, 50, 120],
                                  labels=["18-25", "26-35", "36-50", "51+"]).astype(str)
    return cleaned


def purchase_rate_by_group(cleaned):
    table = cleaned.pivot_table(index="age_group", values="purchased", aggfunc="mean")
    return table["purchased"]
'''

ALT_SQL = '''
def run_sql(path, sql, params):
    con = sqlite3.connect(path)
    try:
        cursor = con.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return pd.DataFrame(cursor.fetchall(), columns=names)
    finally:
        con.close()


def revenue_by_city(path):
    sql = """
        WITH per_order AS (
            SELECT customers.city, orders.amount
            FROM orders INNER JOIN customers USING (customer_id))
        SELECT city, COUNT(*) AS n_orders, SUM(amount) AS revenue
        FROM per_order GROUP BY city ORDER BY 3 DESC, 1 ASC"""
    return run_sql(path, sql, {})


def customer_orders(path, who):
    sql = """
        SELECT order_id, order_date, amount FROM orders
        WHERE customer_id IN (SELECT customer_id FROM customers WHERE name = :who)
        ORDER BY order_date ASC, order_id ASC"""
    return run_sql(path, sql, {"who": who})


def big_spenders(path, threshold):
    sql = """
        SELECT name, total FROM (
            SELECT customers.name AS name, SUM(orders.amount) AS total
            FROM customers JOIN orders ON orders.customer_id = customers.customer_id
            GROUP BY customers.customer_id)
        WHERE total >= :threshold ORDER BY total DESC, name"""
    return run_sql(path, sql, {"threshold": threshold})
'''

ALT_PLOT_AND_WORDS = '''
def scatter_plot(df, path):
    ax = df.plot.scatter(x="age", y="income", c="purchased", colormap="viridis")
    ax.set_xlabel("customer age")
    ax.set_ylabel("yearly income (EUR)")
    ax.figure.suptitle("Who buys?")
    ax.figure.savefig(path, dpi=80)
    return ax


def top_words(text, k):
    counts = {}
    for word in re.split(r"[^a-z]+", text.lower()):
        if word:
            counts[word] = counts.get(word, 0) + 1
    ranked = sorted(counts, key=lambda w: (-counts[w], w))
    return [(w, counts[w]) for w in ranked[:k]]
'''




def test_numpy_defaults_in_place_cleaning_mean_income_percent_rates_and_most_common(grade):
    nb = mutant("month1", {"def column_stats": STATS_NUMPY_DEFAULTS,
                    "def clean_customers": CLEAN_IN_PLACE_WITH_MEAN,
                    "def top_words": TOP_WORDS_MOST_COMMON})
    result = grade("month1", nb)
    assert result.status == "graded"
    assert failed_tests(result) == {
        "test_column_stats_mean_std", "test_column_stats_null_pct",
        "test_clean_imputes_median", "test_clean_does_not_modify_input",
        "test_purchase_rate_by_group", "test_top_words_ties_and_short_texts"}
    feedback = feedback_by_test(result)
    assert "population std" in feedback["test_column_stats_mean_std"]
    assert "fraction" in feedback["test_column_stats_null_pct"]
    assert "filled with the mean" in feedback["test_clean_imputes_median"]
    assert "changed the frame it was given" in feedback["test_clean_does_not_modify_input"]
    assert "percentages" in feedback["test_purchase_rate_by_group"]
    assert "Counter.most_common" in feedback["test_top_words_ties_and_short_texts"]
    assert result.score == TOTAL - 6


def test_sql_formatted_values_left_join_and_swapped_jpeg_plot(grade):
    nb = mutant("month1", {"def _query": SQL_FORMATTED, "def scatter_plot": PLOT_SWAPPED_JPEG})
    result = grade("month1", nb)
    assert failed_tests(result) == {"test_revenue_by_city",
                                    "test_customer_orders_names_with_quotes",
                                    "test_plot_saved_as_png", "test_plot_points"}
    feedback = feedback_by_test(result)
    assert "LEFT JOIN" in feedback["test_revenue_by_city"]
    assert "? placeholder" in feedback["test_customer_orders_names_with_quotes"]
    assert "not a PNG" in feedback["test_plot_saved_as_png"]
    assert "swapped" in feedback["test_plot_points"]
    # formatting a *number* into the SQL gives the right rows: only quotes reveal it
    assert result.score == TOTAL - 5


def test_numbers_copied_from_a_run(grade):
    nb = mutant("month1", {"def column_stats": HARD_CODED, "def clean_customers": HARD_CODED_RATES})
    result = grade("month1", nb)
    assert failed_tests(result) == {"test_column_stats_mean_std", "test_column_stats_null_pct",
                                    "test_column_stats_columns", "test_purchase_rate_by_group"}


def test_correct_alternative_earns_full_marks(grade):
    nb = notebook_from_cells(ALT_IMPORTS, ALT_PANDAS, ALT_SQL, ALT_PLOT_AND_WORDS)
    result = grade("month1", nb)
    assert {t.id for t in result.tests} == ALL_TESTS
    assert [(t.id, t.feedback) for t in result.tests if t.status != "passed"] == []
    assert result.full_marks and result.score == TOTAL


@pytest.mark.slow
def test_reference_full_marks_twice_and_starter_zero():
    """Through `mlgrade validate`'s checks: full marks, deterministic, starter zero."""
    solution_run, again, starter = validated_runs("month1")
    assert solution_run.score == again.score == TOTAL and starter.score == 0
    assert {t.id for t in starter.tests} == ALL_TESTS
    assert all("not implemented yet" in t.feedback for t in starter.tests)
