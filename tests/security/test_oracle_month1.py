"""Design-aware red team for month 1: notebooks written by someone who has read the graders.

Month 1's graders once described the figure and checked "the input is unchanged" with grader
code run in the learner's kernel, and trusted the result. Now the figure is asked about itself
through its own methods (learner claims) and the claims must show in the PNG the grader decodes
itself; the grader's frame is kept in the kernel, fetched back after the call and compared here.
Each case is graded through the real pipeline in each tier and must earn exactly the points of
its honest parts, with an honest verdict and nothing left behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import mutant
from tests.security.oracle_attacks import HIJACK, assert_honest_verdict, grade_attack, starter_with
from tests.security.redteam_support import TIERS, assert_nothing_survived

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

ALL = {
    "test_column_stats_mean_std", "test_column_stats_null_pct", "test_column_stats_columns",
    "test_clean_imputes_median", "test_clean_age_groups", "test_clean_does_not_modify_input",
    "test_purchase_rate_by_group", "test_revenue_by_city", "test_customer_orders",
    "test_customer_orders_names_with_quotes", "test_big_spenders", "test_plot_saved_as_png",
    "test_plot_axes_labelled", "test_plot_points", "test_top_words",
    "test_top_words_ties_and_short_texts",
}
PLOT = {"test_plot_saved_as_png", "test_plot_axes_labelled", "test_plot_points"}

# cleans the caller's own frame, and makes pandas say that nothing changed: every frame
# equals every other, assert_frame_equal never fails
MUTATES_AND_HIDES_IT = '''
AGE_BINS = [0, 25, 35, 50, 120]
AGE_LABELS = ["18-25", "26-35", "36-50", "51+"]

pd.DataFrame.equals = lambda self, other: True
pd.testing.assert_frame_equal = lambda *args, **kwargs: None


def clean_customers(df):
    for col in ["age", "income"]:
        df[col] = df[col].fillna(df[col].median())
    df["age_group"] = pd.cut(df["age"], bins=AGE_BINS, labels=AGE_LABELS)
    return df


def purchase_rate_by_group(df):
    return df.groupby("age_group", observed=True)["purchased"].mean()
'''

# returns an object renamed to matplotlib's Figure that describes a perfect plot (labels,
# title, one point per customer at (age, income), two colours by purchased) it never drew,
# and saves an empty figure as the PNG
FORGED_FIGURE = '''
class _Collection:
    def __init__(self, df):
        self.df = df

    def get_offsets(self):
        return self.df[["age", "income"]].to_numpy(dtype=float)

    def get_facecolors(self):
        red, blue = [1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0]
        return np.array([red if p else blue for p in self.df["purchased"]])

    get_edgecolors = get_facecolors


class _Axes:
    def __init__(self, df):
        self.collections = [_Collection(df)]

    def get_label(self):
        return ""

    def get_xlabel(self):
        return "Age"

    def get_ylabel(self):
        return "Income"

    def get_title(self):
        return "Customers"

    def get_lines(self):
        return []


class _Figure:
    def __init__(self, df):
        self.axes = [_Axes(df)]

    def get_axes(self):
        return list(self.axes)

    def get_suptitle(self):
        return ""


_Figure.__name__ = _Figure.__qualname__ = "Figure"
_Figure.__module__ = "matplotlib.figure"


def scatter_plot(df, path):
    plt.figure().savefig(path)
    return _Figure(df)
'''

# draws one colour (with honest labels) but patches matplotlib so the collection claims the
# two colours of `purchased`
PATCHED_COLOURS = '''
import matplotlib.collections

_last = {}
_real_facecolors = matplotlib.collections.Collection.get_facecolors


def _claimed(self):
    df = _last.get("df")
    if df is None or len(df) != len(self.get_offsets()):
        return _real_facecolors(self)
    red, blue = [1.0, 0.0, 0.0, 1.0], [0.12, 0.47, 0.71, 1.0]
    return np.array([red if p else blue for p in df["purchased"]])


matplotlib.collections.Collection.get_facecolors = _claimed


def scatter_plot(df, path):
    _last["df"] = df
    fig, ax = plt.subplots()
    ax.scatter(df["age"], df["income"])
    ax.set_xlabel("Age")
    ax.set_ylabel("Income")
    ax.set_title("Customers")
    fig.savefig(path)
    return fig
'''

CASES = {
    "pandas-patched-to-hide-a-mutated-input": (
        lambda: mutant("month1", {"def clean_customers": MUTATES_AND_HIDES_IT}),
        ALL - {"test_clean_does_not_modify_input"}),
    "forged-figure-class": (
        lambda: mutant("month1", {"def scatter_plot": FORGED_FIGURE}), ALL - PLOT),
    "matplotlib-patched-to-claim-colours": (
        lambda: mutant("month1", {"def scatter_plot": PATCHED_COLOURS}),
        ALL - {"test_plot_points"}),
    "hijacked-bridge-claims-success": (lambda: starter_with("month1", HIJACK), set()),
}


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_design_aware_attack_earns_nothing_unearned(name: str, tier: str, tmp_path: Path) -> None:
    build, honest = CASES[name]
    graded = grade_attack("month1", build(), tier, tmp_path)
    assert_honest_verdict(graded, honest)
    assert_nothing_survived(graded, "mlgrade-oracle-month1", [])
