"""Input stage: read a learner's notebook into memory, strictly, without ever writing it."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from mlgrade.errors import NotebookInputError
from mlgrade.notebook_problems import first_problem

MAX_NOTEBOOK_BYTES = 64 * 1024 * 1024  # checked before parsing
MAX_NOTEBOOK_DEPTH = 100  # JSON nesting; real notebooks stay under 20


def _depth(data: object) -> int:
    """Deepest nesting of lists and dicts in ``data``, without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_NOTEBOOK_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def read_notebook(path: Path, max_bytes: int = MAX_NOTEBOOK_BYTES) -> tuple[NotebookNode, bytes]:
    """Parse ``path`` as a notebook (upgrading older nbformat versions to v4).

    Returns the in-memory notebook and the raw bytes (for hashing). The file is opened read-only
    once; nothing is ever written back to it.
    """
    shown = str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise NotebookInputError(
            f"{shown}: no such file. "
            + (_near_miss(path) or "Check the path, or run `mlgrade start ASSIGNMENT` to get "
               "the starter notebook.")
        ) from None
    except OSError as exc:
        raise NotebookInputError(f"{shown}: cannot read it ({exc.strerror}).") from None
    if stat.S_ISDIR(st.st_mode):
        raise NotebookInputError(f"{shown} is a folder, not a notebook: pass the .ipynb file.")
    if not stat.S_ISREG(st.st_mode):
        raise NotebookInputError(f"{shown} is not a regular file: pass the .ipynb file.")
    if st.st_size > max_bytes:
        raise NotebookInputError(
            f"{shown} is {st.st_size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit: "
            "clear the cell outputs (Edit > Clear All Outputs) and save again."
        )
    if path.suffix == ".py":
        raise NotebookInputError(
            f"{shown} is a Python script, not a notebook: grade the .ipynb file instead."
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotebookInputError(f"{shown}: cannot read it ({exc.strerror}).") from None
    if not raw.strip():
        raise NotebookInputError(f"{shown} is empty: save the notebook from Jupyter and try again.")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise NotebookInputError(
            f"{shown} is not a notebook (not valid JSON): save it from Jupyter as .ipynb."
        ) from None
    if _depth(data) > MAX_NOTEBOOK_DEPTH:  # nbformat and jsonschema recurse: refuse it first
        raise NotebookInputError(
            f"{shown} is nested more than {MAX_NOTEBOOK_DEPTH} levels deep (in its metadata or "
            "outputs), which no Jupyter notebook needs: clear the outputs and metadata, re-save."
        )
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise NotebookInputError(
            f"{shown} is JSON but not a Jupyter notebook (no cells): check you passed the .ipynb."
        )
    problem = first_problem(data)
    if problem is not None:
        raise NotebookInputError(
            f"{shown} is not a valid notebook: {problem}. Open it in Jupyter, fix or delete "
            "that part, and save it again.")
    try:
        node = nbformat.reads(raw.decode("utf-8"), as_version=4)  # upgrades v3 and older
        nbformat.validate(node)
    except RecursionError:
        raise NotebookInputError(
            f"{shown} is nested too deeply to be a notebook: clear its outputs and re-save it."
        ) from None
    except (nbformat.ValidationError, ValueError, TypeError, KeyError, AttributeError,
            AssertionError) as exc:  # nbformat asserts on some malformed version fields
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = re.sub(r"[{\[].*", "...", first)  # never a dump of the offending cell
        raise NotebookInputError(
            f"{shown} is not a valid notebook ({first[:160]}): open and re-save it in Jupyter."
        ) from None
    return node, raw


def _near_miss(path: Path) -> str | None:
    """A missing notebook's likely meaning: the same name in another case beside it, or a
    script of the same name."""
    try:
        beside = [p for p in path.parent.iterdir() if p.is_file()]
    except OSError:
        return None
    wanted = path.name.casefold()
    stem = path.stem.casefold() if path.suffix.lower() in (".ipynb", ".py") else wanted
    same = [p for p in sorted(beside) if p.name.casefold() == wanted]
    script = [p for p in sorted(beside) if p.suffix.lower() == ".py" and p.stem.casefold() == stem]
    if same and same[0].suffix.lower() != ".py":
        return f"Did you mean {same[0].name}? (File names are case-sensitive here.)"
    if script:
        return (f"{script[0].name} is a script, not a notebook: mlgrade grades the .ipynb. Run "
                "`mlgrade start ASSIGNMENT` for the starter notebook and put your code in it.")
    return None


def code_cells(nb: NotebookNode) -> list[tuple[int, NotebookNode]]:
    """(1-based cell number, cell) for each code cell."""
    return [(i + 1, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
