"""Hidden graders for month 1 (Python and data). Every expected value is computed here, with
pandas, from inputs made here: random frames, random text and a SQLite database the grader
builds and places in the job folder under an unpredictable name. Nothing the learner's
notebook printed is trusted, and nothing is computed in the kernel by grader code: the figure
is described by calling its own methods (learner claims, judged here), the PNG is decoded
here, and "the input is unchanged" is judged on the grader's frame fetched back after the call.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba

from mlgrade.grading import LearnerFailure, Ref, expect, expect_close, expect_type, points
from mlgrade.grading.child import run_budgeted
from mlgrade.grading.files import fresh_path, write_job_file
from mlgrade.grading.images import MAX_PIXELS, decode_png, png_size

AGE_BINS = [0, 25, 35, 50, 120]
AGE_LABELS = ["18-25", "26-35", "36-50", "51+"]


# --------------------------------------------------------------------------- helpers
EDGE_AGES = [25.0, 26.0, 35.0, 36.0, 50.0, 51.0]  # each side of each bin edge


def _customers(rng: np.random.Generator, n: int, missing: bool = True) -> pd.DataFrame:
    """A customer table like the notebook's, with fresh values (and gaps when ``missing``);
    ages exactly on and next to each bin edge are always present. With gaps, one row misses
    both age and income, and the median of each column is never a whole number (an even count
    of present values whose middle two differ by one), so rounding the median, or taking the
    lower or upper middle value, changes the filled values under every seed."""
    age = rng.integers(18, 80, size=n).astype(float)
    edge_rows = rng.choice(n, size=len(EDGE_AGES), replace=False)
    age[edge_rows] = EDGE_AGES
    income = np.round(rng.normal(55_000, 15_000, size=n), 0)
    if missing:
        free = np.setdiff1d(np.arange(n), edge_rows)
        both = int(rng.choice(free))
        age[rng.choice(free, size=max(2, n // 6), replace=False)] = np.nan
        income[rng.choice(n, size=max(2, n // 5), replace=False)] = np.nan
        age[both] = income[both] = np.nan
        _half_median(rng, age, free)
        _half_median(rng, income, np.arange(n))
    return pd.DataFrame({
        "customer_id": np.arange(1, n + 1),
        "age": age,
        "income": income,
        "city": rng.choice(["Leeds", "Porto", "Lyon", "Graz", "Cork"], size=n),
        "purchased": rng.integers(0, 2, size=n),
    })


def _half_median(rng: np.random.Generator, col: np.ndarray, movable: np.ndarray) -> None:
    """Edit ``col`` in place (only rows in ``movable``) so that its present values number 2m
    and the m-th and (m+1)-th smallest are M and M + 1: the median is M + 0.5."""
    present = movable[~np.isnan(col[movable])]
    if np.count_nonzero(~np.isnan(col)) % 2:
        col[rng.choice(present)] = np.nan
        present = movable[~np.isnan(col[movable])]
    m = np.count_nonzero(~np.isnan(col)) // 2
    values = col[~np.isnan(col)]
    low_edge, high_edge = float(np.min(values)), float(np.max(values))
    cut = float(np.floor(np.median(values)))
    below = int(np.count_nonzero(values <= cut))
    if below > m:  # move some values from below the cut to above it
        rows = present[col[present] <= cut]
        for row in rng.choice(rows, size=below - m, replace=False):
            col[row] = float(rng.integers(int(cut) + 1, int(max(high_edge, cut + 1)) + 1))
    elif below < m:  # and the other way round
        rows = present[col[present] > cut]
        for row in rng.choice(rows, size=m - below, replace=False):
            col[row] = float(rng.integers(int(min(low_edge, cut)), int(cut) + 1))
    lower = present[col[present] <= cut]
    upper = present[col[present] > cut]
    if not np.any(col[~np.isnan(col)] == cut):
        col[rng.choice(lower)] = cut
    if not np.any(col[~np.isnan(col)] == cut + 1):
        col[rng.choice(upper)] = cut + 1


def _numbers(values: Any, message: str) -> np.ndarray:
    """Learner values as a float array, or a failed check with ``message`` (never a crash)."""
    try:
        out = np.asarray(values, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise LearnerFailure(message) from None
    return out


def _as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _stats_frame(rng: np.random.Generator) -> pd.DataFrame:
    """Numeric columns with random names and gaps, one complete int column, one text column."""
    n = int(rng.integers(40, 90))
    names = rng.choice(["height_cm", "weight_kg", "visits", "score", "tenure", "spend",
                        "clicks", "rating"], size=3, replace=False)
    frame = {}
    for i, name in enumerate(names):
        col = rng.normal(loc=rng.uniform(-50, 200), scale=rng.uniform(1, 30), size=n)
        if i < 2:  # two columns with gaps, one complete
            col[rng.choice(n, size=int(rng.integers(3, n // 3)), replace=False)] = np.nan
        frame[str(name)] = col
    frame["orders"] = rng.integers(0, 12, size=n)
    frame["segment"] = rng.choice(["retail", "business", "student"], size=n)
    return pd.DataFrame(frame)


def _column_stats(nb, rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    df = _stats_frame(rng)
    got = nb.call("column_stats", df)
    expect_type(got, dict, "column_stats should return a dict with one entry per numeric column")
    return df, got


def _judged_columns(df: pd.DataFrame, got: dict) -> list[str]:
    """The numeric columns of ``df`` that have an entry in ``got``. Which columns have one is
    test_column_stats_columns' question; the statistics tests judge the entries there are, but
    need the columns with gaps among them (that is where the statistics can go wrong)."""
    keys = {str(k) for k in got}
    numeric = [str(c) for c in df.select_dtypes("number").columns]
    gaps = [c for c in numeric if df[c].isna().any()]
    expect(bool(gaps) and all(c in keys for c in gaps),
           "column_stats has no entry for some numeric columns with missing values "
           f"({', '.join(c for c in gaps if c not in keys)}): give every numeric column of the "
           "frame it is given an entry.")
    return [c for c in numeric if c in keys]


def _stat(got: dict, col: str, key: str) -> float:
    entry = got.get(col)
    expect(isinstance(entry, dict) and key in entry,
           f"column_stats has no '{key}' for column '{col}': each numeric column maps to a dict "
           "with the keys 'mean', 'std' and 'null_pct'.")
    value = _as_float(entry[key])
    expect(value is not None, f"column_stats[col]['{key}'] should be a number.")
    return float(value)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Q1 column stats
@points(1, question="q1")
def test_column_stats_mean_std(nb, rng):
    """column_stats: mean and sample standard deviation of each numeric column, NaNs ignored"""
    df, got = _column_stats(nb, rng)
    for col in _judged_columns(df, got):
        mean, std = _stat(got, col, "mean"), _stat(got, col, "std")
        expect(np.isfinite(mean) and np.isfinite(std),
               f"column_stats gives NaN for '{col}', a column with missing values: skip missing "
               "values (pandas' .mean() and .std() do this for you).")
        expect_close(mean, float(df[col].mean()), f"the mean of '{col}' is wrong: average the "
                     "values that are present.", rtol=1e-9)
        population = float(df[col].std(ddof=0))
        expect(not np.isclose(std, population, rtol=1e-9) or df[col].count() < 2,
               f"the std of '{col}' is the population std (ddof=0, numpy's default): use the "
               "sample std, as pandas' .std() computes it.")
        expect_close(std, float(df[col].std()), f"the std of '{col}' is wrong.", rtol=1e-9)


@points(1, question="q1")
def test_column_stats_null_pct(nb, rng):
    """column_stats: null_pct is the percentage of missing values (0 to 100)"""
    df, got = _column_stats(nb, rng)
    for col in _judged_columns(df, got):
        pct = _stat(got, col, "null_pct")
        want = float(df[col].isna().mean() * 100)
        if want > 0:
            expect(not np.isclose(pct, want / 100, rtol=1e-9),
                   f"null_pct for '{col}' is a fraction (0 to 1): multiply by 100 for a "
                   "percentage.")
            expect(not np.isclose(pct, float(df[col].isna().sum()), rtol=1e-9),
                   f"null_pct for '{col}' is a count of missing values, not a percentage of "
                   "the rows.")
        expect_close(pct, want, f"null_pct for '{col}' is wrong: it is the share of rows where "
                     "the value is missing, times 100.", rtol=1e-9, atol=1e-9)


@points(1, question="q1")
def test_column_stats_columns(nb, rng):
    """column_stats covers exactly the numeric columns, whatever their names"""
    df, got = _column_stats(nb, rng)
    numeric = {str(c) for c in df.select_dtypes("number").columns}
    keys = {str(k) for k in got}
    expect(not (keys - numeric), "column_stats has entries for text columns: keep only numeric "
           "columns (df.select_dtypes('number')).")
    expect(keys == numeric, "column_stats is missing some numeric columns: use every numeric "
           "column of the frame it is given, not a fixed list of names.")
    for col in df.select_dtypes("number").columns:  # the right columns, with real entries:
        # one statistic of the three right is enough here (each has its own test)
        want = (float(df[col].mean()), float(df[col].std()), float(df[col].isna().mean() * 100))
        stats = [_stat(got, col, key) for key in ("mean", "std", "null_pct")]
        expect(any(bool(np.isclose(a, b, rtol=1e-9, atol=1e-12)) for a, b in zip(stats, want,
                                                                                  strict=True)),
               f"the entry of '{col}' is not that column's statistics.")


# --------------------------------------------------------------------------- Q2 cleaning
def _reference_clean(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in ("age", "income"):
        out[col] = out[col].fillna(df[col].median())
    out["age_group"] = pd.cut(out["age"], bins=AGE_BINS, labels=AGE_LABELS).astype(str)
    return out


def _cleaned(nb, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = _customers(rng, int(rng.integers(60, 120)))
    got = nb.call("clean_customers", df)
    expect_type(got, pd.DataFrame, "clean_customers should return a DataFrame")
    expect(len(got) == len(df), "clean_customers should keep every row (fill gaps, don't drop "
           "rows).")
    for col in ("age", "income", "age_group"):
        expect(col in got.columns, f"the cleaned frame has no '{col}' column.")
    return df, got


@points(1, question="q2")
def test_clean_imputes_median(nb, rng):
    """clean_customers fills missing age and income with the column median"""
    df, got = _cleaned(nb, rng)
    want = _reference_clean(df)
    for col in ("age", "income"):
        values = _numbers(got[col].to_numpy(), f"'{col}' of the cleaned frame should hold numbers.")
        expect(not np.isnan(values).any(), f"'{col}' still has missing values after cleaning.")
        gaps = df[col].isna().to_numpy()
        mean_filled = df[col].fillna(df[col].mean()).to_numpy()
        expect(not np.allclose(values[gaps], mean_filled[gaps]) or
               np.isclose(df[col].mean(), df[col].median()),
               f"missing '{col}' values were filled with the mean: use the median, which "
               "outliers do not drag around.")
        expect_close(values[~gaps], df[col].to_numpy()[~gaps], f"values of '{col}' that were "
                     "present have changed: only fill the gaps.", rtol=1e-12)
        expect_close(values, want[col].to_numpy(), f"missing '{col}' values should be filled "
                     "with the median of that column in the frame you are given.", rtol=1e-12)


@points(1, question="q2")
def test_clean_age_groups(nb, rng):
    """clean_customers bins ages with pd.cut into the four labelled groups"""
    df, got = _cleaned(nb, rng)
    want = _reference_clean(df)["age_group"].tolist()
    labels = [str(v) for v in got["age_group"].tolist()]
    expect(set(labels) <= set(AGE_LABELS), "age_group should hold the labels "
           "'18-25', '26-35', '36-50' and '51+' (pass labels= to pd.cut), one per row.")
    expect(labels == want, "some ages land in the wrong group: use pd.cut with the bin edges "
           "[0, 25, 35, 50, 120], right edge included (25 is in '18-25', 26 in '26-35'), AFTER "
           "filling missing ages.")


def _same_frame(got: object, want: pd.DataFrame) -> bool:
    """Same columns in the same order and the same values (NaN equal to NaN), judged here."""
    if not isinstance(got, pd.DataFrame) or [str(c) for c in got.columns] != [str(c) for c in
                                                                              want.columns]:
        return False
    if got.shape != want.shape:
        return False
    for col in want.columns:
        a, b = got[col].to_numpy(), want[col].to_numpy()
        if a.dtype.kind in "fiu" and b.dtype.kind in "fiu":
            if not np.array_equal(a.astype(float), b.astype(float), equal_nan=True):
                return False
        elif [str(v) for v in a] != [str(v) for v in b]:
            return False
    return True


@points(1, question="q2")
def test_clean_does_not_modify_input(nb, rng):
    """clean_customers returns a new frame and leaves its input untouched"""
    df = _customers(rng, 40)
    # the grader's frame stays in the kernel; after the call it is fetched back and compared
    # here with the grader's own copy (no comparison runs in the kernel)
    kept = nb.eval_untrusted("df", df=df, keep=True, what="the grader's frame")
    cleaned = nb.call("clean_customers", kept)
    after = nb.get(kept)
    expect(_same_frame(after, df), "clean_customers changed the frame it was given (fillna "
           "with inplace=True, or adding a column to it): work on df.copy() and return that.")
    # leaving the input alone is only worth something together with a cleaned frame: every
    # row, no gaps left, the values that were present kept (which fill value is right is
    # test_clean_imputes_median's question)
    ok = (isinstance(cleaned, pd.DataFrame) and len(cleaned) == len(df)
          and all(col in cleaned.columns for col in ("age", "income")))
    for col in ("age", "income"):
        if ok:
            values = _numbers(cleaned[col].to_numpy(), f"'{col}' should hold numbers.")
            present = df[col].notna().to_numpy()
            ok = bool(not np.isnan(values).any()
                      and np.allclose(values[present], df[col].to_numpy()[present]))
    expect(ok, "clean_customers left its input alone but did not return the cleaned frame: "
           "return a copy with every row, missing age and income filled.")


@points(1, question="q2")
def test_purchase_rate_by_group(nb, rng):
    """purchase_rate_by_group: share of customers who purchased, per age group"""
    clean = _reference_clean(_customers(rng, int(rng.integers(80, 140))))
    got = nb.call("purchase_rate_by_group", clean)
    expect_type(got, pd.Series, "purchase_rate_by_group should return a Series indexed by "
                "age group")
    grouped = clean.groupby("age_group")["purchased"]
    want = grouped.mean()
    rates = {str(k): _as_float(v) for k, v in got.items()
             if not (isinstance(v, float) and np.isnan(v))}
    expect(set(rates) == set(want.index), "purchase_rate_by_group should have one entry per "
           "age group, indexed by the age_group labels (group by 'age_group').")
    values = np.array([rates[k] if rates[k] is not None else np.nan for k in want.index])
    if np.allclose(values, want.to_numpy() * 100):
        expect(False, "the rates are percentages: return fractions between 0 and 1.")
    if np.allclose(values, grouped.sum().to_numpy()):
        expect(False, "purchase_rate_by_group returns the number of purchases per group: the "
                      "rate is the mean of 'purchased'.")
    expect_close(values, want.to_numpy(), "the purchase rates are wrong: average 'purchased' "
                 "within each age group.", rtol=1e-9)


# --------------------------------------------------------------------------- Q3 SQL
FIRST = ["Ana", "Ben", "Chloe", "Dev", "Eve", "Farid", "Gita", "Hugo", "Ines", "Jon", "Kai",
         "Lena", "Mo", "Nia", "Omar", "Pia"]
LAST = ["Smith", "Khan", "Silva", "Novak", "Berg", "Okafor", "Rossi", "Meyer"]
QUOTED = ["Siobhan O'Brien", 'Dana "DJ" Jones']
CITIES = ["Leeds", "Porto", "Lyon", "Graz", "Turku", "Cork"]
# two customers, each alone in a city of their own, with identical totals: a tie in revenue
# (broken by city) and in big_spenders (broken by name); the lower id has the later name
TIED = [("Zoe Adler", "Zadar"), ("Abe Zimmer", "Aalborg")]


def _amounts(rng: np.random.Generator, n: int) -> np.ndarray:
    """Order amounts in quarters: every sum is exact, so ties and the HAVING edge are exact
    whatever order SQLite adds them up in."""
    return rng.integers(20, 1600, size=n) / 4


def _insert(path: Path, customers: pd.DataFrame, orders: pd.DataFrame) -> None:
    con = sqlite3.connect(path)
    try:
        con.execute("CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                    " city TEXT NOT NULL)")
        # INTEGER PRIMARY KEY DESC is the starter's integer primary key, but (a documented
        # SQLite quirk) not an alias of the rowid: rows stay in insertion order, so a table
        # scan does not hand the orders over sorted by order_id, and a query that forgets the
        # order_id tie-break returns the tie in the order the grader inserted it (the wrong one)
        con.execute("CREATE TABLE orders (order_id INTEGER PRIMARY KEY DESC, customer_id INTEGER "
                    "NOT NULL REFERENCES customers(customer_id), order_date TEXT NOT NULL, "
                    "amount REAL NOT NULL)")
        con.executemany("INSERT INTO customers VALUES (?, ?, ?)",
                        [(int(a), str(b), str(c)) for a, b, c in customers.itertuples(index=False)])
        con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)",
                        [(int(a), int(b), str(c), float(d))
                         for a, b, c, d in orders.itertuples(index=False)])
        con.commit()
    finally:
        con.close()


def _shop_db(job_dir: Path, rng: np.random.Generator) -> tuple[str, pd.DataFrame, pd.DataFrame, str]:
    """A fresh shop database in the job folder; returns its relative name, its rows and a
    `target` customer whose name has decoys (the same name in lower case, and a longer name
    that contains it) and who placed an order on one day and two later on another day, the
    one with the larger order_id stored first. The customers with quotes in their names each
    placed two orders on different days (no tie there)."""
    pairs = rng.choice(len(FIRST) * len(LAST), size=int(rng.integers(18, 26)), replace=False)
    names = [f"{FIRST[p // len(LAST)]} {LAST[p % len(LAST)]}" for p in pairs]
    target = names[0]
    names = names + QUOTED + [target.lower(), f"{target}son"]
    rng.shuffle(names)
    customers = pd.DataFrame({
        "customer_id": np.arange(1, len(names) + 1),
        "name": names,
        "city": rng.choice(CITIES, size=len(names)),
    })
    for name, city in TIED:
        customers.loc[len(customers)] = [len(customers) + 1, name, city]
    # one customer, in a city of their own, never orders: an inner join must drop that city
    customers.loc[len(customers)] = [len(customers) + 1, "Quinn Lowe", "Bergen"]
    ids = dict(zip(customers["name"], customers["customer_id"], strict=True))
    # the quoted customers order only their own two orders (on two days: no tie to break)
    regular = np.setdiff1d(customers["customer_id"].to_numpy()[:-3], [ids[q] for q in QUOTED])
    n_orders = int(rng.integers(90, 150))
    decoys = [ids[target.lower()], ids[f"{target}son"]]
    owner = np.concatenate([rng.choice(regular, size=n_orders),
                            np.repeat([ids[q] for q in QUOTED], 2), decoys, [ids[target]] * 3])
    days = rng.integers(0, 365, size=len(owner))
    quoted = n_orders + 2 * np.arange(len(QUOTED))  # first order of each quoted customer
    days[quoted + 1] = (days[quoted] + rng.integers(1, 364, size=len(QUOTED))) % 365
    days[-3] = rng.integers(0, 180)  # the target: one order, then two on one later day
    days[-2:] = rng.integers(days[-3] + 1, 365)
    amounts = _amounts(rng, len(owner))
    order_ids = rng.permutation(np.arange(1000, 1000 + len(owner)))
    if order_ids[-2] < order_ids[-1]:  # the tie is stored larger order_id first
        order_ids[-2:] = order_ids[-1], order_ids[-2]
    orders = pd.DataFrame({
        "order_id": order_ids,
        "customer_id": owner,
        "order_date": [str(np.datetime64("2025-01-01") + int(d)) for d in days],
        "amount": amounts,
    })
    totals = orders.groupby("customer_id")["amount"].sum()
    tie = float(np.quantile(totals, 0.5)) + float(rng.integers(1, 400)) / 4
    for i, (name, _city) in enumerate(TIED):
        orders.loc[len(orders)] = [2000 + i, ids[name], "2025-06-01", tie]
    path = fresh_path(job_dir, "shop_", ".db")  # unpredictable name, created O_EXCL|O_NOFOLLOW
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / "shop.db"
        _insert(built, customers, orders)
        write_job_file(path, built.read_bytes())
    return path.name, customers, orders, target


def _frame(got: object, columns: list[str], what: str) -> pd.DataFrame:
    expect_type(got, pd.DataFrame, f"{what} should return a pandas DataFrame "
                "(pd.read_sql_query does this)")
    assert isinstance(got, pd.DataFrame)
    expect([str(c) for c in got.columns] == columns,
           f"{what} should return exactly the columns {columns}, in that order (name them with "
           "AS in the SELECT).")
    return got


def _orders_of(customers: pd.DataFrame, orders: pd.DataFrame, name: str) -> pd.DataFrame:
    ids = customers.loc[customers["name"] == name, "customer_id"]
    mine = orders[orders["customer_id"].isin(ids)]
    return mine.sort_values(["order_date", "order_id"])[["order_id", "order_date", "amount"]]


def _same_orders(got: object, want: pd.DataFrame, message: str) -> None:
    frame = _frame(got, ["order_id", "order_date", "amount"], "customer_orders")
    expect(len(frame) == len(want), message)
    expect(_numbers(frame["order_id"], message).tolist() == want["order_id"].astype(float).tolist(),
           message)
    expect([str(v) for v in frame["order_date"]] == list(want["order_date"]), message)
    expect_close(_numbers(frame["amount"], message), want["amount"].to_numpy(), message,
                 rtol=1e-12)


@points(2, question="q3")
def test_revenue_by_city(nb, rng, job_dir):
    """revenue_by_city: JOIN, GROUP BY and ORDER BY (ties by city) on a database the grader built"""
    db, customers, orders, _target = _shop_db(job_dir, rng)
    got = _frame(nb.call("revenue_by_city", db), ["city", "n_orders", "revenue"],
                 "revenue_by_city")
    joined = orders.merge(customers, on="customer_id")
    want = (joined.groupby("city")["amount"].agg(n_orders="size", revenue="sum").reset_index()
            .sort_values(["revenue", "city"], ascending=[False, True]))
    cities = [str(c) for c in got["city"]]
    expect("Bergen" not in cities, "revenue_by_city lists a city whose customers placed no "
           "orders (a LEFT JOIN keeps it): join customers to orders with an inner JOIN.")
    expect(sorted(cities) == sorted(want["city"]) and len(set(cities)) == len(cities),
           "revenue_by_city should have one row per city with at least one order: join orders "
           "to customers and GROUP BY city.")
    by_city = got.set_index(got["city"].astype(str))
    counts = _numbers([by_city.loc[c, "n_orders"] for c in want["city"]], "n_orders should "
                      "hold numbers: COUNT the orders in each city.")
    expect(counts.tolist() == want["n_orders"].astype(float).tolist(),
           "n_orders is wrong for some cities: COUNT the orders in each city.")
    expect_close(_numbers([by_city.loc[c, "revenue"] for c in want["city"]], "revenue should "
                          "hold numbers: SUM the order amounts in each city."),
                 want["revenue"].to_numpy(), "revenue is wrong for some cities: SUM the order "
                 "amounts in each city.", rtol=1e-9)
    expect(cities == list(want["city"]), "the rows are in the wrong order: ORDER BY revenue "
           "DESC (highest first), then city (A to Z) for equal revenues.")


@points(1, question="q3")
def test_customer_orders(nb, rng, job_dir):
    """customer_orders: the orders of exactly that name, oldest first (ties by order_id)"""
    db, customers, orders, target = _shop_db(job_dir, rng)
    _same_orders(nb.call("customer_orders", db, target), _orders_of(customers, orders, target),
                 "customer_orders returns the wrong rows: select the orders of the customer "
                 "with exactly this name (WHERE name = ?, not LIKE: other customers' names "
                 "differ only in case or contain it) sorted by order_date, then order_id.")


@points(1, question="q3")
def test_customer_orders_names_with_quotes(nb, rng, job_dir):
    """customer_orders is parameterised: names with quotes work and cannot inject SQL"""
    db, customers, orders, _target = _shop_db(job_dir, rng)
    hint = ("pass the name as a parameter (a ? placeholder and params=(name,)) instead of "
            "formatting it into the SQL string.")
    for name in [*QUOTED, "nobody' OR '1'='1", 'nobody" OR "1"="1']:
        try:
            got = nb.call("customer_orders", db, name)
        except LearnerFailure as exc:
            if "not implemented" in str(exc) or "is not defined" in str(exc):
                raise
            raise LearnerFailure(f"customer_orders fails for a customer whose name contains a "
                                 f"quote: {hint}") from None
        _same_orders(got, _orders_of(customers, orders, name),
                     "customer_orders gives the wrong rows for a name containing a quote (or "
                     f"one that tries SQL injection): {hint}")


@points(1, question="q3")
def test_big_spenders(nb, rng, job_dir):
    """big_spenders: totals of at least min_total (a total exactly on it counts), biggest first"""
    db, customers, orders, _target = _shop_db(job_dir, rng)
    totals = (orders.merge(customers, on="customer_id").groupby("name")["amount"].sum()
              .rename("total").reset_index())
    # min_total is exactly some customer's total: "at least" must keep that customer
    ranked = np.sort(totals["total"].to_numpy())
    threshold = float(ranked[int(rng.integers(len(ranked) // 4, len(ranked) // 2))])
    want = (totals[totals["total"] >= threshold]
            .sort_values(["total", "name"], ascending=[False, True]))
    got = _frame(nb.call("big_spenders", db, threshold), ["name", "total"], "big_spenders")
    names = sorted(str(v) for v in got["name"])
    expect(names == sorted(want["name"]) or names != sorted(want["name"][want["total"] > threshold]),
           "big_spenders leaves out a customer whose total equals min_total exactly: \"at least\" "
           "means >=, not >.")
    expect(names == sorted(want["name"]), "big_spenders returns the wrong customers: total "
           "each customer's orders (GROUP BY), keep totals >= min_total (HAVING), biggest first.")
    expect_close(_numbers(got["total"], "big_spenders' totals should be numbers."),
                 want["total"].to_numpy(),
                 "big_spenders has the right customers but wrong totals or order: ORDER BY "
                 "total DESC, then name.", rtol=1e-9)
    expect([str(v) for v in got["name"]] == list(want["name"]),
           "big_spenders is not sorted by total, biggest first, then by name (A to Z) for "
           "equal totals.")


# --------------------------------------------------------------------------- Q4 plot
# Set up before each call, as a learner's earlier cells might: a current figure holding two
# marked points. A function that draws on its own `fig, ax = plt.subplots()` is not affected.
PLOTTED_BEFORE = """
import matplotlib.pyplot as plt_
plt_.figure()
plt_.plot([40.0, 60.0], [20000.0, 90000.0], "o")
result = None
"""
NO_MARKER = {"None", "none", "", " "}


def _rgba(value: Any) -> tuple[float, ...] | None:
    try:
        return tuple(round(float(c), 3) for c in to_rgba(value))
    except (ValueError, TypeError):
        return None


def _colours(raw: Any, n: int) -> list[tuple[float, ...] | None]:
    """Per-point RGBA from a collection's colour array (one row broadcasts to every point)."""
    try:
        arr = np.asarray(raw, dtype=float)
    except (TypeError, ValueError):
        return [None] * n
    if arr.ndim != 2 or arr.shape[1] != 4 or len(arr) == 0:
        return [None] * n
    rows = [tuple(round(float(c), 3) for c in row) for row in arr]
    return rows * n if len(rows) == 1 else rows if len(rows) == n else [None] * n


