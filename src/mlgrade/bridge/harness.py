"""Kernel-side half of the bridge. Its *source* is sent into the learner's kernel after the
notebook ran; it is never imported there from the package.

It applies the learner's objects to inputs the grader sends and publishes the result as a
plain-data document (see ``docs/bridge.md``) under a private MIME type. Nothing here is
trusted by the grader: the grader re-reads every answer strictly (``mlgrade.bridge.codec``).
The ``encode`` function is also used by the grader process to send arguments.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import sys
from typing import Any

MIME = "application/x.mlgrade.result"
MAX_DEPTH = 32
MAX_ITEMS = 2_000_000


class Unsupported(TypeError):
    """A value that has no plain-data encoding."""


def _name(cls: Any) -> str:
    """``module.QualName`` of a class, also for odd ones (``type()``-made, no ``__module__``)."""
    module = getattr(cls, "__module__", None) or "?"
    return f"{module}.{getattr(cls, '__qualname__', getattr(cls, '__name__', '?'))}"


def _npy_b64(array: Any) -> str:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.asarray(array, order="C"), allow_pickle=False)  # keeps a 0-d array 0-d
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _float(value: float) -> dict[str, Any]:
    if value != value:
        return {"t": "float", "v": "nan"}
    if value in (float("inf"), float("-inf")):
        return {"t": "float", "v": "inf" if value > 0 else "-inf"}
    return {"t": "float", "v": value}


def _array(array: Any, depth: int, budget: list[int]) -> dict[str, Any]:
    """ndarray -> npy when its dtype is plain, else an element list (object/str columns)."""
    if array.dtype.hasobject:
        return {"t": "list", "items": [encode(v, depth + 1, budget) for v in array.tolist()]}
    if array.dtype.kind not in "biufcUSMm":
        raise Unsupported(f"arrays of dtype {array.dtype} cannot be sent back")
    return {"t": "ndarray", "npy": _npy_b64(array)}


def _stdlib_container(value: Any) -> Any:
    """The plain dict/list/tuple/str inside a standard-library mapping or sequence type
    (``defaultdict``, ``OrderedDict``, ``Counter``, ``UserDict``, ``ChainMap``, a mapping
    proxy, a namedtuple, ``UserList``, ``deque``, ``UserString``), else None. Exact stdlib types
    only: a learner's own subclass stays unsupported."""
    import collections
    import types

    cls = type(value)
    if cls in (collections.OrderedDict, collections.defaultdict, collections.Counter):
        return dict(dict.items(value))
    if cls in (collections.UserDict, collections.ChainMap, types.MappingProxyType):
        return {k: value[k] for k in value}
    if isinstance(value, tuple) and cls.__bases__ == (tuple,) and isinstance(
            getattr(cls, "_fields", None), tuple):  # made by collections.namedtuple
        return tuple(tuple.__iter__(value))
    if cls in (collections.UserList, collections.deque):
        return list(value)
    if cls is collections.UserString:
        return str(value.data)
    return None


def _column(array: Any, depth: int, budget: list[int]) -> dict[str, Any]:
    """A DataFrame column (or index) as :func:`_array` does, except that a column of a type
    with no encoding (pandas ``Interval``, ``Period``...) becomes one marker, so graders that
    fetch the frame for its other columns can still read it."""
    left = budget[0]
    try:
        return _array(array, depth, budget)
    except Unsupported:
        if budget[0] < 0:  # too big, not an odd type: the whole value is refused
            raise
        budget[0] = left - 1
        odd = next((v for v in array.tolist()
                    if v is not None and not isinstance(v, (bool, int, float, str))), None)
        kind = _name(type(odd)) if array.dtype.hasobject else str(array.dtype)
        return {"t": "unsupported", "type": kind, "len": int(len(array))}


