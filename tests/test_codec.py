"""The plain-data channel: what the harness encodes, the grader decodes strictly."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mlgrade.bridge.codec import DecodeError, decode_value, read_npy_bytes, read_npy_file, strict_json
from mlgrade.bridge.harness import Unsupported, encode

CAP = 1 << 20


def roundtrip(value: object) -> object:
    text = json.dumps(encode(value), allow_nan=False)
    return decode_value(strict_json(text, CAP), CAP)


@pytest.mark.parametrize(
    "value",
    [None, True, 3, -(2**63), 2**64 - 1, 1.5, "héllo", b"\x00\x01", [1, "a", None], (1, 2.0),
     {"a": 1, 2: [3]}, {1, 2, 3}],
)
def test_plain_values_roundtrip(value: object) -> None:
    assert roundtrip(value) == value
    assert type(roundtrip(value)) is type(value)


@pytest.mark.parametrize("text", ['{"p": 1' + "0" * 400 + "}", "[18446744073709551616]",
                                  "-9223372036854775809"])
def test_strict_json_refuses_integers_no_number_type_holds(text: str) -> None:
    """An app's JSON reply (month 6) is read as strictly as a kernel answer."""
    with pytest.raises(DecodeError, match="outside the 64-bit range"):
        strict_json(text, CAP)
    assert strict_json("[18446744073709551615, -9223372036854775808, 0.5]", CAP) == [
        2**64 - 1, -(2**63), 0.5]


def test_a_zero_dimensional_array_keeps_its_shape() -> None:
    got = roundtrip(np.array(3.0))
    assert isinstance(got, np.ndarray) and got.shape == () and got == 3.0
    assert roundtrip(np.arange(6).reshape(2, 3).T).shape == (3, 2)  # not C-contiguous


def test_a_numpy_bool_stays_apart_from_a_python_bool() -> None:
    """"returns a bool" can be required: the grader sees which one the learner returned."""
    assert type(roundtrip(np.bool_(True))) is np.bool_ and roundtrip(np.bool_(False)) == False  # noqa: E712
    assert type(roundtrip(True)) is bool
    assert [type(v) for v in roundtrip([np.True_, False])] == [np.bool_, bool]  # type: ignore[union-attr]
    assert type(roundtrip(np.int64(3))) is int and type(roundtrip(np.float32(0.5))) is float


@pytest.mark.parametrize("value", [-(2**63) - 1, 2**64, 10**400, [1, 10**400]])
def test_integers_no_number_type_holds_are_refused(value: object) -> None:
    with pytest.raises(DecodeError, match="outside the 64-bit range"):
        roundtrip(value)


def test_special_floats_are_tagged_not_json_constants() -> None:
    out = roundtrip([float("nan"), float("inf"), float("-inf")])
    assert np.isnan(out[0]) and out[1] == float("inf") and out[2] == float("-inf")


def test_arrays_frames_series_tensors() -> None:
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    got = roundtrip(arr)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_array_equal(got, arr)
    frame = pd.DataFrame({"x": [1.0, None], "name": ["a", "b"]}, index=[10, 11])
    back = roundtrip(frame)
    assert list(back.columns) == ["x", "name"] and list(back.index) == [10, 11]
    assert back["name"].tolist() == ["a", "b"] and np.isnan(back["x"][11])
    series = roundtrip(pd.Series([1, 2], index=["p", "q"], name="s"))
    assert series.name == "s" and series["q"] == 2
    tensor = roundtrip(torch.tensor([[1.0, 2.0]]))
    assert isinstance(tensor, np.ndarray) and tensor.shape == (1, 2)
    assert roundtrip(np.float64(2.5)) == 2.5 and type(roundtrip(np.int64(3))) is int


def test_objects_are_refused_not_pickled() -> None:
    class Sneaky:
        def __eq__(self, other: object) -> bool:
            return True

    with pytest.raises(Unsupported):
        encode(Sneaky())
    with pytest.raises(Unsupported):
        encode(np.array([Sneaky()], dtype=object))


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def test_npy_reader_rejects_pickles_lying_headers_and_oversize() -> None:
    good = _npy(np.arange(4.0))
    np.testing.assert_array_equal(read_npy_bytes(good, CAP), np.arange(4.0))
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DecodeError, match="dtype"):
        read_npy_bytes(buf.getvalue(), CAP)
    lying = good.replace(b"(4,)", b"(9,)")
    with pytest.raises(DecodeError, match="payload size"):
        read_npy_bytes(lying, CAP)
    with pytest.raises(DecodeError, match="cap"):
        read_npy_bytes(good, 16)
    with pytest.raises(DecodeError):
        read_npy_bytes(b"\x80\x04K\x01.", CAP)  # a pickle, not an npy