# Runs in the kernel: what the returned Figure (or Axes) says about itself, its own methods'
# answers gathered in one round trip (raw, as each call would have returned them). All of it is
# a learner claim, judged in the grader by _figure_claims.
FIGURE_FACTS = """
def _facts(obj):
    if hasattr(obj, 'get_axes'):
        fig = obj
    elif hasattr(obj, 'figure') and hasattr(obj.figure, 'get_axes'):
        fig = obj.figure
    else:
        return None
    axes = fig.get_axes()
    facts = {'suptitle': fig.get_suptitle(), 'axes': []}
    for i in range(min(int(len(axes)), 8)):
        ax = axes[i]
        label = ax.get_label()
        if str(label) == '<colorbar>':
            continue
        about = {'xlabel': ax.get_xlabel(), 'ylabel': ax.get_ylabel(), 'title': ax.get_title(),
                 'collections': [], 'lines': []}
        for j in range(min(int(len(ax.collections)), 16)):
            coll = ax.collections[j]
            about['collections'].append({'offsets': coll.get_offsets(),
                                         'face': coll.get_facecolors(),
                                         'edge': coll.get_edgecolors()})
        lines = ax.get_lines()
        for j in range(min(int(len(lines)), 16)):
            line = lines[j]
            about['lines'].append({'marker': line.get_marker(), 'x': line.get_xdata(),
                                   'y': line.get_ydata(), 'alpha': line.get_alpha(),
                                   'face': line.get_markerfacecolor(),
                                   'edge': line.get_markeredgecolor()})
        facts['axes'].append(about)
    return facts

result = _facts(obj)
"""


