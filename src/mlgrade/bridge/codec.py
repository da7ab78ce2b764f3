"""Grader-side strict reader for everything that comes back from the learner's kernel.

Anything the kernel reports is learner-controlled, so it is read as data and nothing else:
strict JSON (no NaN/Infinity literals, duplicate keys rejected, size and depth caps) and
``.npy`` through a reader that checks the header against the payload and only admits plain
dtypes, with ``allow_pickle=False``. Values become ordinary Python, NumPy and pandas objects
built by the grader, so a learner object with a lying ``__eq__`` can never reach a comparison.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlgrade.bridge.refs import Ref

ALLOWED_KINDS = "biufcUSMm"  # bool, ints, floats, complex, str/bytes, datetime/timedelta
MAX_DEPTH = 40
MAX_VALUES = 1_000_000  # JSON values in one answer (containers, items, keys' values)
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # what NumPy's int64 and uint64 hold


class DecodeError(ValueError):
    """The kernel's answer is not valid plain data; the test fails closed."""


@dataclass(frozen=True)
class UnsupportedValue:
    """Stands for each value of a DataFrame column whose type has no encoding (a pandas
    ``Interval`` column, say): the frame stays readable for its other columns, and this
    column compares equal to no real data."""

    type: str

    def __repr__(self) -> str:
        return f"<unsupported {self.type}>"


def _reject_constant(name: str) -> Any:
    raise DecodeError(f"non-standard JSON constant {name}")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DecodeError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _token_bound(text: str | bytes) -> int:
    """An upper bound on the values ``json.loads`` would build: each one is a container or
    follows a comma (characters inside strings count too, so the bound only errs strict)."""
    if isinstance(text, bytes):
        return text.count(b"{") + text.count(b"[") + text.count(b",") + 1
    return text.count("{") + text.count("[") + text.count(",") + 1


def _bounded_int(digits: str) -> int:
    """A JSON integer that a 64-bit number holds (``10**400`` is refused before a grader's
    arithmetic overflows on it)."""
    if len(digits.lstrip("-")) > 20:
        raise DecodeError("an integer outside the 64-bit range")
    value = int(digits)
    if not INT_MIN <= value <= INT_MAX:
        raise DecodeError("an integer outside the 64-bit range")
    return value


def strict_json(text: str | bytes, max_bytes: int, max_values: int = MAX_VALUES) -> Any:
    """Parse JSON strictly: size cap, no NaN/Infinity, no duplicate keys, bounded depth, and
    at most ``max_values`` values, checked before the parser builds any of them (64 MB of
    ``[0,0,...]`` would otherwise become 30 million objects)."""
    if len(text) > max_bytes:
        raise DecodeError(f"answer is {len(text)} bytes, over the {max_bytes}-byte cap")
    if _token_bound(text) > max_values:
        raise DecodeError(f"answer holds more than {max_values} values; return an array "
                          "(it travels as binary) rather than a long list")
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicates,
                          parse_int=_bounded_int)
    except RecursionError:
        raise DecodeError("answer is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise DecodeError(f"answer is not valid JSON ({exc.msg})") from None


def read_npy_bytes(data: bytes, max_bytes: int) -> np.ndarray:
    """Read a ``.npy`` payload strictly: plain dtype, header consistent with the payload size."""
    if len(data) > max_bytes:
        raise DecodeError(f"array is {len(data)} bytes, over the {max_bytes}-byte cap")
    buf = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buf)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(buf)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(buf)
        else:
            raise DecodeError(f"unsupported .npy version {version}")
    except DecodeError:
        raise
    except Exception as exc:
        raise DecodeError(f"bad .npy header ({exc})") from None
    if dtype.hasobject or dtype.kind not in ALLOWED_KINDS or dtype.fields is not None:
        raise DecodeError(f"arrays of dtype {dtype} are not accepted")
    if len(shape) > 32:
        raise DecodeError("bad .npy shape")
    count = 1
    for dim in shape:
        if not isinstance(dim, int) or dim < 0:
            raise DecodeError("bad .npy shape")
        count *= dim
    if buf.tell() + count * dtype.itemsize != len(data):
        raise DecodeError(".npy header does not match the payload size")
    buf.seek(0)
    try:
        array = np.load(buf, allow_pickle=False)
    except Exception as exc:
        raise DecodeError(f"unreadable .npy ({exc})") from None
    return np.asarray(array)


