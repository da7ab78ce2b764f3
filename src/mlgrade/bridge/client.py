"""Grader-side half of the bridge: the ``nb`` fixture graders use to question the kernel.

Each request runs as a hidden cell (no history) under its own timeout; the answer comes back
as plain data and is decoded strictly in this process. Failures that are the learner's
(missing name, exception, timeout, dead kernel, unsupported or invalid value) raise
:class:`LearnerFailure`, an ``AssertionError``: the test fails with a learner-facing message.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from nbformat.v4 import new_code_cell

from mlgrade.bridge import harness
from mlgrade.bridge.codec import DecodeError, decode_value, read_npy_bytes, strict_json
from mlgrade.bridge.refs import Ref, Target
from mlgrade.failures import LearnerFailure as LearnerFailure  # graders import it from here
from mlgrade.jobfiles import fresh_path, read_job_file, write_job_file

if TYPE_CHECKING:  # at run time only the CLI's grading session needs them (nbclient)
    from mlgrade.bridge.dispatch import KernelDispatcher, StdinAnswer

_HARNESS_SOURCE = Path(harness.__file__).read_text(encoding="utf-8")
# The harness runs in a module namespace of its own, with a builtins dict of its own (a copy of
# the `builtins` module's, not whatever `__builtins__` the notebook's namespace holds). That only
# makes accidents less likely: a notebook can still patch anything in its kernel, so no verdict
# may rest on the harness behaving (docs/security.md, "the kernel is an oracle").
_INSTALL = (
    "import sys as _s, types as _t\n"
    "_m = _t.ModuleType('_mlgrade_harness')\n"
    "_m.__dict__['__builtins__'] = dict(vars(_s.modules['builtins']))\n"
    "exec(compile({src!r}, '<mlgrade-harness>', 'exec'), _m.__dict__)\n"
    "_s.modules['_mlgrade_harness'] = _m\n"
    "del _s, _t, _m\n"
)
_REQUEST = "__import__('sys').modules['_mlgrade_harness'].request({payload!r})"
_REQUEST_FILE = "__import__('sys').modules['_mlgrade_harness'].request_file({path!r})"
# a request larger than this travels in a file in the job folder, not in the cell's source
# (IPython transforms a cell's source at about 0.3 s per MB; reading a file costs nothing)
INLINE_REQUEST_BYTES = 16_384


@dataclass(frozen=True)
class Expr:
    """Grader-written code evaluated in the kernel to build an argument (e.g. a lambda)."""

    code: str


def _holds_ref(value: Any, depth: int = 0) -> bool:
    """Whether a decoded value holds a :class:`Ref` anywhere (lists, tuples, sets, dicts)."""
    if isinstance(value, Ref):
        return True
    if depth > 64:
        return False
    if isinstance(value, dict):
        return any(_holds_ref(k, depth + 1) or _holds_ref(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_holds_ref(v, depth + 1) for v in value)
    return False


def _as_target(target: str | Ref | Target) -> Target:
    if isinstance(target, Target):
        return target
    if isinstance(target, Ref):
        return Target(ref=target.id)
    return Target(path=target)


def encode_arg(value: Any) -> dict[str, Any]:
    if isinstance(value, Expr):
        return {"t": "expr", "code": value.code}
    if isinstance(value, Ref):
        return {"t": "ref", "id": value.id}
    return harness.encode(value)


@runtime_checkable
class Transport(Protocol):
    """How a request document reaches a harness in the learner's kernel and its answer
    documents come back: hidden cells on the grading session's kernel (:class:`CellTransport`),
    or a pipe to a kernel that serves requests itself (``mlgrade.check()`` in a notebook)."""

    # answers the kernel's ``input()`` during the next requests (``Notebook.call_with_stdin``)
    stdin: StdinAnswer | None

    @property
    def job_dir(self) -> object: ...

    def remaining(self) -> float:
        """Seconds of grading time left."""
        ...

    def exchange(self, payload: str, timeout: float, what: str) -> list[Any]:
        """Send one request; the answer documents that came back (normally exactly one).
        Raises :class:`LearnerFailure` on a timeout or a dead kernel."""
        ...


class CallTimedOut(LearnerFailure):
    """A learner call ran past its limit and was stopped."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


# the hint for a name the notebook never defined (mlgrade.hints recognises it)
NOT_DEFINED = " is not defined: did you complete and run its cell?"


def timeout_failure(what: str, seconds: float) -> CallTimedOut:
    return CallTimedOut(f"{what} took longer than {seconds:.0f} s and was stopped "
                        "(an infinite loop, or much slower code than needed?).", seconds)