def _figure_claims(nb, obj: Ref) -> dict[str, Any] | None:
    """What the returned Figure (or Axes) says about itself, from its own methods' answers
    (gathered in the kernel in one round trip, FIGURE_FACTS): plain data the learner controls,
    judged in the grader like any answer."""
    described = nb.describe(obj)
    mro = described.get("mro") if isinstance(described, dict) else None
    is_figure = isinstance(mro, list) and "matplotlib.figure.Figure" in mro
    facts = nb.eval_untrusted(FIGURE_FACTS, obj=obj, what="the figure scatter_plot returned")
    if facts is None:
        return None
    claims: dict[str, Any] = {"xlabels": [], "ylabels": [], "titles": [], "points": [],
                              "colours": [], "is_figure": is_figure}
    claims["titles"].append(str(facts["suptitle"]))
    for ax in facts["axes"]:
        claims["xlabels"].append(str(ax["xlabel"]))
        claims["ylabels"].append(str(ax["ylabel"]))
        claims["titles"].append(str(ax["title"]))
        for coll in ax["collections"]:
            offsets = np.asarray(coll["offsets"], dtype=float)
            if offsets.ndim != 2 or offsets.shape[1] != 2:
                continue
            colours = _colours(coll["face"], len(offsets))
            if all(c is None or c[3] == 0 for c in colours):  # hollow markers: edge colour
                colours = _colours(coll["edge"], len(offsets))
            claims["points"].extend(offsets.tolist())
            claims["colours"].extend(colours)
        for line in ax["lines"]:
            if str(line["marker"]) in NO_MARKER:
                continue
            xs = np.asarray(line["x"], dtype=float).ravel()
            ys = np.asarray(line["y"], dtype=float).ravel()
            if xs.shape != ys.shape:
                continue
            # a line's markers are drawn in its marker colours with the line's own alpha
            # (ax.plot(..., "o", alpha=0.5)); hollow markers show their edge colour
            alpha = line["alpha"]
            colour = _rgba(line["face"])
            if colour is None or colour[3] == 0:
                colour = _rgba(line["edge"])
            if colour is not None and isinstance(alpha, (int, float)) \
                    and not isinstance(alpha, bool) and 0 <= alpha <= 1:
                colour = (*colour[:3], round(float(alpha), 3))  # replaces, as drawn
            claims["points"].extend(np.column_stack([xs, ys]).tolist())
            claims["colours"].extend([colour] * len(xs))
    return claims


