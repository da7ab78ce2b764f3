"""Run a grader's heavy work on learner-supplied specs or files in a forked child, under a budget.

A refit of a learner's estimator, a search over its grid or the decoding of a saved image can
take any amount of memory and time, and a library may write to file descriptors 1 and 2. None
of that may reach the grading process, so :func:`run_budgeted` runs ``work()`` in a child forked
from it (copy-on-write: nothing is imported again, the work may be a closure) with:

* an address-space limit (``RLIMIT_AS``) of ``memory_mb`` above what the child starts with,
* a wall-clock limit of ``seconds`` (the child is killed at it),
* stdin, stdout and stderr on ``/dev/null``, native thread pools at one thread.

The child answers with plain data only (numbers, strings, containers, NumPy arrays and
scalars), read back here by a restricted unpickler: a grader that returns an object is a bug.
What the learner's values cause (an exception in the work, a :class:`LearnerFailure`, the
memory or the time limit, a crash) comes back as a :class:`LearnerFailure` whose message names
the limit; the child never raises into the grader.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import io
import os
import pickle
import resource
import select
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from threadpoolctl import ThreadpoolController

from mlgrade.bridge.client import LearnerFailure

T = TypeVar("T")

SECONDS = 60.0  # one grader-side fit or search of a learner's estimator
# the grading run's own deadline (time.monotonic()), set by the graders' runner: budgeted work
# never outlives the grading it belongs to
_deadline: float | None = None


@contextlib.contextmanager
def grading_deadline(seconds_left: float | None) -> Iterator[None]:
    """Within this block, budgeted work gets at most ``seconds_left`` (from now) in all."""
    global _deadline
    before = _deadline
    _deadline = None if seconds_left is None else time.monotonic() + max(seconds_left, 0.0)
    try:
        yield
    finally:
        _deadline = before
MEMORY_MB = 1024  # above what the child starts with
MAX_REPLY_BYTES = 256 * 1024 * 1024
_PR_SET_PDEATHSIG = 1


class _PlainData(pickle.Unpickler):
    """Plain data only: builtins' containers and NumPy arrays, dtypes and scalars."""

    _NUMPY = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "numpy" and name in self._NUMPY:
            return super().find_class(module, name)
        if (module, name) in {("builtins", "complex"), ("builtins", "set"),
                              ("builtins", "frozenset"), ("builtins", "slice")}:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}{': ' + text if text else ''}"


def _vm_size() -> int:
    """This process's virtual size in bytes (0 when /proc cannot tell)."""
    with contextlib.suppress(OSError, StopIteration, ValueError), open("/proc/self/status") as st:
        return int(next(line for line in st if line.startswith("VmSize:")).split()[1]) * 1024
    return 0


_controller: tuple[int, ThreadpoolController] | None = None


def _thread_pools() -> ThreadpoolController:
    """The native thread pools loaded here, found once (a scan takes tens of milliseconds;
    limiting them after that, microseconds) and again when modules were imported since."""
    global _controller
    if _controller is None or _controller[0] != len(sys.modules):
        _controller = (len(sys.modules), ThreadpoolController())
    return _controller[1]


def _child(work: Callable[[], Any], write_fd: int, memory_mb: int, parent: int,
           pools: ThreadpoolController) -> None:
    """In the forked child: limits, the work, one reply on ``write_fd``: a pickled (kind,
    payload) where payload is the pickled result (bytes) or a reason (str)."""
    reply: tuple[str, bytes | str]
    try:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the grader
        if os.getppid() != parent:
            return
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        faulthandler.disable()  # a crash here is reported by the parent, not dumped on its stderr
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # a library's own prints (libsvm's verbose output) go nowhere
            os.dup2(devnull, fd)
        limit = _vm_size() + memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        with pools.limit(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings and the like: only values count
            value = work()
        reply = ("ok", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except LearnerFailure as exc:
        reply = ("learner", str(exc))
    except MemoryError:
        reply = ("memory", "")
    except pickle.PicklingError as exc:
        reply = ("unpicklable", _first_line(exc))
    except BaseException as exc:  # every failure is reported, never raised past here
        reply = ("raised", _first_line(exc))
    data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(data)
    while view:
        view = view[os.write(write_fd, view):]


def _read_reply(read_fd: int, seconds: float) -> bytes | None:
    """The child's whole reply, or None if it did not finish within ``seconds``."""
    deadline = time.monotonic() + seconds
    chunks: list[bytes] = []
    total = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([read_fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(read_fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > MAX_REPLY_BYTES:
            raise RuntimeError(f"a grader's budgeted work answered more than {MAX_REPLY_BYTES} "
                               "bytes: return less")
        chunks.append(chunk)


def _plain(data: bytes) -> Any:
    try:
        return _PlainData(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise RuntimeError(f"budgeted work must return plain data ({exc})") from None


def run_budgeted(work: Callable[[], T], *, what: str, seconds: float = SECONDS,
                 memory_mb: int = MEMORY_MB,
                 failed: str = "failed when the grader fitted it on its own data") -> T:
    """``work()`` run in a forked child under ``seconds`` and ``memory_mb``; its plain-data result.

    Raises :class:`LearnerFailure` (``what`` + the reason, naming the limit) when the work
    raises, runs out of either budget or crashes; ``failed`` says what the work was doing, for
    an exception raised in it. A result that is not plain data is a grader bug (RuntimeError).
    """
    limit = f"the grader's time limit of {seconds:g} s for this work"
    if _deadline is not None and _deadline - time.monotonic() < seconds:
        # the grading's own time runs out first: so does this work
        seconds = max(_deadline - time.monotonic(), 0.0)
        limit = f"the {seconds:.0f} s left for grading"
    parent, pools = os.getpid(), _thread_pools()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns, never runs the grader's exit handlers
        code = 0
        try:
            os.close(read_fd)
            _child(work, write_fd, memory_mb, parent, pools)
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    os.close(write_fd)
    data: bytes | None = None
    try:
        data = _read_reply(read_fd, seconds)
    finally:
        os.close(read_fd)
        if data is None:  # over time (or the grader was interrupted): the child goes
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if data is None:
        raise LearnerFailure(f"{what} took longer than {limit} and was stopped: use fewer or "
                             "smaller estimators, iterations or candidates.")
    if not data:
        cause = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                 else f"exit code {os.waitstatus_to_exitcode(status)}")
        raise LearnerFailure(f"{what} crashed while the grader worked on it ({cause}), most "
                             f"likely over the grader's memory limit of {memory_mb} MB.")
    kind, payload = _plain(data)
    if kind == "ok":
        return _plain(payload)  # type: ignore[no-any-return,unused-ignore]
    if kind == "learner":
        raise LearnerFailure(payload)
    if kind == "memory":
        raise LearnerFailure(f"{what} needed more than the grader's memory limit of "
                             f"{memory_mb} MB and was stopped: use a smaller model or "
                             "fewer, smaller estimators.")
    if kind == "unpicklable":
        raise RuntimeError(f"budgeted work must return plain data ({payload})")
    raise LearnerFailure(f"{what} {failed} ({payload}).")