def dead_failure(what: str) -> LearnerFailure:
    return LearnerFailure(f"the kernel died while checking {what} "
                          "(os._exit, a crash, or too much memory).")


class CellTransport:
    """Requests as hidden cells executed by the grading session (:class:`KernelDispatcher`)."""

    def __init__(self, kernel: KernelDispatcher, call_timeout: float, max_result_bytes: int) -> None:
        self._kernel = kernel
        self.call_timeout = call_timeout
        self.max_result_bytes = max_result_bytes
        self._installed = False
        self._calls = 0
        self.stdin: StdinAnswer | None = None  # set by Notebook.call_with_stdin, for one call

    @property
    def job_dir(self) -> object:
        return self._kernel.job_dir

    def remaining(self) -> float:
        return self._kernel.remaining()

    def _run(self, source: str, timeout: float, what: str) -> list[Any]:
        left = self._kernel.remaining()
        if left <= 0:
            raise LearnerFailure(f"grading ran out of time before checking {what}.")
        cell = new_code_cell(source)
        self._calls += 1
        outcome = self._kernel.run(cell, min(timeout, left), self.max_result_bytes, stdin=self.stdin)
        if outcome.status == "timeout":
            raise timeout_failure(what, min(timeout, left))
        if outcome.status == "dead":
            raise dead_failure(what)
        return outcome.outputs

    def _ensure_harness(self) -> None:
        if not self._installed:
            outputs = self._run(_INSTALL.format(src=_HARNESS_SOURCE), self.call_timeout, "the notebook")
            if any(o.get("output_type") == "error" for o in outputs):
                raise LearnerFailure("the grader could not talk to your kernel; "
                                     "did a cell replace Python built-ins or modules?")
            self._installed = True

    def fresh_session(self, what: str, through: str | None = None) -> None:
        """Restart the kernel and replay the notebook (:meth:`KernelDispatcher.fresh_session`)."""
        left = self._kernel.remaining()
        self._installed = False
        if left <= 0 or not self._kernel.fresh_session(left, through):
            raise LearnerFailure(f"{what} could not be run again in a fresh kernel (a cell timed "
                                 "out, failed to start or killed the kernel on the second run).")

    def exchange(self, payload: str, timeout: float, what: str) -> list[Any]:
        self._ensure_harness()
        with _request_file(Path(str(self._kernel.job_dir)), payload) as path:
            source = (_REQUEST.format(payload=payload) if path is None
                      else _REQUEST_FILE.format(path=str(path)))
            outputs = self._run(source, timeout, what)
        return [o["data"][harness.MIME] for o in outputs
                if o.get("output_type") == "display_data" and harness.MIME in o.get("data", {})]


@contextlib.contextmanager
def _request_file(folder: Path, payload: str) -> Iterator[Path | None]:
    """A large request written to a new file in the kernel's folder (None: send it inline).

    The file gets an unpredictable name and is never written through a link
    (:func:`mlgrade.jobfiles.fresh_path`). The kernel's code could still change it before the
    harness reads it, but that only changes the arguments its own functions receive: verdicts
    never rest on the kernel (docs/security.md). The harness removes the file before any
    learner code runs; it is removed here too."""
    if len(payload) <= INLINE_REQUEST_BYTES:
        yield None
        return
    path = None
    try:
        path = fresh_path(folder, ".mlgrade-request-", ".json")
        write_job_file(path, payload.encode("utf-8"))
    except (OSError, LearnerFailure):  # a full disk, a swapped file: the slow way still works
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()
        yield None
        return
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