@pytest.fixture(scope="module")
def plotted(nb, seed) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    """One call of scatter_plot (and one description of its figure) that the Q4 tests share."""
    try:
        return _plot(nb, np.random.default_rng([seed, 4]))
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError):
        # the answers are the learner's: one of an odd type is their failure, not the grader's
        raise LearnerFailure("the figure scatter_plot returned could not be read (its methods "
                             "gave values of unexpected types): return the matplotlib Figure "
                             "from fig, ax = plt.subplots().") from None


def _plot(nb, rng: np.random.Generator) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    df = _customers(rng, int(rng.integers(30, 70)), missing=False)
    path = f"scatter_{int(rng.integers(10**9))}.png"
    nb.eval_untrusted(PLOTTED_BEFORE, what="setting up a figure before scatter_plot")
    fig = nb.call("scatter_plot", df, path, keep=True)
    info = _figure_claims(nb, fig)
    expect(info is not None, "scatter_plot should return the matplotlib Figure it drew "
           "(e.g. fig, ax = plt.subplots() ... return fig).")
    assert info is not None
    return df, path, info


def _check_png_header(data: bytes) -> None:
    """A PNG of an ordinary size, judged from its header before anything is decoded."""
    size = png_size(data)
    expect(size is not None, "the saved file is not a PNG image: save with fig.savefig(path) "
           "(the .png extension picks the format) and don't force another format.")
    assert size is not None
    width, height = size
    expect(100 <= width <= 8000 and 100 <= height <= 8000 and width * height <= MAX_PIXELS,
           f"the saved PNG is {width} x {height} pixels (the grader's limit is "
           f"{MAX_PIXELS:,} pixels): save the whole figure at an ordinary size.")


