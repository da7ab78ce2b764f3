"""Reading what the learner's code wrote in the job folder, without following it anywhere:
every path component opened with ``O_NOFOLLOW`` (walking with directory descriptors), the
file with ``O_NONBLOCK`` (a FIFO never blocks), regular files only, a cap enforced while
reading; and files the grader writes there at unpredictable names, never through a link.
Below both the bridge (``nb.read_file``, large requests) and the graders' file helpers
(:mod:`mlgrade.grading.files`, whose docstring has the full contract)."""

from __future__ import annotations

import errno
import io
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlgrade.failures import LearnerFailure

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
_CHUNK = 1 << 20


def _parts(relpath: str) -> list[str]:
    """The components of a grader-chosen relative path (a grader bug if it leaves the folder)."""
    parts = [p for p in str(relpath).replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or str(relpath).startswith("/") or ".." in parts:
        raise ValueError(f"grader asked for a path outside the job folder: {relpath!r}")
    return parts


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _refuse(name: str, dir_fd: int, wanted: str) -> LearnerFailure:
    """The learner-facing failure for ``name`` (in ``dir_fd``) that is not what was wanted."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return LearnerFailure(f"{name} was not found in the job folder.")
    except OSError as exc:
        return LearnerFailure(f"{name} could not be read ({exc.strerror}).")
    return LearnerFailure(f"{name} is {_kind(st.st_mode)}, not {wanted}; write {wanted}.")


def _open_dir(name: str, dir_fd: int) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        raise _refuse(name, dir_fd, "a regular folder") from None


def _walk(job_dir: Path, parts: list[str]) -> int:
    """A descriptor of the folder holding ``parts[-1]``; no component may be a link."""
    fd = os.open(job_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    try:
        for part in parts[:-1]:
            next_fd = _open_dir(part, fd)
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_regular(name: str, dir_fd: int, max_bytes: int) -> int:
    """Open ``name`` for reading only if it is a regular file no bigger than ``max_bytes``."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except OSError:
        raise _refuse(name, dir_fd, "a regular file") from None
    if not stat.S_ISREG(st.st_mode):  # checked before open(): opening a device can act
        raise LearnerFailure(f"{name} is {_kind(st.st_mode)}, not a regular file; "
                             "write a regular file.")
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        raise _refuse(name, dir_fd, "a regular file") from None
    st = os.fstat(fd)  # the name may have been swapped since lstat
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise LearnerFailure(f"{name} is {_kind(st.st_mode)}, not a regular file; "
                             "write a regular file.")
    if st.st_size > max_bytes:
        os.close(fd)
        raise LearnerFailure(f"{name} is {st.st_size} bytes, over the {max_bytes}-byte limit.")
    return fd


def _copy_fd(fd: int, name: str, max_bytes: int, sink: Callable[[bytes], Any]) -> int:
    """Stream ``fd`` into ``sink``, failing once more than ``max_bytes`` arrive (it may grow)."""
    total = 0
    while True:
        chunk = os.read(fd, min(_CHUNK, max_bytes - total + 1))
        if not chunk:
            return total
        total += len(chunk)
        if total > max_bytes:
            raise LearnerFailure(f"{name} grew over the {max_bytes}-byte limit while being read.")
        sink(chunk)


def read_job_file(job_dir: Path, relpath: str, max_bytes: int) -> bytes:
    """Bytes of a regular file the learner's code wrote at ``relpath`` in ``job_dir``.

    No link in any component, no FIFO, device or folder, at most ``max_bytes``; otherwise a
    :class:`LearnerFailure` saying what was found instead."""
    parts = _parts(relpath)
    dir_fd = _walk(Path(job_dir), parts)
    try:
        fd = _open_regular(parts[-1], dir_fd, max_bytes)
    finally:
        os.close(dir_fd)
    try:
        buf = io.BytesIO()
        _copy_fd(fd, parts[-1], max_bytes, buf.write)
        return buf.getvalue()
    finally:
        os.close(fd)


def fresh_path(job_dir: Path, prefix: str, suffix: str) -> Path:
    """Create an empty file at an unpredictable name in ``job_dir``; see the module doc."""
    if "/" in prefix + suffix or "\0" in prefix + suffix:
        raise ValueError("prefix and suffix are file-name parts, not paths")
    job_dir = Path(job_dir)
    dir_fd = os.open(job_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    try:
        owner = os.fstat(dir_fd)
        for _ in range(8):
            name = f"{prefix}{secrets.token_hex(8)}{suffix}"
            try:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC,
                             0o644, dir_fd=dir_fd)
            except FileExistsError:
                continue
            try:
                os.fchmod(fd, 0o644)
                if os.geteuid() == 0:  # the learner's kernel (the folder's owner) may read it
                    os.fchown(fd, owner.st_uid, owner.st_gid)
            finally:
                os.close(fd)
            return job_dir / name
    finally:
        os.close(dir_fd)
    raise FileExistsError(errno.EEXIST, "no fresh name found", str(job_dir))


def write_job_file(path: Path, data: bytes) -> None:
    """Replace the content of the grader's own file ``path`` (made by :func:`fresh_path`);
    refuses to follow a link or write into anything but a regular file."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LearnerFailure(f"{Path(path).name} was replaced by the notebook; "
                                 "leave the grader's files alone.")
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


__all__ = ["fresh_path", "read_job_file", "write_job_file"]