def encode(value: Any, depth: int = 0, budget: list[int] | None = None) -> dict[str, Any]:
    """Encode ``value`` as a tagged, JSON-ready document; raise ``Unsupported`` otherwise."""
    budget = [MAX_ITEMS] if budget is None else budget
    budget[0] -= 1
    if depth > MAX_DEPTH or budget[0] < 0:
        raise Unsupported("the value is nested too deeply or has too many items")
    if value is None:
        return {"t": "none"}
    if isinstance(value, bool):
        return {"t": "bool", "v": value}
    if isinstance(value, int):
        return {"t": "int", "v": str(value)} if abs(value) >= 2**53 else {"t": "int", "v": value}
    if isinstance(value, float):
        return _float(float(value))
    if isinstance(value, str):
        return {"t": "str", "v": str(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"t": "bytes", "b64": base64.b64encode(bytes(value)).decode("ascii")}
    if type(value) in (list, tuple, set, frozenset):
        tag = {"list": "list", "tuple": "tuple", "set": "set", "frozenset": "set"}[type(value).__name__]
        items = sorted(value, key=repr) if tag == "set" else value
        return {"t": tag, "items": [encode(v, depth + 1, budget) for v in items]}
    if type(value) is dict:
        return {
            "t": "dict",
            "items": [[encode(k, depth + 1, budget), encode(v, depth + 1, budget)] for k, v in value.items()],
        }
    plain = _stdlib_container(value)
    if plain is not None:  # an ordinary value in a stdlib wrapper: sent by content
        return encode(plain, depth, budget)
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.bool_):  # kept apart from a Python bool ("returns a bool")
            return {"t": "bool", "v": bool(value), "np": True}
        if isinstance(value, np.generic):
            return encode(value.item(), depth, budget)
        if isinstance(value, np.ndarray):
            return _array(np.asarray(value), depth, budget)
    pd = sys.modules.get("pandas")
    if pd is not None:
        if isinstance(value, pd.DataFrame):
            columns = [encode(c, depth + 1, budget) for c in value.columns]
            data = [_column(value.iloc[:, i].to_numpy(), depth + 1, budget)
                    for i in range(value.shape[1])]
            index = _column(value.index.to_numpy(), depth + 1, budget)
            return {"t": "dataframe", "columns": columns, "data": data, "index": index}
        if isinstance(value, pd.Series):
            return {
                "t": "series",
                "name": encode(value.name, depth + 1, budget),
                "values": _array(value.to_numpy(), depth + 1, budget),
                "index": _array(value.index.to_numpy(), depth + 1, budget),
            }
        if isinstance(value, pd.Index):
            return _array(value.to_numpy(), depth, budget)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return {"t": "tensor", "npy": _npy_b64(value.detach().cpu().numpy())}
    raise Unsupported(f"a value of type {_name(type(value))}")


# ---------------------------------------------------------------- kernel side only below

_refs: dict[str, Any] = {}


def _own_builtins() -> dict[str, Any]:
    """A copy of the builtins this module was installed with (the client gives it its own, not
    the notebook namespace's), so grader-written code cannot change the harness's."""
    own = globals()["__builtins__"]
    return dict(own if isinstance(own, dict) else vars(own))


def _user_ns() -> dict[str, Any]:
    ip = sys.modules["IPython"].get_ipython()
    return ip.user_ns


def decode(doc: Any) -> Any:
    """Decode grader-sent arguments (trusted: the grader wrote them)."""
    tag = doc["t"]
    if tag in ("none",):
        return None
    if tag in ("bool", "str"):
        return doc["v"]
    if tag == "int":
        return int(doc["v"])
    if tag == "float":
        return float(doc["v"])
    if tag == "bytes":
        return base64.b64decode(doc["b64"])
    if tag in ("list", "tuple", "set"):
        items = [decode(v) for v in doc["items"]]
        return {"list": list, "tuple": tuple, "set": set}[tag](items)
    if tag == "dict":
        return {decode(k): decode(v) for k, v in doc["items"]}
    if tag in ("ndarray", "tensor"):
        import numpy as np

        array = np.load(io.BytesIO(base64.b64decode(doc["npy"])), allow_pickle=False)
        if tag == "tensor":
            import torch

            return torch.from_numpy(array)
        return array
    if tag == "dataframe":
        import pandas as pd

        columns = [decode(c) for c in doc["columns"]]
        frame = pd.DataFrame({i: decode(col) for i, col in enumerate(doc["data"])})
        frame.columns = columns
        frame.index = decode(doc["index"])
        return frame
    if tag == "series":
        import pandas as pd

        return pd.Series(decode(doc["values"]), index=decode(doc["index"]), name=decode(doc["name"]))
    if tag == "ref":
        return _refs[doc["id"]]
    if tag == "expr":
        import numpy as np

        scope = {"np": np, "ns": _user_ns(), "__builtins__": _own_builtins()}
        return eval(doc["code"], scope)  # grader-written code, e.g. a lambda to pass in
    raise ValueError(f"unknown tag {tag!r}")


def _resolve(target: dict[str, Any]) -> Any:
    """A target is a dotted name in the learner's namespace, optionally on a kept object."""
    path = target["path"].split(".") if target.get("path") else []
    if target.get("ref"):
        obj = _refs[target["ref"]]
    else:
        ns = _user_ns()
        if not path or path[0] not in ns:
            raise NameError(path[0] if path else "")
        obj, path = ns[path[0]], path[1:]
    for part in path:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise _MissingPart(_name(type(obj))) from None
    return obj


_MISSING = object()  # a name the patch of a call adds, to be removed again afterwards


class _MissingPart(AttributeError):
    """The name exists but what it holds lacks the next part of the path (``owner``: its type,
    e.g. ``int`` when the learner returned 42 where a pipeline was expected)."""

    def __init__(self, owner: str) -> None:
        super().__init__(owner)
        self.owner = owner