def _pixel_colours(data: bytes) -> tuple[np.ndarray, np.ndarray, bool]:
    """Decoded and summed up in a child process under the grader's budget: the image's distinct
    colours, their pixel counts, and whether anything is drawn."""
    try:
        pixels = decode_png(data)
    except LearnerFailure:
        raise LearnerFailure("the saved file is not a readable PNG image (corrupt or "
                             "truncated): save it with fig.savefig(path).") from None
    packed = ((pixels[..., 0].astype(np.uint32) << 16) | (pixels[..., 1].astype(np.uint32) << 8)
              | pixels[..., 2])
    codes, counts = np.unique(packed, return_counts=True)
    values = np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=1)
    first = pixels[0, 0].astype(np.int16)
    drawn = np.zeros(packed.shape, dtype=bool)
    for channel in range(3):  # one channel at a time: int16 copies of a third of the image
        drawn |= np.abs(pixels[..., channel].astype(np.int16) - first[channel]) > 24
    return values.astype(np.int64), counts, bool(drawn.mean() > 0.01 and len(codes) >= 3)


def _shows(colours: tuple[np.ndarray, np.ndarray], rgba: tuple[float, ...]) -> bool:
    """Whether at least 3 pixels have this colour, drawn opaque or blended over the background
    (white, or the image's most common colour, e.g. a grey axes face). ``colours`` are the
    image's distinct colours and their pixel counts."""
    values, counts = colours
    backgrounds = [np.array([255.0, 255.0, 255.0]), values[int(np.argmax(counts))].astype(float)]
    alpha = float(rgba[3]) if rgba[3] > 0 else 1.0
    for bg in backgrounds:
        want = alpha * 255.0 * np.array(rgba[:3]) + (1 - alpha) * bg
        close = np.max(np.abs(values.astype(float) - want), axis=1) <= 4
        if int(counts[close].sum()) >= 3:
            return True
    return False


