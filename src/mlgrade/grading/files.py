"""Grader-side discipline for files in the job folder: the learner's code wrote them.

The job folder is the learner's kernel's working directory, so every name in it may be a
symbolic link to the grader's own files, a FIFO that blocks a reader forever, a device, a
multi-gigabyte file or a folder 1,500 levels deep. Graders never ``open()``, ``sqlite3.connect``
or ``MlflowClient`` a path in it directly; they use these helpers:

``read_job_file(job_dir, relpath, max_bytes) -> bytes``
    The bytes of one regular file. Every path component is opened with ``O_NOFOLLOW``
    (walking with directory descriptors), the file with ``O_NONBLOCK`` (a FIFO never blocks);
    it must be a regular file, and the cap is enforced while reading (the kernel may still be
    writing). A violation raises :class:`LearnerFailure` with a learner-facing reason.

``copy_job_tree(job_dir, relpath, dest, *, max_bytes, max_files, max_depth) -> Path``
    Copies a learner-written folder (an MLflow store, a saved model) or single file out of the
    job folder into ``dest`` (a grader-private folder, e.g. from ``tempfile.mkdtemp``) with the
    same discipline, iteratively; nothing is skipped silently: a link, FIFO or device anywhere
    in the tree, more than ``max_files`` entries, more than ``max_bytes`` in all or more than
    ``max_depth`` levels raises :class:`LearnerFailure`. Returns ``dest / <last part of relpath>``.

``fresh_path(job_dir, prefix, suffix) -> Path``
    A new, empty file (mode 0644, owned like the job folder) at an unpredictable name
    (``prefix + secrets.token_hex(8) + suffix``) created with ``O_CREAT|O_EXCL|O_NOFOLLOW``:
    a learner cannot pre-plant a link where the grader will write. Build the content in a
    grader-private folder and fill the file with :func:`write_job_file`, which refuses a file
    that was swapped for a link meanwhile (``sqlite3.connect(path)`` would follow one).

``write_job_file(path, data)``
    Replace the content of a file made by :func:`fresh_path`, without following links.

``run_isolated(fn, *args, timeout, what) -> Any``
    Runs a third-party reader (``MlflowClient``, ``sqlite3``) on a *copy* made by
    :func:`copy_job_tree` / :func:`read_job_file`, in a child interpreter under
    ``timeout`` seconds and an address-space limit (``READER_MEMORY_MB`` above its start).
    A timeout, a crash, the memory limit or any exception becomes
    ``LearnerFailure(f"{what}: <reason>")``; the child is killed on timeout. ``fn`` must be a
    module-level function (of an importable module or of the grader file itself), its
    arguments picklable, and its result plain data: None, bool, int, float, complex, str,
    bytes, list, tuple, dict, set, frozenset (datetime objects too); anything else fails.

``IsolatedChild(preload=("mlflow",))`` then ``child.run(fn, *args, timeout, what)``
    The same child, started ahead of need: it imports ``preload`` while the grader does other
    work (e.g. waits for the notebook to run), then runs its one job as ``run_isolated`` does;
    ``child.close()`` stops it if the job never comes.

Example (month 6)::

    with tempfile.TemporaryDirectory() as tmp:
        store = copy_job_tree(job_dir, "grader_mlruns", Path(tmp), max_bytes=20_000_000,
                              max_files=2_000, max_depth=12)
        run = run_isolated(_read_run, store.as_uri(), run_id, timeout=60,
                           what="the MLflow run could not be read")
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import pickle
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlgrade.failures import LearnerFailure
from mlgrade.jobfiles import (
    _CLOEXEC,
    _copy_fd,
    _kind,
    _open_dir,
    _open_regular,
    _parts,
    _refuse,
    _walk,
)
from mlgrade.jobfiles import fresh_path as fresh_path  # part of this module's contract
from mlgrade.jobfiles import read_job_file as read_job_file
from mlgrade.jobfiles import write_job_file as write_job_file

MAX_RESULT_BYTES = 64 * 1024 * 1024  # what run_isolated accepts back from its child
READER_MEMORY_MB = 2048  # run_isolated's child: its imports (MLflow's) and the reading


def copy_job_tree(job_dir: Path, relpath: str, dest: Path, *, max_bytes: int, max_files: int,
                  max_depth: int) -> Path:
    """Copy the folder (or file) ``relpath`` of the job folder into ``dest``; see the module doc.

    Iterative: a folder is re-opened from the copy's root component by component (each with
    ``O_NOFOLLOW``) rather than holding one descriptor per pending folder."""
    parts = _parts(relpath)
    top = Path(dest) / parts[-1]
    root_parent = _walk(Path(job_dir), parts)
    try:
        st = _lstat_or_refuse(parts[-1], root_parent)
        if stat.S_ISREG(st.st_mode):
            fd = _open_regular(parts[-1], root_parent, max_bytes)
            try:
                _write_copy(fd, parts[-1], top, max_bytes)
            finally:
                os.close(fd)
            return top
        if not stat.S_ISDIR(st.st_mode):
            raise LearnerFailure(f"{parts[-1]} is {_kind(st.st_mode)}, not a regular folder; "
                                 "write a regular folder.")
        root_fd = _open_dir(parts[-1], root_parent)
    finally:
        os.close(root_parent)
    try:
        top.mkdir(mode=0o755)
        budget = [max_bytes, max_files]
        pending: list[tuple[str, ...]] = [()]
        while pending:
            rel = pending.pop()
            if len(rel) > max_depth:
                raise LearnerFailure(f"{relpath} is nested deeper than {max_depth} folders.")
            fd = _reopen(root_fd, rel)
            try:
                pending.extend(_copy_level(fd, rel, top, budget, relpath))
            finally:
                if fd != root_fd:
                    os.close(fd)
    finally:
        os.close(root_fd)
    return top


def _lstat_or_refuse(name: str, dir_fd: int) -> os.stat_result:
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except OSError:
        raise _refuse(name, dir_fd, "a regular file or folder") from None


def _reopen(root_fd: int, rel: tuple[str, ...]) -> int:
    fd = root_fd
    for part in rel:
        next_fd = _open_dir(part, fd)
        if fd != root_fd:
            os.close(fd)
        fd = next_fd
    return fd


def _copy_level(fd: int, rel: tuple[str, ...], top: Path, budget: list[int],
                relpath: str) -> list[tuple[str, ...]]:
    """Copy the files of one folder; return its sub-folders (to visit later)."""
    subdirs: list[tuple[str, ...]] = []
    with os.scandir(fd) as entries:
        names = [entry.name for entry in entries]
    for name in sorted(names):
        budget[1] -= 1
        if budget[1] < 0:
            raise LearnerFailure(f"{relpath} holds too many files (more than the limit).")
        shown = "/".join((*rel, name))
        st = os.lstat(name, dir_fd=fd)
        target = top.joinpath(*rel, name)
        if stat.S_ISDIR(st.st_mode):
            target.mkdir(mode=0o755)
            subdirs.append((*rel, name))
        elif stat.S_ISREG(st.st_mode):
            file_fd = _open_regular(name, fd, budget[0])
            try:
                budget[0] -= _write_copy(file_fd, shown, target, budget[0])
            finally:
                os.close(file_fd)
        else:
            raise LearnerFailure(f"{relpath}/{shown} is {_kind(st.st_mode)}; "
                                 "only regular files and folders are accepted there.")
    return subdirs


def _write_copy(fd: int, name: str, target: Path, max_bytes: int) -> int:
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC, 0o644)
    try:
        return _copy_fd(fd, name, max_bytes, lambda chunk: os.write(out, chunk))
    finally:
        os.close(out)


# -------------------------------------------------------------- third-party readers, isolated

class _PlainUnpickler(pickle.Unpickler):
    """Only plain data comes back from the child: no class but a few value types."""

    _ALLOWED = {("builtins", "complex"), ("builtins", "set"), ("builtins", "frozenset"),
                ("datetime", "datetime"), ("datetime", "date"), ("datetime", "time"),
                ("datetime", "timedelta"), ("datetime", "timezone")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not plain data")
        return super().find_class(module, name)


def _locate(fn: Callable[..., Any]) -> tuple[str, str | None, str]:
    """How the child finds ``fn``: module name, its file (grader modules are not importable
    by name: pytest imports them with ``--import-mode=importlib``), qualified name."""
    qualname = getattr(fn, "__qualname__", "")
    module = getattr(fn, "__module__", None)
    if not module or not qualname or "<" in qualname:
        raise TypeError("run_isolated needs a module-level function")
    file = getattr(sys.modules.get(module), "__file__", None)
    return module, file, qualname


def _resolve(module: str, file: str | None, qualname: str) -> Any:
    try:
        obj: Any = importlib.import_module(module)
    except ImportError:
        if file is None:
            raise
        spec = importlib.util.spec_from_file_location(f"_mlgrade_isolated_{module}", file)
        if spec is None or spec.loader is None:
            raise
        obj = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(obj)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


_BOOTSTRAP = (
    "import importlib, pickle, sys\n"
    "for name in sys.argv[1:]:  # preloaded while the job is still being prepared\n"
    "    try:\n"
    "        importlib.import_module(name)\n"
    "    except Exception:\n"
    "        pass\n"
    "job = pickle.load(sys.stdin.buffer)\n"
    "sys.path[:] = job['path']\n"
    "from mlgrade.grading.files import _child_main\n"
    "_child_main(job)\n"
)


def _child_main(job: dict[str, Any]) -> None:
    """Child process: run the reader under an address-space limit; write ("ok", pickled
    result) or ("error", reason) on the original stdout. Whatever the reader prints goes to
    stderr (discarded by the parent)."""
    import resource

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    try:
        with open("/proc/self/status") as status:
            start = next((int(line.split()[1]) * 1024 for line in status
                          if line.startswith("VmSize:")), 0)
        limit = start + READER_MEMORY_MB * 1024 * 1024  # imports included: generous
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        result = _resolve(*job["where"])(*job["args"])
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        reply: tuple[str, Any] = ("ok", data)
        if len(data) > MAX_RESULT_BYTES:
            reply = ("error", "the reader's answer is too large")
    except MemoryError:
        reply = ("error", f"reading it needed more than the grader's memory limit of "
                          f"{READER_MEMORY_MB} MB")
    except BaseException as exc:  # every failure is reported, never raised past here
        reply = ("error", f"{type(exc).__name__}: {str(exc)[:300]}")
    out.write(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
    out.close()


def run_isolated(fn: Callable[..., Any], *args: Any, timeout: float, what: str) -> Any:
    """Run ``fn(*args)`` in a child process under ``timeout``; see the module doc.

    The child is a fresh interpreter started with ``subprocess`` (not ``multiprocessing``,
    whose ``spawn`` re-runs an unguarded ``__main__`` and whose ``fork`` is unsafe beside the
    kernel-driving thread), in a session of its own so a timeout kills everything it started."""
    return _finish(_start_child(()), fn, args, timeout, what)


class IsolatedChild:
    """The child interpreter of one :func:`run_isolated` call, started ahead of need: it
    imports ``preload`` (module names, e.g. ``("mlflow",)``: seconds of CPU) while the grader
    does other work, such as waiting for the notebook to run. :meth:`run` hands it its one job;
    :meth:`close` stops it if that never comes (safe after :meth:`run`)."""

    def __init__(self, preload: tuple[str, ...] = ()) -> None:
        self._proc: subprocess.Popen[bytes] | None = _start_child(preload)

    def run(self, fn: Callable[..., Any], *args: Any, timeout: float, what: str) -> Any:
        """As :func:`run_isolated`, in this child."""
        proc, self._proc = self._proc, None
        if proc is None:
            raise RuntimeError("an IsolatedChild runs one job")
        return _finish(proc, fn, args, timeout, what)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            _stop(proc)


def _start_child(preload: tuple[str, ...]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", _BOOTSTRAP, *preload], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    proc.wait()


def _finish(proc: subprocess.Popen[bytes], fn: Callable[..., Any], args: tuple[Any, ...],
            timeout: float, what: str) -> Any:
    try:
        job = pickle.dumps({"where": _locate(fn), "args": args, "path": list(sys.path)})
    except BaseException:
        _stop(proc)
        raise
    try:
        out, _ = proc.communicate(job, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LearnerFailure(f"{what}: reading it took longer than {timeout:.0f} s.") from None
    finally:
        _stop(proc)
    try:
        status, payload = pickle.loads(out)  # written by _child_main, our own code
    except Exception:
        raise LearnerFailure(f"{what}: the reader crashed (exit code {proc.returncode}).") from None
    if status != "ok":
        raise LearnerFailure(f"{what}: {payload}")
    try:
        return _PlainUnpickler(io.BytesIO(payload)).load()
    except Exception as exc:
        raise LearnerFailure(f"{what}: the reader's answer is not plain data ({exc}).") from None


__all__ = ["IsolatedChild", "LearnerFailure", "copy_job_tree", "fresh_path", "read_job_file",
           "run_isolated", "write_job_file"]