def test_npy_file_reader_refuses_links_and_fifos(tmp_path: Path) -> None:
    real = tmp_path / "a.npy"
    real.write_bytes(_npy(np.ones(3)))
    assert read_npy_file(real, CAP).sum() == 3
    (tmp_path / "link.npy").symlink_to(real)
    with pytest.raises(DecodeError):
        read_npy_file(tmp_path / "link.npy", CAP)
    os.mkfifo(tmp_path / "fifo.npy")
    with pytest.raises(DecodeError, match="regular"):
        read_npy_file(tmp_path / "fifo.npy", CAP)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"t": "float", "v": NaN}', "constant"),
        ('{"t": "int", "v": 1, "t": "str"}', "duplicate"),
        ("[" * 100_000 + "]" * 100_000, "deeply|JSON"),
        ('{"t": "int", "v": true}', "bad int"),
        ('{"t": "ndarray", "npy": "!!!"}', "base64"),
        ('{"t": "pickle", "v": ""}', "unknown value tag"),
        ('{"t": "dataframe", "columns": [], "data": [], "index": {"t": "int", "v": 5}}', "inconsistent|len"),
    ],
)
def test_strict_json_and_decode_reject_malformed(text: str, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        decode_value(strict_json(text, 10 * CAP), CAP)


def test_size_cap_applies_before_parsing() -> None:
    with pytest.raises(DecodeError, match="cap"):
        strict_json(json.dumps({"t": "str", "v": "x" * 2000}), 1000)


def test_b64_npy_in_a_document_is_checked() -> None:
    doc = {"t": "ndarray", "npy": base64.b64encode(_npy(np.arange(3))).decode()}
    np.testing.assert_array_equal(decode_value(doc, CAP), np.arange(3))


def test_stdlib_containers_are_sent_by_content() -> None:
    import collections

    point = collections.namedtuple("point", "x y")
    cases = [
        (collections.defaultdict(list, a=[1]), {"a": [1]}),
        (collections.OrderedDict(b=2, a=1), {"b": 2, "a": 1}),
        (collections.Counter("abca"), {"a": 2, "b": 1, "c": 1}),
        (collections.UserDict(k=1.5), {"k": 1.5}),
        (collections.ChainMap({"a": 1}, {"b": 2}), {"a": 1, "b": 2}),
        (point(1, 2), (1, 2)),
        (collections.UserList([1, 2]), [1, 2]),
        (collections.deque([3, 4]), [3, 4]),
        (collections.UserString("hi"), "hi"),
    ]
    for value, plain in cases:
        out = roundtrip(value)
        assert out == plain and type(out) is type(plain), (value, out)
    assert list(roundtrip(collections.OrderedDict(b=2, a=1))) == ["b", "a"]  # order kept


def test_learner_subclasses_of_containers_stay_unsupported() -> None:
    class Mine(dict):
        pass

    class Row(tuple):  # not a namedtuple: no _fields
        pass

    for value in (Mine(a=1), Row((1, 2))):
        with pytest.raises(Unsupported):
            encode(value)


def test_frame_with_a_column_of_unsupported_type_stays_readable() -> None:
    from mlgrade.bridge.codec import UnsupportedValue

    frame = pd.DataFrame({"x": [0.5, 2.0, 3.0], "name": ["a", "b", "c"]})
    frame["bin"] = pd.cut(frame["x"], [0, 1, 4])  # Categorical of Interval
    frame["month"] = pd.period_range("2024-01", periods=3, freq="M")
    frame["obj"] = [object(), object(), object()]
    out = roundtrip(frame)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(frame.columns)
    assert out["x"].tolist() == [0.5, 2.0, 3.0] and out["name"].tolist() == ["a", "b", "c"]
    assert out["bin"].tolist() == [UnsupportedValue("pandas.Interval")] * 3
    assert out["month"][0] == UnsupportedValue("pandas.Period")
    assert out["obj"][0].type == "builtins.object" and out["obj"][0] != "builtins.object"
    indexed = roundtrip(frame[["x", "bin"]].set_index("bin"))
    assert indexed["x"].tolist() == [0.5, 2.0, 3.0]
    with pytest.raises(Unsupported):  # the value asked for itself is still refused
        encode(frame["bin"])


@pytest.mark.parametrize("column", [
    {"t": "unsupported", "type": "x", "len": -1},
    {"t": "unsupported", "type": "x", "len": 10**9},
    {"t": "unsupported", "type": "x", "len": True},
    {"t": "unsupported", "type": 3, "len": 1},
    {"t": "unsupported", "type": "x", "len": 1, "extra": 1},
])
def test_unsupported_column_markers_are_read_strictly(column: dict[str, object]) -> None:
    doc = {"t": "dataframe", "columns": [{"t": "str", "v": "c"}], "data": [column],
           "index": {"t": "list", "items": [{"t": "int", "v": 0}]}}
    with pytest.raises(DecodeError):
        decode_value(doc, CAP)
    with pytest.raises(DecodeError):  # never a value of its own, outside a frame
        decode_value({"t": "unsupported", "type": "x", "len": 1}, CAP)


def test_strict_json_caps_the_number_of_values_before_building_them() -> None:
    import tracemalloc

    flat = "[" + "0," * 2_000_000 + "0]"  # 4 MB of text, two million values
    nested = '{"a":' * 50 + "1" + "}" * 50
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError, match="more than"):
            strict_json(flat, 64 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # refused from the text: no list of two million was built
    assert strict_json("[" + "0," * 998 + "0]", CAP, max_values=1000) == [0] * 999
    with pytest.raises(DecodeError):
        strict_json("[" + "0," * 1000 + "0]", CAP, max_values=1000)
    assert strict_json(nested, CAP) is not None