# decoded once per path (the Q4 tests share one figure): the distinct colours and their pixel
# counts, and whether anything is drawn
_IMAGES: dict[str, tuple[tuple[np.ndarray, np.ndarray], bool]] = {}


def _saved_image(nb, path: str, why: str) -> tuple[np.ndarray, np.ndarray]:
    """The saved PNG, decoded here; it must show a drawing (not a blank canvas). ``why`` says
    what the test needs it for, for the learner. Returns its distinct colours and counts."""
    if path not in _IMAGES:
        try:
            data = nb.read_file(path)
        except LearnerFailure:
            raise LearnerFailure(f"scatter_plot did not save a file at the path it was given "
                                 f"({why}): call fig.savefig(path).") from None
        _check_png_header(data)
        values, counts, drawn_ok = run_budgeted(lambda: _pixel_colours(data),
                                                what="the saved PNG", memory_mb=512,
                                                failed="could not be decoded")
        _IMAGES[path] = ((values, counts), drawn_ok)
    colours, drawn_ok = _IMAGES[path]
    expect(drawn_ok, f"the saved PNG is blank ({why}): save the figure after drawing on it.")
    return colours


@points(1, question="q4")
def test_plot_saved_as_png(nb, plotted):
    """scatter_plot saves a real PNG file at the path it is given and returns the Figure"""
    _df, path, info = plotted
    _saved_image(nb, path, "it should hold the plot")
    expect(info["is_figure"], "scatter_plot saved the plot but did not return the Figure (it "
           "returned an Axes or something else): return fig from fig, ax = plt.subplots().")


