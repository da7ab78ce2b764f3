"""Small file helpers: every file mlgrade writes appears whole or not at all.

Files are written to a temporary file beside the destination and renamed over it. ``mkstemp``
creates that file 0600; files meant for people (a copied starter, an executed notebook,
feedback pages, exports, ``--output`` files) get the usual permissions instead, the mode a
plain ``open()`` would give under the current umask.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

PEOPLE_MODE = 0o666  # before the umask, as open() creates files


def current_umask() -> int:
    """This process's umask, read without changing it where Linux shows it (thread-safe)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii",
                                                          errors="replace") as handle:
        for line in handle:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def people_mode() -> int:
    """The mode ``open()`` would give a new file: ``0o666 & ~umask``."""
    return PEOPLE_MODE & ~current_umask()


@contextlib.contextmanager
def open_atomic(dest: Path, mode: str = "wb", *, file_mode: int | None = None,
                encoding: str | None = None) -> Iterator[IO[Any]]:
    """A handle on a temporary file beside ``dest``; on a clean exit it is fsynced, given
    ``file_mode`` (default: :func:`people_mode`) and renamed over ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, people_mode() if file_mode is None else file_mode)
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(dest: Path, data: bytes, *, file_mode: int | None = None) -> None:
    """Write ``data`` to ``dest`` atomically (see :func:`open_atomic` for the mode)."""
    with open_atomic(dest, "wb", file_mode=file_mode) as handle:
        handle.write(data)


def write_text_atomic(dest: Path, text: str, *, file_mode: int | None = None) -> None:
    """UTF-8 ``text`` to ``dest`` atomically."""
    write_bytes_atomic(dest, text.encode("utf-8"), file_mode=file_mode)


def copy_file_atomic(src: Path, dest: Path) -> None:
    """A copy of ``src``'s bytes at ``dest`` with the usual permissions (not ``src``'s)."""
    with open(src, "rb") as source, open_atomic(dest, "wb") as handle:
        while chunk := source.read(1 << 20):
            handle.write(chunk)