def _open_no_links(path: Path, root: Path | None) -> int:
    """Open ``path`` read-only without following a link in any component below ``root``
    (the learner could have swapped a folder of the job for a link to the grader's files)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if root is None:
        return os.open(path, flags)
    parts = path.relative_to(root).parts
    if not parts or any(part in ("..", ".", "") for part in parts):
        raise OSError(22, "Invalid argument")
    directory = getattr(os, "O_DIRECTORY", 0)
    dir_fd = os.open(root, os.O_RDONLY | directory | getattr(os, "O_CLOEXEC", 0))
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | directory, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        return os.open(parts[-1], flags, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def read_npy_file(path: Path, max_bytes: int, root: Path | None = None) -> np.ndarray:
    """Read a ``.npy`` file the learner's code wrote, refusing links, FIFOs and devices.

    With ``root`` (the job folder) no component of ``path`` below it may be a link either."""
    return read_npy_bytes(read_regular_file(path, max_bytes, root), max_bytes)


def read_regular_file(path: Path, max_bytes: int, root: Path | None = None) -> bytes:
    """Bytes of a file the learner's code wrote, refusing links, FIFOs and oversize files."""
    try:
        fd = _open_no_links(path, root)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise DecodeError(f"cannot open {path.name} ({reason})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DecodeError(f"{path.name} is not a regular file")
        if st.st_size > max_bytes:
            raise DecodeError(f"{path.name} is over the {max_bytes}-byte cap")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(max_bytes + 1)[:max_bytes]
    finally:
        os.close(fd)


def _b64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise DecodeError("expected base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError("bad base64") from None


def _field(doc: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind):
        raise DecodeError(f"field {key!r} has the wrong type")
    return value


def decode_value(doc: Any, max_bytes: int, depth: int = 0) -> Any:
    """Turn a tagged plain-data document into grader-built Python/NumPy/pandas values.

    Any malformed document raises :class:`DecodeError` (the test fails closed), never another
    exception that would be taken for a bug in the grader."""
    try:
        return _decode(doc, max_bytes, depth)
    except DecodeError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, RecursionError) as exc:
        raise DecodeError(f"malformed value ({type(exc).__name__})") from None


def _decode_column(doc: Any, max_bytes: int, depth: int) -> Any:
    """A DataFrame column or index: a value, or ``{"t": "unsupported", "type", "len"}``."""
    if isinstance(doc, dict) and doc.get("t") == "unsupported":
        if set(doc) != {"t", "type", "len"}:
            raise DecodeError("malformed unsupported column")
        kind, length = _field(doc, "type", str), _field(doc, "len", int)
        if isinstance(length, bool) or not 0 <= length <= MAX_VALUES or len(kind) > 200:
            raise DecodeError("malformed unsupported column")
        column = np.empty(length, dtype=object)
        column.fill(UnsupportedValue(kind))
        return column
    return _decode(doc, max_bytes, depth)


def _decode(doc: Any, max_bytes: int, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise DecodeError("value is nested too deeply")
    if not isinstance(doc, dict) or not isinstance(doc.get("t"), str):
        raise DecodeError("malformed value")
    tag = doc["t"]
    sub = depth + 1
    if tag == "none":
        return None
    if tag == "bool":
        truth = bool(_field(doc, "v", bool))
        return np.bool_(truth) if doc.get("np") is True else truth
    if tag == "int":
        raw = doc.get("v")
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise DecodeError("bad int")
        try:
            value = int(raw)
        except ValueError:
            raise DecodeError("bad int") from None
        if not INT_MIN <= value <= INT_MAX:  # 10**400: no number type holds it
            raise DecodeError("an integer outside the 64-bit range; return an ordinary number")
        return value
    if tag == "float":
        raw = doc.get("v")
        if isinstance(raw, str) and raw in ("nan", "inf", "-inf"):
            return float(raw)
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise DecodeError("bad float")
        return float(raw)
    if tag == "str":
        return str(_field(doc, "v", str))
    if tag == "bytes":
        return _b64(doc.get("b64"))
    if tag in ("list", "tuple", "set"):
        items = [_decode(v, max_bytes, sub) for v in _field(doc, "items", list)]
        if tag == "set":
            try:
                return set(items)
            except TypeError:
                raise DecodeError("unhashable set item") from None
        return tuple(items) if tag == "tuple" else items
    if tag == "dict":
        out: dict[Any, Any] = {}
        for pair in _field(doc, "items", list):
            if not isinstance(pair, list) or len(pair) != 2:
                raise DecodeError("bad dict item")
            key = _decode(pair[0], max_bytes, sub)
            try:
                out[key] = _decode(pair[1], max_bytes, sub)
            except TypeError:
                raise DecodeError("unhashable dict key") from None
        return out
    if tag in ("ndarray", "tensor"):
        return read_npy_bytes(_b64(doc.get("npy")), max_bytes)
    if tag == "dataframe":
        import pandas as pd

        columns = [_decode(c, max_bytes, sub) for c in _field(doc, "columns", list)]
        data = [_decode_column(c, max_bytes, sub) for c in _field(doc, "data", list)]
        index = _decode_column(doc.get("index"), max_bytes, sub)
        if not all(isinstance(v, (list, np.ndarray)) for v in [index, *data]):
            raise DecodeError("inconsistent DataFrame")
        if len(columns) != len(data) or any(len(col) != len(index) for col in data):
            raise DecodeError("inconsistent DataFrame")
        frame = pd.DataFrame({i: col for i, col in enumerate(data)}, index=pd.Index(index))
        frame.columns = pd.Index(columns, dtype=object)
        return frame
    if tag == "series":
        import pandas as pd

        values = _decode(doc.get("values"), max_bytes, sub)
        index = _decode(doc.get("index"), max_bytes, sub)
        sized = all(isinstance(v, (list, np.ndarray)) for v in (values, index))
        if not sized or len(values) != len(index):
            raise DecodeError("inconsistent Series")
        name = _decode(doc.get("name"), max_bytes, sub)
        return pd.Series(values, index=pd.Index(index), name=name)
    if tag == "ref":
        return Ref(id=str(_field(doc, "id", str)), type=str(_field(doc, "type", str)))
    raise DecodeError(f"unknown value tag {tag!r}")
