"""The strict reader against documents and files a hostile kernel could produce."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from mlgrade.bridge.codec import (
    DecodeError,
    decode_value,
    read_npy_bytes,
    read_npy_file,
    strict_json,
)

CAP = 1 << 20


def _npy(array: np.ndarray) -> str:
    buf = io.BytesIO()
    np.save(buf, array)
    return base64.b64encode(buf.getvalue()).decode()


@pytest.mark.parametrize("doc", [
    {"t": "dataframe", "columns": [{"t": "int", "v": 1}], "data": [{"t": "int", "v": 3}],
     "index": {"t": "ndarray", "npy": _npy(np.arange(1))}},
    {"t": "dataframe", "columns": [], "data": [],
     "index": {"t": "ndarray", "npy": _npy(np.array(5))}},
    {"t": "series", "values": {"t": "ndarray", "npy": _npy(np.array(1.0))},
     "index": {"t": "ndarray", "npy": _npy(np.array(1.0))}, "name": {"t": "none"}},
    {"t": "dict", "items": [[{"t": "list", "items": []}, {"t": "none"}]]},
    {"t": "set", "items": [{"t": "dict", "items": []}]},
    {"t": "int", "v": "9" * 5000},
    {"t": "list", "items": "not a list"},
    {"t": "ref"},
    {"t": "pickle", "b64": base64.b64encode(b"cos\nsystem\n(S'true'\ntR.").decode()},
])
def test_malformed_documents_fail_closed_as_decode_errors(doc: dict) -> None:
    # a DecodeError fails the test with a reason; any other exception would be taken for a
    # grader bug and mark the whole submission errored
    with pytest.raises(DecodeError):
        decode_value(doc, CAP)


def test_deep_and_wide_documents_are_refused() -> None:
    deep: dict = {"t": "none"}
    for _ in range(60):
        deep = {"t": "list", "items": [deep]}
    with pytest.raises(DecodeError):
        decode_value(deep, CAP)
    with pytest.raises(DecodeError):
        strict_json("[" * 100_000 + "]" * 100_000, 10**6)
    with pytest.raises(DecodeError):
        strict_json('{"a": Infinity}', CAP)


def test_npy_with_too_many_dimensions_is_refused() -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                   "shape": (1,) * 40})
    with pytest.raises(DecodeError, match="shape"):
        read_npy_bytes(header.getvalue() + b"\0" * 8, CAP)


def test_npy_behind_a_linked_folder_is_refused(tmp_path: Path) -> None:
    job, secret = tmp_path / "job", tmp_path / "grader-side"
    job.mkdir()
    secret.mkdir()
    np.save(secret / "labels.npy", np.arange(4))
    os.symlink(secret, job / "sub")
    assert list(read_npy_file(job / "sub" / "labels.npy", CAP)) == [0, 1, 2, 3]  # no root: old API
    with pytest.raises(DecodeError):
        read_npy_file(job / "sub" / "labels.npy", CAP, root=job)
    np.save(job / "ok.npy", np.arange(2))
    assert list(read_npy_file(job / "ok.npy", CAP, root=job)) == [0, 1]


def test_answer_documents_are_json_not_python_literals() -> None:
    for text in ("{'status': 'ok'}", '{"status": "ok", "value": {"t": "float", "v": NaN}}'):
        with pytest.raises(DecodeError):
            strict_json(text, CAP)
    assert strict_json(json.dumps({"status": "ok"}), CAP) == {"status": "ok"}
