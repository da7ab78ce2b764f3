"""The lead's dashboard: one self-contained HTML page for the whole gradebook.

Nothing is fetched from the network (no CDN, no script): the charts are inline SVG whose
geometry is computed here and drawn by a Jinja2 template with autoescaping on, so a learner
named ``<script>`` is text. The page holds, per assignment, the score distribution (integer
bins, full marks labelled, mean and median marked), the pass rate of each test hardest first
with question ids and full titles, errored and timed-out submissions with the cell and reason,
late submissions, adjustments and copy flags; a learners x assignments table whose cells link
to each learner's feedback; and the group's progress across assignments.

Feedback links are relative: ``feedback/ASSIGNMENT/LEARNER.html`` next to the page. ``mlgrade
report --html`` writes those files too (unless ``--no-feedback``); ``mlgrade feedback
ASSIGNMENT --out DIR/feedback/ASSIGNMENT`` writes the same files by hand.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlgrade import __version__
from mlgrade.batch.marks import Mark
from mlgrade.batch.report import AssignmentReport, bar_position, bin_label, bin_width, natural_key
from mlgrade.fsutil import write_text_atomic
from mlgrade.render.common import fmt_points
from mlgrade.render.inline import to_html

TEMPLATES = Path(__file__).parent / "templates"
FEEDBACK_DIR = "feedback"


@dataclass(frozen=True)
class Bar:
    """One histogram bar."""

    x: float
    y: float
    width: float
    height: float
    count: int
    label: str  # the bin under the bar: "7", or "15" for full marks


@dataclass(frozen=True)
class Marker:
    """A vertical line across the histogram (mean or median) and its label."""

    x: float
    label: str
    css: str  # "mean" or "median"
    anchor: str  # SVG text-anchor: labels near the right edge extend leftwards, inside the frame
    text_x: float


@dataclass(frozen=True)
class Histogram:
    """An SVG histogram's geometry (user units of a 0 0 W H viewBox)."""

    width: int
    height: int
    left: float
    bottom: float  # y of the x axis
    top: float
    bars: tuple[Bar, ...]
    yticks: tuple[tuple[float, int], ...]  # (y, count)
    markers: tuple[Marker, ...]
    xlabel: str


@dataclass(frozen=True)
class Point:
    """One assignment's value on the progress chart."""

    x: float
    y: float
    value: float
    label: str


@dataclass(frozen=True)
class Progress:
    """The group across assignments: mean and median percent, line per statistic."""

    width: int
    height: int
    left: float
    right: float
    bottom: float
    top: float
    names: tuple[tuple[float, str, int], ...]  # (x, assignment, submissions)
    mean: tuple[Point, ...]
    median: tuple[Point, ...]
    yticks: tuple[tuple[float, int], ...]  # (y, percent)


def _histogram(rep: AssignmentReport) -> Histogram:
    w, h, left, right, top, bottom = 520, 248, 36.0, 10.0, 44.0, 208.0  # labels above the bars
    n = len(rep.histogram)
    slot = (w - left - right) / max(n, 1)
    most = max((c for _, _, c in rep.histogram), default=0) or 1
    bars = []
    for i, (lo, hi, count) in enumerate(rep.histogram):
        height = (bottom - top) * count / most
        bars.append(Bar(x=round(left + i * slot + slot * 0.08, 2), y=round(bottom - height, 2),
                        width=round(slot * 0.84, 2), height=round(height, 2), count=count,
                        label=bin_label(lo, hi)))
    step = max(1, -(-most // 5))
    yticks = tuple((round(bottom - (bottom - top) * c / most, 2), c)
                   for c in range(0, most + 1, step))
    width = bin_width(rep.max_score)

    def x_of(value: float) -> float:
        return round(left + bar_position(rep.histogram, rep.max_score, value) * slot, 2)

    def marker(value: float, label: str, css: str) -> Marker:
        x = x_of(value)
        right_side = x > w * 0.6
        return Marker(x, label, css, "end" if right_side else "start",
                      round(x - 4 if right_side else x + 4, 2))

    markers = (marker(rep.mean, f"mean {rep.mean:.2f}", "mean"),
               marker(rep.median, f"median {fmt_points(rep.median)}", "median"))
    unit = "1 point" if width == 1 else f"{width} points"
    xlabel = f"score (bins of {unit}; last bar: full marks, {fmt_points(rep.max_score)})"
    return Histogram(w, h, left, bottom, top, tuple(bars), yticks, markers, xlabel)


def _progress(reports: list[AssignmentReport]) -> Progress:
    w, h, left, right, top, bottom = 640, 250, 58.0, 16.0, 16.0, 200.0
    n = len(reports)
    slot = (w - left - right) / max(n, 1)
    names, mean, median = [], [], []

    def y_of(pct: float) -> float:
        return round(bottom - (bottom - top) * pct / 100, 2)

    for i, rep in enumerate(reports):
        x = round(left + (i + 0.5) * slot, 2)
        pcts = [m.percent for m in rep.marks]
        mean_pct = round(statistics.fmean(pcts), 1) if pcts else 0.0
        median_pct = round(float(statistics.median(pcts)), 1) if pcts else 0.0
        names.append((x, rep.assignment, rep.submissions))
        mean.append(Point(x, y_of(mean_pct), mean_pct, f"{mean_pct:g}%"))
        median.append(Point(x, y_of(median_pct), median_pct, f"{median_pct:g}%"))
    yticks = tuple((y_of(p), p) for p in range(0, 101, 25))
    return Progress(w, h, left, w - right, bottom, top, tuple(names), tuple(mean),
                    tuple(median), yticks)


@dataclass(frozen=True)
class Cell:
    """One learner's work on one assignment in the overview table."""

    mark: Mark
    link: str  # relative URL of the feedback page

    @property
    def text(self) -> str:
        return f"{fmt_points(self.mark.final)}/{fmt_points(self.mark.max_score)}"


def render(reports: list[AssignmentReport], gradebook: Path,
           feedback_dir: str = FEEDBACK_DIR) -> str:
    """The page's HTML."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
    from markupsafe import Markup

    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["points"] = fmt_points
    # grader-written titles: code spans as <code>, everything else escaped by markdown-it
    env.filters["inline_md"] = lambda text: Markup(to_html(str(text)))
    reports = sorted(reports, key=lambda r: natural_key(r.assignment))
    learners = sorted({m.learner for r in reports for m in r.marks}, key=str.casefold)
    grid: dict[str, dict[str, Cell]] = {who: {} for who in learners}
    for rep in reports:
        for m in rep.marks:
            grid[m.learner][rep.assignment] = Cell(m, f"{feedback_dir}/{rep.assignment}/"
                                                      f"{m.learner}.html")
    overall = {}
    for who, cells in grid.items():
        pcts = [c.mark.percent for c in cells.values()]
        overall[who] = round(statistics.fmean(pcts), 1) if pcts else 0.0
    context: dict[str, Any] = {
        "reports": reports, "learners": learners, "grid": grid, "overall": overall,
        "histograms": {r.assignment: _histogram(r) for r in reports},
        "progress": _progress(reports) if reports else None,
        "gradebook": str(gradebook), "version": __version__,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return env.get_template("dashboard.html.j2").render(**context)


def write_dashboard(reports: list[AssignmentReport], dest: Path, gradebook: Path) -> Path:
    """Write the page atomically; return the path written (exactly ``dest``)."""
    write_text_atomic(dest, render(reports, gradebook))
    return dest