class Notebook:
    """The learner's executed notebook, as graders see it (the ``nb`` fixture)."""

    def __init__(self, kernel: KernelDispatcher | Transport, call_timeout: float,
                 max_result_bytes: int) -> None:
        # a transport already (the self-check's pipe), or the grading session's kernel
        self._transport: Transport = (kernel if isinstance(kernel, Transport) else
                                      CellTransport(kernel, call_timeout, max_result_bytes))
        self.call_timeout = call_timeout
        self.max_result_bytes = max_result_bytes
        # what ran past its limit in this grading: not waited for again (a learner function that
        # hangs costs one call timeout per check, not one per test)
        self._overran: dict[str, float] = {}

    def remaining(self) -> float:
        """Seconds of grading time left."""
        return self._transport.remaining()

    @property
    def job_dir(self) -> Path:
        """The kernel's working directory: graders may put input files here."""
        return Path(str(self._transport.job_dir))

    # -- plumbing --------------------------------------------------------------------------
    def _request(self, req: dict[str, Any], what: str, timeout: float | None = None) -> Any:
        payload = json.dumps(req, allow_nan=False)
        if what in self._overran:
            raise LearnerFailure(f"{what} was not run again: on an earlier test it took longer "
                                 f"than {self._overran[what]:.0f} s and was stopped (an infinite "
                                 "loop, or much slower code than needed?).")
        try:
            docs = self._transport.exchange(payload, timeout or self.call_timeout, what)
        except CallTimedOut as exc:
            self._overran[what] = exc.seconds
            raise
        if len(docs) != 1 or not isinstance(docs[0], str):
            raise LearnerFailure(f"no readable answer came back for {what}.")
        try:
            answer = strict_json(docs[0], self.max_result_bytes)
            if not isinstance(answer, dict):
                raise DecodeError("not an object")
            status = answer.get("status")
            if status == "ok":
                value = decode_value(answer.get("value"), self.max_result_bytes)
                # a kept object comes back exactly when one was asked for: a forged answer must
                # not hand grader code a Ref where it expects plain data, or plain data for a Ref
                if isinstance(value, Ref) != bool(req.get("keep")) or (
                        not req.get("keep") and _holds_ref(value)):
                    raise DecodeError("a kept-object handle where plain data was expected"
                                      if not req.get("keep") else "no kept-object handle")
                return value
        except DecodeError as exc:
            raise LearnerFailure(f"the value of {what} could not be read back ({exc}).") from None
        if status == "missing":
            path = req["target"].get("path") or what
            owner = answer.get("owner")
            if isinstance(owner, str) and owner:  # the name exists; what it holds lacks `path`
                owner = owner.removeprefix("builtins.")[:80]
                whose = ("the object your code returned" if req["target"].get("ref")
                         else f"`{path.rsplit('.', 1)[0]}`")
                article = "an" if owner[:1].lower() in "aeiou" else "a"
                raise LearnerFailure(f"{whose} is {article} {owner}, which has no "
                                     f"`{path.rsplit('.', 1)[-1]}`: "
                                     "return (or store) the kind of object the question asks for.")
            raise LearnerFailure(f"`{path}`{NOT_DEFINED}")
        if status == "raised":
            ename, evalue = str(answer.get("ename")), str(answer.get("evalue", ""))[:300]
            if ename == "NotImplementedError":
                raise LearnerFailure(f"{what} is not implemented yet (it raises NotImplementedError): "
                                     "replace the `raise NotImplementedError` line with your code.")
            raise LearnerFailure(f"{what} raised {ename}" + (f": {evalue}" if evalue else "."))
        if status == "unsupported":
            raise LearnerFailure(f"{what} returned a value mlgrade cannot read back "
                                 f"({str(answer.get('detail'))[:200]}); return numbers, lists, "
                                 "dicts, NumPy arrays or pandas objects.")
        raise LearnerFailure(f"the grader could not check {what} ({status}).")

    # -- the grader API --------------------------------------------------------------------
    def has(self, name: str | Ref | Target) -> bool:
        """Whether ``name`` (a dotted path such as ``"model.predict"``) exists."""
        target = _as_target(name)
        return bool(self._request({"op": "has", "target": target.to_json()}, f"`{target.label()}`"))

    def get(self, name: str | Ref | Target) -> Any:
        """The value of a variable (or attribute path), as plain data."""
        target = _as_target(name)
        return self._request({"op": "get", "target": target.to_json()}, f"`{target.label()}`")

    def call(self, target: str | Ref | Target, *args: Any, timeout: float | None = None,
             keep: bool = False, discard: bool = False, patch: dict[str, Any] | None = None,
             **kwargs: Any) -> Any:
        """Call a learner function or method with grader-chosen arguments.

        With ``keep=True`` the result stays in the kernel and a :class:`Ref` comes back, so a
        grader can fit a learner's estimator and call its methods later. With ``discard=True``
        nothing comes back (``None``): for calls made for their effect, such as ``fit``, whose
        result (the estimator itself) is no plain data. ``patch`` maps notebook names to values
        (or :class:`Expr`) that replace them for this call only: the grader's own helper in
        place of the learner's, to tell whether a function is right given a correct helper
        (for a hint: a verdict never rests on a patched call).
        """
        tgt = _as_target(target)
        req = {"op": "call", "target": tgt.to_json(), "keep": keep, "discard": discard,
               "args": [encode_arg(a) for a in args],
               "kwargs": {k: encode_arg(v) for k, v in kwargs.items()}}
        if patch:
            req["patch"] = {name: encode_arg(v) for name, v in patch.items()}
        return self._request(req, f"`{tgt.label()}(...)`", timeout)

    def call_with_stdin(self, target: str | Ref | Target, *args: Any, answer: StdinAnswer,
                        max_inputs: int = 8, max_input_chars: int = 200_000,
                        timeout: float | None = None, **kwargs: Any) -> Any:
        """:meth:`call`, with the kernel's ``input()`` answered by ``answer`` in this process.

        For the duration of this one call, each ``input(text)`` in the kernel sends ``text`` to
        the grader over Jupyter's stdin channel and returns ``answer(text)`` (``None`` makes it
        raise ``EOFError``). A grader passes in an object whose methods call ``input`` (e.g. a
        fake LLM client built with :class:`Expr`): the record of what it was asked then lives
        here, where the kernel cannot rewrite it. ``text`` is learner-controlled (the learner
        may call ``input`` directly; that is the same as calling the object with that text),
        so judge it like any return value. Past ``max_inputs`` requests, or for a text over
        ``max_input_chars``, ``answer`` is not consulted and the kernel gets ``EOFError``.
        """
        transport = self._transport  # every transport can answer input() (Transport.stdin)
        count = [0]

        def guarded(text: str) -> str | None:
            count[0] += 1
            if count[0] > max_inputs or len(text) > max_input_chars:
                return None
            return answer(text)

        transport.stdin = guarded
        try:
            return self.call(target, *args, timeout=timeout, **kwargs)
        finally:
            transport.stdin = None

    def describe(self, target: str | Ref | Target) -> dict[str, Any]:
        """A small description: type, mro, shape, dtype, len, Pipeline steps, params, signature.

        The description is computed in the learner's kernel, so it is a *learner claim*: plain
        data the learner could have typed by hand (a class can rename itself, ``get_params``
        can lie). Judge it like any value a learner function returned; never let it stand in
        for a check the grader can make on its own (e.g. rebuild an estimator from its params
        in the grader and fit it there).
        """
        tgt = _as_target(target)
        info = self._request({"op": "describe", "target": tgt.to_json()}, f"`{tgt.label()}`")
        if not isinstance(info, dict):
            raise LearnerFailure(f"could not describe `{tgt.label()}`.")
        return info

    def eval_untrusted(self, code: str, *, what: str, timeout: float | None = None,
                       keep: bool = False, **inputs: Any) -> Any:
        """Run grader-written ``code`` in the learner's kernel; the result is LEARNER-CONTROLLED.

        The code runs in a kernel the notebook has had every chance to patch (``__import__``,
        ``compile``, audit hooks, pandas, ``warnings``, class names, the caller's frames), so
        its value is exactly as trustworthy as a learner function's return value: plain data
        to be judged in the grader, never a verdict. Use it to *gather* data the learner could
        have handed over themselves (e.g. several calls chained in one round trip); do not use
        it to compute whether the learner is right. ``ns`` is the learner's namespace, ``np``
        is NumPy, each keyword is an input; an expression's value, or the variable ``result``,
        comes back as plain data (or a :class:`Ref` with ``keep=True``). ``what`` names the
        learner's work in failure messages (e.g. "`clean_customers(df)`").
        """
        req = {"op": "eval", "code": code, "keep": keep,
               "inputs": {k: encode_arg(v) for k, v in inputs.items()}}
        return self._request(req, what, timeout)

    def fresh_session(self, what: str = "your notebook", through: str | None = None) -> bool:
        """Restart the kernel and replay the notebook's completed cells silently: a new
        session that shares only the job folder with the last (e.g. load in it what was saved
        before). With ``through`` (e.g. ``"def load_model"``) only the cells up to the last one
        whose source contains it are replayed. Every :class:`Ref` of the old session is gone.
        False (nothing done) where the transport cannot restart its kernel (a learner's
        self-check inside the notebook)."""
        fresh = getattr(self._transport, "fresh_session", None)
        if fresh is None:
            return False
        fresh(what, through)
        return True

    def drop(self, ref: Ref) -> None:
        """Forget a kept object."""
        self._request({"op": "drop", "target": {"ref": ref.id}}, "cleanup")

    def read_file(self, relpath: str, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        """Bytes of a file the learner's code wrote in the job folder (no links, no FIFOs)."""
        self._inside(relpath)
        return read_job_file(self.job_dir, relpath, max_bytes)

    def read_npy(self, relpath: str) -> Any:
        """An array the learner's code saved with ``np.save`` in the job folder, read strictly."""
        self._inside(relpath)
        data = read_job_file(self.job_dir, relpath, self.max_result_bytes)
        try:
            return read_npy_bytes(data, self.max_result_bytes)
        except DecodeError as exc:
            raise LearnerFailure(f"`{relpath}` could not be read ({exc}).") from None

    def _inside(self, relpath: str) -> Path:
        path = (self.job_dir / relpath)
        if ".." in Path(relpath).parts or Path(relpath).is_absolute():
            raise ValueError(f"grader asked for a path outside the job folder: {relpath!r}")
        return path
