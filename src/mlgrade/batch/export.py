"""Export stage: one row per learner, one column per assignment (``--detail`` adds one
column per grader test, named ``ASSIGNMENT:TEST``), as CSV or JSON on stdout."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from mlgrade._compat import StrEnum
from mlgrade.batch.gradebook import Gradebook
from mlgrade.render.common import fmt_points


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


def table(gradebook: Gradebook, detail: bool = False) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names and one dict per learner (missing work is ``None``)."""
    assignments = gradebook.assignments()
    columns = ["learner"]
    for name in assignments:
        columns += [name, f"{name}:status"]
    per_test: dict[str, list[str]] = {}
    if detail:
        for found in gradebook.test_rows():
            ids = per_test.setdefault(found.assignment, [])
            if found.test_id not in ids:
                ids.append(found.test_id)
        columns = ["learner"]
        for name in assignments:
            columns += [name, f"{name}:status"] + [f"{name}:{t}" for t in per_test.get(name, [])]
    rows: dict[str, dict[str, Any]] = {}
    for sub in gradebook.submissions():
        row = rows.setdefault(sub.learner, dict.fromkeys(columns))
        row["learner"] = sub.learner
        row[sub.assignment] = sub.score
        row[f"{sub.assignment}:status"] = sub.status
    if detail:
        for test in gradebook.test_rows():
            rows[test.learner][f"{test.assignment}:{test.test_id}"] = test.earned
    ordered = [rows[k] for k in sorted(rows, key=str.casefold)]
    return columns, ordered


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return fmt_points(value)
    text = str(value)
    # a spreadsheet would run a cell that starts like a formula
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def render(gradebook: Gradebook, fmt: ExportFormat, detail: bool = False) -> str:
    columns, rows = table(gradebook, detail)
    if fmt is ExportFormat.JSON:
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
    return buf.getvalue()