@points(1, question="q4")
def test_plot_axes_labelled(nb, plotted):
    """scatter_plot labels its axes: age on x, income on y, and a title"""
    _df, path, info = plotted
    # what the figure says about its labels is the learner's claim: it counts for a figure
    # that was really drawn and saved
    _saved_image(nb, path, "the labels are checked on the figure you saved")
    xlabels, ylabels = info["xlabels"], info["ylabels"]
    expect(len(xlabels) >= 1, "the figure has no axes: draw the scatter plot on it.")
    expect(all(label.strip() for label in xlabels + ylabels),
           "the axes have no labels: call ax.set_xlabel(...) and ax.set_ylabel(...).")
    expect(any("age" in x.lower() for x in xlabels) and any("income" in y.lower()
                                                              for y in ylabels),
           "the axis labels should name what is plotted: age on the x axis, income on the y axis.")
    expect(any(t.strip() for t in info["titles"]), "give the plot a title (ax.set_title).")


@points(1, question="q4")
def test_plot_points(nb, plotted):
    """scatter_plot draws one point per customer at (age, income), coloured by purchased"""
    df, path, info = plotted
    pts = np.asarray(info["points"], dtype=float).reshape(-1, 2)
    expect(len(pts) == len(df), f"the figure shows {len(pts)} points for {len(df)} customers: "
           "plot every row once, on the figure your function creates (fig, ax = plt.subplots(); "
           "draw on ax, not on plt's current figure).")
    xs, ys = np.sort(pts[:, 0]), np.sort(pts[:, 1])
    age, income = np.sort(df["age"].to_numpy(float)), np.sort(df["income"].to_numpy(float))
    expect(not (np.allclose(xs, income) and np.allclose(ys, age)),
           "the axes are swapped: age goes on x, income on y.")
    expect(bool(np.allclose(xs, age) and np.allclose(ys, income)),
           "the points are not at (age, income) for each customer.")
    # colour is judged per point: each drawn point is matched to the customer(s) at its place
    classes: dict[tuple[float, float], set[int]] = {}
    for a, i, p in zip(df["age"], df["income"], df["purchased"], strict=True):
        classes.setdefault((float(a), float(i)), set()).add(int(p))
    seen: dict[int, set[tuple[float, ...] | None]] = {0: set(), 1: set()}
    for (x, y), colour in zip(pts.tolist(), info["colours"], strict=True):
        owners = classes.get((float(x), float(y)), set())
        if len(owners) == 1:
            seen[next(iter(owners))].add(colour)
    one_each = all(len(c) == 1 and None not in c for c in seen.values() if c)
    expect(one_each and not (seen[0] & seen[1]) and bool(seen[0]) and bool(seen[1]),
           "the points are not coloured by `purchased`: customers who purchased and those who "
           "did not should get two different colours (e.g. c=df[\"purchased\"]).")
    # what the figure says about itself is the learner's claim: the saved image must show it
    image = _saved_image(nb, path, "the points are checked on the figure you saved")
    for colours in seen.values():
        colour = next(iter(colours))
        assert colour is not None
        expect(_shows(image, colour), "the saved PNG does not show the coloured points the "
               "figure holds: save the figure you drew on, after drawing.")


