"""Hidden graders for month 1 (Python and data). Every expected value is computed here, with
pandas, from inputs made here: random frames, random text and a SQLite database built in the
job folder with fresh rows. Nothing the learner's notebook printed is trusted."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from mlgrade.grading import LearnerFailure, expect, expect_close, expect_type, points

AGE_BINS = [0, 25, 35, 50, 120]
AGE_LABELS = ["18-25", "26-35", "36-50", "51+"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- helpers
def _customers(rng: np.random.Generator, n: int, missing: bool = True) -> pd.DataFrame:
    """A customer table like the notebook's, with fresh values (and gaps when ``missing``)."""
    age = rng.integers(18, 80, size=n).astype(float)
    income = np.round(rng.normal(55_000, 15_000, size=n), 0)
    if missing:
        age[rng.choice(n, size=max(2, n // 6), replace=False)] = np.nan
        income[rng.choice(n, size=max(2, n // 5), replace=False)] = np.nan
    return pd.DataFrame({
        "customer_id": np.arange(1, n + 1),
        "age": age,
        "income": income,
        "city": rng.choice(["Leeds", "Porto", "Lyon", "Graz", "Cork"], size=n),
        "purchased": rng.integers(0, 2, size=n),
    })


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
    for col in df.select_dtypes("number").columns:
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
    for col in df.select_dtypes("number").columns:
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
        values = np.asarray(got[col].to_numpy(), dtype=float)
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
           "[0, 25, 35, 50, 120] (right edge included) AFTER filling missing ages.")


@points(1, question="q2")
def test_clean_does_not_modify_input(nb, rng):
    """clean_customers returns a new frame and leaves its input untouched"""
    df = _customers(rng, 40)
    code = ("before = df.copy(deep=True)\n"
            "ns['clean_customers'](df)\n"
            "result = bool(df.equals(before)) and list(df.columns) == list(before.columns)\n")
    unchanged = nb.eval(code, df=df, what="`clean_customers(df)`")
    expect(unchanged is True, "clean_customers changed the frame it was given (fillna with "
           "inplace=True, or adding a column to it): work on df.copy() and return that.")


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


def _shop_db(job_dir: Path, rng: np.random.Generator) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """A fresh shop database in the job folder; returns its relative name and its rows."""
    pairs = rng.choice(len(FIRST) * len(LAST), size=int(rng.integers(18, 26)), replace=False)
    names = [f"{FIRST[p // len(LAST)]} {LAST[p % len(LAST)]}" for p in pairs] + QUOTED
    rng.shuffle(names)
    customers = pd.DataFrame({
        "customer_id": np.arange(1, len(names) + 1),
        "name": names,
        "city": rng.choice(CITIES, size=len(names)),
    })
    # one customer, in a city of their own, never orders: an inner join must drop that city
    customers.loc[len(customers)] = [len(customers) + 1, "Quinn Lowe", "Bergen"]
    buyers = customers["customer_id"].to_numpy()[:-1]
    n_orders = int(rng.integers(90, 150))
    owner = np.concatenate([rng.choice(buyers, size=n_orders),
                            customers.loc[customers["name"].isin(QUOTED), "customer_id"]
                            .repeat(2).to_numpy()])
    days = rng.integers(0, 365, size=len(owner))
    orders = pd.DataFrame({
        "order_id": rng.permutation(np.arange(1000, 1000 + len(owner))),
        "customer_id": owner,
        "order_date": [str(np.datetime64("2025-01-01") + int(d)) for d in days],
        "amount": np.round(rng.uniform(5, 400, size=len(owner)), 2),
    })
    name = f"shop_{int(rng.integers(10**9))}.db"
    con = sqlite3.connect(job_dir / name)
    try:
        con.execute("CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                    " city TEXT NOT NULL)")
        con.execute("CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER NOT "
                    "NULL REFERENCES customers(customer_id), order_date TEXT NOT NULL, "
                    "amount REAL NOT NULL)")
        con.executemany("INSERT INTO customers VALUES (?, ?, ?)",
                        [(int(a), str(b), str(c)) for a, b, c in customers.itertuples(index=False)])
        con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)",
                        [(int(a), int(b), str(c), float(d))
                         for a, b, c, d in orders.itertuples(index=False)])
        con.commit()
    finally:
        con.close()
    return name, customers, orders


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
    expect([int(v) for v in frame["order_id"]] == [int(v) for v in want["order_id"]], message)
    expect([str(v) for v in frame["order_date"]] == list(want["order_date"]), message)
    expect_close(np.asarray(frame["amount"], dtype=float), want["amount"].to_numpy(), message,
                 rtol=1e-12)


@points(2, question="q3")
def test_revenue_by_city(nb, rng, job_dir):
    """revenue_by_city: JOIN, GROUP BY and ORDER BY on a database the grader built"""
    db, customers, orders = _shop_db(job_dir, rng)
    got = _frame(nb.call("revenue_by_city", db), ["city", "n_orders", "revenue"],
                 "revenue_by_city")
    joined = orders.merge(customers, on="customer_id")
    want = (joined.groupby("city")["amount"].agg(n_orders="size", revenue="sum").reset_index()
            .sort_values(["revenue", "city"], ascending=[False, True]))
    cities = [str(c) for c in got["city"]]
    expect("Bergen" not in cities, "revenue_by_city lists a city whose customers placed no "
           "orders (a LEFT JOIN keeps it): join customers to orders with an inner JOIN.")
    expect(sorted(cities) == sorted(want["city"]), "revenue_by_city should have one row per "
           "city with at least one order: join orders to customers and GROUP BY city.")
    by_city = got.set_index(got["city"].astype(str))
    expect([int(by_city.loc[c, "n_orders"]) for c in want["city"]] == list(want["n_orders"]),
           "n_orders is wrong for some cities: COUNT the orders in each city.")
    expect_close(np.asarray([by_city.loc[c, "revenue"] for c in want["city"]], dtype=float),
                 want["revenue"].to_numpy(), "revenue is wrong for some cities: SUM the order "
                 "amounts in each city.", rtol=1e-9)
    expect(cities == list(want["city"]), "the rows are in the wrong order: ORDER BY revenue "
           "DESC (highest first), then city.")


@points(1, question="q3")
def test_customer_orders(nb, rng, job_dir):
    """customer_orders: one customer's orders, oldest first"""
    db, customers, orders = _shop_db(job_dir, rng)
    buyers = customers[customers["customer_id"].isin(orders["customer_id"])
                       & ~customers["name"].isin(QUOTED)]
    name = str(buyers["name"].iloc[int(rng.integers(len(buyers)))])
    _same_orders(nb.call("customer_orders", db, name), _orders_of(customers, orders, name),
                 "customer_orders returns the wrong rows: select that customer's orders (join "
                 "on customer_id, WHERE name = ?) sorted by order_date, then order_id.")


@points(1, question="q3")
def test_customer_orders_names_with_quotes(nb, rng, job_dir):
    """customer_orders is parameterised: names with quotes work and cannot inject SQL"""
    db, customers, orders = _shop_db(job_dir, rng)
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
    """big_spenders: GROUP BY with HAVING and a parameter, biggest first"""
    db, customers, orders = _shop_db(job_dir, rng)
    totals = (orders.merge(customers, on="customer_id").groupby("name")["amount"].sum()
              .rename("total").reset_index())
    threshold = float(np.round(np.quantile(totals["total"], rng.uniform(0.3, 0.7)), 2))
    want = (totals[totals["total"] >= threshold]
            .sort_values(["total", "name"], ascending=[False, True]))
    got = _frame(nb.call("big_spenders", db, threshold), ["name", "total"], "big_spenders")
    message = ("big_spenders returns the wrong customers: total each customer's orders "
               "(GROUP BY), keep totals >= min_total (HAVING), biggest first.")
    expect(sorted(str(v) for v in got["name"]) == sorted(want["name"]), message)
    expect_close(np.asarray(got["total"], dtype=float), want["total"].to_numpy(),
                 "big_spenders has the right customers but wrong totals or order: ORDER BY "
                 "total DESC, then name.", rtol=1e-9)
    expect([str(v) for v in got["name"]] == list(want["name"]),
           "big_spenders is not sorted by total, biggest first (then by name).")


# --------------------------------------------------------------------------- Q4 plot
FIGURE_INFO = """
fig = obj.figure if hasattr(obj, "get_xlabel") else obj
if fig is None or not hasattr(fig, "get_axes"):
    result = None
else:
    axes = [ax for ax in fig.get_axes() if ax.get_label() != "<colorbar>"]
    found = []
    for ax in axes:
        for coll in ax.collections:
            off = np.asarray(coll.get_offsets(), dtype=float)
            if off.ndim == 2 and off.shape[1] == 2:
                found.append(off)
        for line in ax.get_lines():
            if str(line.get_marker()) not in ("None", "none", "", " "):
                found.append(np.column_stack([np.asarray(line.get_xdata(), dtype=float),
                                              np.asarray(line.get_ydata(), dtype=float)]))
    result = {
        "xlabels": [str(ax.get_xlabel()) for ax in axes],
        "ylabels": [str(ax.get_ylabel()) for ax in axes],
        "titles": [str(ax.get_title()) for ax in axes] + [str(fig._suptitle.get_text())
                   if getattr(fig, "_suptitle", None) is not None else ""],
        "points": np.concatenate(found) if found else np.empty((0, 2)),
    }
"""


def _plot(nb, rng: np.random.Generator) -> tuple[pd.DataFrame, str, dict]:
    df = _customers(rng, int(rng.integers(30, 70)), missing=False)
    path = f"scatter_{int(rng.integers(10**9))}.png"
    fig = nb.call("scatter_plot", df, path, keep=True)
    info = nb.eval(FIGURE_INFO, obj=fig, what="the figure scatter_plot returned")
    expect(isinstance(info, dict), "scatter_plot should return the matplotlib Figure it drew "
           "(e.g. fig, ax = plt.subplots() ... return fig).")
    return df, path, info


@points(1, question="q4")
def test_plot_saved_as_png(nb, rng):
    """scatter_plot saves a real PNG file at the path it is given"""
    _df, path, _info = _plot(nb, rng)
    try:
        data = nb.read_file(path)
    except LearnerFailure:
        raise LearnerFailure("scatter_plot did not save a file at the path it was given: call "
                             "fig.savefig(path).") from None
    expect(data[:8] == PNG_MAGIC, "the saved file is not a PNG image: save with "
           "fig.savefig(path) (the .png extension picks the format) and don't force another "
           "format.")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    expect(width >= 100 and height >= 100, "the saved PNG is tiny: save the whole figure.")


@points(1, question="q4")
def test_plot_axes_labelled(nb, rng):
    """scatter_plot labels its axes: age on x, income on y"""
    _df, _path, info = _plot(nb, rng)
    xlabels, ylabels = info["xlabels"], info["ylabels"]
    expect(len(xlabels) >= 1, "the figure has no axes: draw the scatter plot on it.")
    expect(all(label.strip() for label in xlabels + ylabels),
           "the axes have no labels: call ax.set_xlabel(...) and ax.set_ylabel(...).")
    expect(any("age" in x.lower() for x in xlabels) and any("income" in y.lower()
                                                              for y in ylabels),
           "the axis labels should name what is plotted: age on the x axis, income on the y axis.")
    expect(any(t.strip() for t in info["titles"]), "give the plot a title (ax.set_title).")


@points(1, question="q4")
def test_plot_points(nb, rng):
    """scatter_plot draws one point per customer at (age, income)"""
    df, _path, info = _plot(nb, rng)
    pts = np.asarray(info["points"], dtype=float)
    expect(pts.ndim == 2 and len(pts) == len(df), f"the plot shows {len(pts)} points for "
           f"{len(df)} customers: plot every row once (no head(), no duplicate layers).")
    xs, ys = np.sort(pts[:, 0]), np.sort(pts[:, 1])
    age, income = np.sort(df["age"].to_numpy(float)), np.sort(df["income"].to_numpy(float))
    expect(not (np.allclose(xs, income) and np.allclose(ys, age)),
           "the axes are swapped: age goes on x, income on y.")
    expect(bool(np.allclose(xs, age) and np.allclose(ys, income)),
           "the points are not at (age, income) for each customer.")


# --------------------------------------------------------------------------- Q5 Python
VOCAB = ["data", "model", "python", "pandas", "loss", "train", "test", "feature", "query",
         "plot", "mean", "graph", "label", "batch"]
SEPARATORS = [" ", " ", " ", ", ", ". ", "! ", " - ", "\n", "? "]


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
        expect(isinstance(item, (list, tuple)) and len(item) == 2,
               "each item of top_words' list should be a (word, count) pair.")
        pairs.append((str(item[0]), item[1]))
    expect(all(isinstance(c, int) for _, c in pairs), "the counts should be integers.")
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
    _check_top(nb, text, 10, "with k larger than the number of distinct words, top_words "
               "should return every word once, in order.")
    _check_top(nb, "", 3, "top_words('') should return an empty list.")
