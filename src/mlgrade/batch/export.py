"""Export stage: one row per learner, a group of columns per assignment, as CSV, JSON or XLSX.

Per assignment ``A``: ``A`` (the score that counts: after the lead's adjustments and any late
penalty), ``A:max``, ``A:percent``, ``A:status`` (``graded``, or what went wrong in the words of
the report's problem column: ``timeout``, ``kernel_died``, ``worker_timeout``, ``errored``, ...),
``A:late`` (``yes`` when handed in after the due date), ``A:original`` (the graders' score) and
``A:adjusted`` (the adjusted score, empty when the lead changed nothing); ``--detail`` adds
``A:TEST`` per grader test (points that count).

CSV written for a spreadsheet starts with a UTF-8 byte-order mark, so Excel reads "Zoë" as
written; cells that a spreadsheet would run as a formula are quoted with a leading ``'``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from mlgrade._compat import StrEnum
from mlgrade.batch.gradebook import Gradebook
from mlgrade.batch.marks import marks, points_per_test
from mlgrade.batch.report import natural_key
from mlgrade.render.common import fmt_points

BOM = "\ufeff"
SUFFIXES = ("", ":max", ":percent", ":status", ":late", ":original", ":adjusted")


class ExportFormat(StrEnum):
    """What ``mlgrade export`` writes."""

    CSV = "csv"
    JSON = "json"
    XLSX = "xlsx"


def table(gradebook: Gradebook, detail: bool = False) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names and one dict per learner (missing work is ``None``)."""
    assignments = sorted(gradebook.assignments(), key=natural_key)
    per_test: dict[str, list[str]] = {}
    if detail:
        for found in gradebook.test_rows():
            ids = per_test.setdefault(found.assignment, [])
            if found.test_id not in ids:
                ids.append(found.test_id)
    columns = ["learner"]
    for name in assignments:
        columns += [name + suffix for suffix in SUFFIXES]
        columns += [f"{name}:{t}" for t in per_test.get(name, [])]
    subs = {(s.learner, s.assignment): s for s in gradebook.submissions()}
    rows: dict[str, dict[str, Any]] = {}
    for m in marks(gradebook):
        row = rows.setdefault(m.learner, dict.fromkeys(columns))
        row["learner"] = m.learner
        a = m.assignment
        row.update({a: m.final, f"{a}:max": m.max_score, f"{a}:percent": m.percent,
                    f"{a}:status": m.outcome, f"{a}:late": "yes" if m.late.late else "",
                    f"{a}:original": m.original,
                    f"{a}:adjusted": m.adjusted if m.is_adjusted else None})
        if detail:
            for test_id, points in points_per_test(subs[(m.learner, a)], m).items():
                row[f"{a}:{test_id}"] = points
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


def render(gradebook: Gradebook, fmt: ExportFormat, detail: bool = False,
           bom: bool = False) -> str:
    """CSV (with a byte-order mark if ``bom``) or JSON text."""
    columns, rows = table(gradebook, detail)
    if fmt is ExportFormat.JSON:
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n" if bom else "\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
    return (BOM if bom else "") + buf.getvalue()


def write_xlsx(gradebook: Gradebook, dest: Path, detail: bool = False) -> Path:
    """An Excel workbook (needs openpyxl): one sheet, a header row, numbers as numbers."""
    from openpyxl import Workbook

    columns, rows = table(gradebook, detail)
    book = Workbook()
    sheet = book.active
    sheet.title = "grades"
    sheet.append(columns)
    for r, row in enumerate(rows, start=2):
        for c, name in enumerate(columns, start=1):
            value = row[name]
            cell = sheet.cell(row=r, column=c, value=value)
            if isinstance(value, str) and value.startswith("="):
                cell.data_type = "s"  # a learner name is text, never a formula
    sheet.freeze_panes = "B2"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    book.save(tmp)
    tmp.replace(dest)
    return dest
