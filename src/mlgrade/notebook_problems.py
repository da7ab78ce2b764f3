"""Why a notebook's JSON is not a valid notebook, in one line a learner can act on.

nbformat's schema errors quote the offending cell whole (a Python dict cut mid-way); this names
the cell instead, as reports number them (``code cell 3``, or ``cell 5 of the file`` for a
markdown or raw cell), and says what is wrong with it in plain words.
"""

from __future__ import annotations

from typing import Any

import nbformat
from nbformat.validator import iter_validate

_VALUE_WORDS = {dict: "an object", list: "a list", str: "a string", bool: "true/false",
                int: "a number", float: "a decimal number", type(None): "null"}
_SCHEMA_WORDS = {"object": "an object", "array": "a list", "string": "a string",
                 "integer": "a whole number", "number": "a number", "boolean": "true/false",
                 "null": "null"}


def _field(rest: list[str | int]) -> str:
    """``["outputs", 0, "text"]`` -> ``output 1's text``; ``["metadata"]`` -> ``metadata``."""
    words: list[str] = []
    for i, part in enumerate(rest):
        if isinstance(part, int) and i > 0 and isinstance(rest[i - 1], str):
            words[-1] = f"{str(rest[i - 1]).removesuffix('s')} {part + 1}"
        else:
            words.append(str(part))
    return "'s ".join(words)


def first_problem(data: dict[str, Any]) -> str | None:
    """The first thing wrong with a notebook's JSON, in one line naming the cell (never a
    dump of it), or None when nbformat's v4 schema finds nothing (or is not the one to ask)."""
    versions = [k for k in ("nbformat", "nbformat_minor")
                if k in data and (not isinstance(data[k], int) or isinstance(data[k], bool))]
    if versions:  # nbformat itself asserts on these
        got = _VALUE_WORDS.get(type(data[versions[0]]), "something else")
        return f"the notebook's {versions[0]} is {got}, where a whole number belongs"
    if data.get("nbformat") != 4:
        return None  # older formats are upgraded by nbformat.reads, which words its own errors
    try:
        error = next(iter(iter_validate(data)), None)
    except (nbformat.ValidationError, ValueError, TypeError, KeyError, AttributeError):
        return None  # no schema for its version, say: nbformat.reads words that
    if error is None or not hasattr(error, "absolute_path"):
        return None
    path: list[str | int] = list(error.absolute_path)
    cells = data.get("cells")
    subject = "the notebook's "
    if len(path) >= 2 and path[0] == "cells" and isinstance(path[1], int) and isinstance(cells, list):
        index, path = path[1], path[2:]
        cell = cells[index]
        if not isinstance(cell, dict):
            return f"cell {index + 1} of the file is {_VALUE_WORDS.get(type(cell), 'something')}, not a cell"
        kind = cell.get("cell_type")
        if kind == "code":
            code = sum(1 for c in cells[:index + 1] if isinstance(c, dict) and c.get("cell_type") == "code")
            where = f"code cell {code} (cell {index + 1} of the file)"
        elif kind in ("markdown", "raw"):
            where = f"cell {index + 1} of the file (a {kind} cell)"
        else:
            return f"cell {index + 1} of the file has an unknown cell_type {str(kind)[:40]!r} (code, markdown or raw)"
        subject = f"{where}: its "
    if not path:
        subject = subject.removesuffix(": its ").removesuffix("'s ")
    field = subject + _field(path)
    got = _VALUE_WORDS.get(type(error.instance), "something else")
    wanted: list[str] = []
    if error.validator == "type":
        value = error.validator_value
        wanted = list(value) if isinstance(value, list) else [str(value)]
    elif error.validator == "oneOf" and error.context:
        wanted = sorted({str(e.validator_value) for e in error.context if e.validator == "type"})
    if wanted:
        return f"{field} is {got}, where {' or '.join(_SCHEMA_WORDS.get(w, w) for w in wanted)} belongs"
    if isinstance(error.instance, dict) and error.instance.get("output_type") not in (
            None, "stream", "display_data", "execute_result", "error"):
        return f"{field} has an unknown output_type ({str(error.instance['output_type'])[:40]!r})"
    if error.validator == "oneOf" and error.context:  # the alternative that came closest
        from jsonschema.exceptions import best_match

        error = best_match(error.context) or error
    message = error.message
    if isinstance(error.instance, dict | list) or len(repr(error.instance)) > 40:
        message = message.replace(repr(error.instance), got)
    return f"{field}: {message[:160]}"