# --------------------------------------------------------------------------- Q5 Python
VOCAB = ["data", "model", "python", "pandas", "loss", "train", "test", "feature", "query",
         "plot", "mean", "graph", "label", "batch"]
# digits and underscores separate words too: a word is a run of the letters a to z only
SEPARATORS = [" ", " ", " ", ", ", ". ", "! ", " - ", "\n", "? ", "_", "2", " 42 ", "/"]


def _text(rng: np.random.Generator, words: list[str]) -> str:
    parts = []
    for word in words:
        style = int(rng.integers(3))
        parts.append(word.upper() if style == 0 else word.title() if style == 1 else word)
        parts.append(str(rng.choice(SEPARATORS)))
    return "".join(parts)


def _expected_top(text: str, k: int) -> list[tuple[str, int]]:
    counts = Counter(re.findall(r"[a-z]+", text.lower()))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def _check_top(nb, text: str, k: int, message: str) -> None:
    got = nb.call("top_words", text, k)
    expect(isinstance(got, list), "top_words should return a list of (word, count) pairs.")
    pairs = []
    for item in got:
        expect(isinstance(item, tuple) and len(item) == 2,
               "each item of top_words' list should be a (word, count) tuple (got "
               f"{type(item).__name__}): e.g. the pairs of Counter.items(), or (word, count).")
        expect(isinstance(item[0], str), "each pair should start with the word, a string.")
        pairs.append((item[0], item[1]))
    expect(all(isinstance(c, int) and not isinstance(c, bool) for _, c in pairs),
           "the counts should be integers.")
    want = _expected_top(text, k)
    expect({w for w, _ in pairs} <= set(re.findall(r"[a-z]+", text.lower())),
           "top_words returns words that are not in the text as lower-case words: lower-case "
           "the text and strip punctuation before counting.")
    expect(pairs == want, message)


@points(1, question="q5")
def test_top_words(nb, rng):
    """top_words counts words case-insensitively, without punctuation, most common first"""
    k = int(rng.integers(3, 6))
    while True:  # no tie among the k + 1 most common words: ties have their own test
        words = [str(w) for w in rng.choice(VOCAB, size=int(rng.integers(60, 120)))]
        top = sorted(Counter(words).values(), reverse=True)[: k + 1]
        if len(set(top)) == len(top):
            break
    _check_top(nb, _text(rng, words), k, "top_words gives the wrong words or counts: count "
               "lower-case words (runs of letters a-z) and return the k most common.")


@points(1, question="q5")
def test_top_words_ties_and_short_texts(nb, rng):
    """top_words breaks ties alphabetically and copes with k larger than the vocabulary"""
    chosen = [str(w) for w in rng.choice(VOCAB, size=6, replace=False)]
    counts = [3, 3, 3, 2, 2, 1]
    while True:  # shuffle until first appearance is NOT alphabetical among tied words
        words = [w for w, c in zip(chosen, counts, strict=True) for _ in range(c)]
        rng.shuffle(words)
        first = list(dict.fromkeys(words))
        top = [w for w in first if chosen.index(w) < 3]
        if top != sorted(top):
            break
    text = _text(rng, words)
    message = ("top_words should sort by count (highest first) and break ties alphabetically "
               "(Counter.most_common keeps first-seen order instead): sort with a key.")
    _check_top(nb, text, 4, message)
    _check_top(nb, text, 6, "with k equal to the number of distinct words, top_words should "
               "return every word once, in order.")
    _check_top(nb, text, 10, "with k larger than the number of distinct words, top_words "
               "should return every word once, in order.")
    _check_top(nb, "", 3, "top_words('') should return an empty list.")