def _describe(obj: Any) -> dict[str, Any]:
    cls = type(obj)
    info: dict[str, Any] = {
        "type": _name(cls),
        "mro": [_name(c) for c in cls.__mro__],
        "callable": callable(obj),
    }
    for attr in ("shape", "dtype", "ndim"):
        try:
            value = getattr(obj, attr)
        except Exception:
            continue
        if attr == "shape":
            with contextlib.suppress(Exception):
                info["shape"] = [int(s) for s in value]
        else:
            info[attr] = str(value)
    with contextlib.suppress(Exception):
        info["len"] = len(obj)
    steps = getattr(obj, "steps", None)
    if isinstance(steps, list):
        info["steps"] = [[str(n), _name(type(s))] for n, s in steps]
    if hasattr(obj, "get_params") and callable(obj.get_params):
        try:
            params = obj.get_params(deep=False)
            plain = {}
            for k, v in params.items():
                if v is None or isinstance(v, (bool, int, float, str)):
                    plain[str(k)] = v
                else:
                    plain[str(k)] = f"<{_name(type(v))}>"
            info["params"] = plain
        except Exception:
            pass
    if callable(obj):
        try:
            import inspect

            info["signature"] = str(inspect.signature(obj))
        except (TypeError, ValueError):
            pass
    return info


def _publish(doc: dict[str, Any]) -> None:
    from IPython.display import publish_display_data

    publish_display_data({MIME: json.dumps(doc, allow_nan=False)})


def request(payload: str) -> None:
    """Serve one grader request (a JSON document) and publish the answer."""
    _publish(answer(payload))


def request_file(path: str) -> None:
    """Serve a request the grader wrote to ``path`` (a large one: IPython reads a cell's source
    slowly, about 0.3 s per MB), after removing the file, before any learner code runs."""
    import os

    with open(path, encoding="utf-8") as handle:
        payload = handle.read()
    with contextlib.suppress(OSError):
        os.unlink(path)
    request(payload)


def answer(payload: str) -> dict[str, Any]:
    """The answer document to one grader request (also served over a pipe by ``mlgrade.check``)."""
    req = json.loads(payload)
    op = req["op"]
    try:
        if op == "has":
            try:
                _resolve(req["target"])
                result: Any = True
            except (NameError, AttributeError, KeyError):
                result = False
            return {"status": "ok", "value": encode(result)}
        try:
            obj: Any = _resolve(req["target"]) if "target" in req else None
        except (NameError, AttributeError, KeyError) as exc:
            return {"status": "missing", "name": req["target"].get("path", ""), "detail": str(exc),
                    "owner": getattr(exc, "owner", None)}
        if op == "describe":
            return {"status": "ok", "value": encode(_describe(obj))}
        if op == "drop":
            _refs.pop(req["target"].get("ref", ""), None)
            return {"status": "ok", "value": encode(None)}
        if op == "get":
            value = obj
        elif op == "call":
            ns, saved = _user_ns(), {}
            try:  # arguments may be Exprs or kept objects that run learner code too
                args = [decode(a) for a in req.get("args", [])]
                kwargs = {k: decode(v) for k, v in req.get("kwargs", {}).items()}
                for name, doc in req.get("patch", {}).items():  # for this call only
                    saved[name] = ns.get(name, _MISSING)
                    ns[name] = decode(doc)
                value = obj(*args, **kwargs)
            except Exception as exc:
                return {"status": "raised", "ename": type(exc).__name__, "evalue": str(exc)[:500]}
            finally:
                for name, old in saved.items():
                    if old is _MISSING:
                        ns.pop(name, None)
                    else:
                        ns[name] = old
        elif op == "eval":
            import numpy as np

            scope: dict[str, Any] = {"np": np, "ns": _user_ns(), "__builtins__": _own_builtins()}
            try:
                scope.update({k: decode(v) for k, v in req.get("inputs", {}).items()})
                code = req["code"]
                try:
                    value = eval(compile(code, "<mlgrade-grader>", "eval"), scope)
                except SyntaxError:
                    exec(compile(code, "<mlgrade-grader>", "exec"), scope)
                    value = scope.get("result")
            except Exception as exc:
                return {"status": "raised", "ename": type(exc).__name__, "evalue": str(exc)[:500]}
        else:
            raise ValueError(f"unknown op {op!r}")
        if req.get("discard"):  # e.g. fit(), which returns the estimator itself
            return {"status": "ok", "value": encode(None)}
        if req.get("keep"):
            ref = f"r{len(_refs) + 1}"
            _refs[ref] = value
            return {"status": "ok", "value": {"t": "ref", "id": ref, "type": _name(type(value))}}
        try:
            doc = encode(value)
        except Unsupported as exc:
            return {"status": "unsupported", "detail": str(exc)}
        return {"status": "ok", "value": doc}
    except Exception as exc:  # the harness itself failed; the grader fails closed
        return {"status": "harness_error", "ename": type(exc).__name__, "evalue": str(exc)[:500]}
