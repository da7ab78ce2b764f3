"""Walk a folder the learner's code filled, without recursion and without following links.

A notebook can leave a tree thousands of levels deep (``shutil.rmtree`` and ``os.walk`` recurse
and raise ``RecursionError``; path-based calls fail past ``PATH_MAX``), folders without
permissions, or links to the grader's files. The walk here holds one directory descriptor at a
time: it goes down with ``openat(name, O_NOFOLLOW)`` and back up with ``openat("..")``,
checking that ``..`` is the folder it came from (device and inode), so it is linear in the
number of entries whatever the depth. It runs when no learner process is left (before a
kernel starts, after the reaper), so the tree does not change under it; if it does, the walk
fails closed with ``OSError``.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_NOFOLLOW | _CLOEXEC

# on_entry(dir_fd, name, lstat result) for every entry that is not a folder;
# after_dir(parent_fd, name) once a folder's content has been walked
EntryFn = Callable[[int, str, os.stat_result], None]


def _open_child(name: str, dir_fd: int, force: bool) -> int:
    try:
        return os.open(name, _DIR, dir_fd=dir_fd)
    except PermissionError:
        if not force:
            raise
        os.chmod(name, stat.S_IRWXU, dir_fd=dir_fd)  # a folder the learner made unreadable
        return os.open(name, _DIR, dir_fd=dir_fd)


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def walk_tree(root: Path, on_entry: EntryFn, after_dir: Callable[[int, str], None], *,
              force: bool = False) -> None:
    """Visit ``root``'s content depth first: ``on_entry`` for files, links, FIFOs...,
    ``after_dir`` for each sub-folder once its content is done (``root`` itself excluded).
    With ``force``, folders without permissions are opened after a ``chmod`` (for removal)."""
    fd = os.open(root, _DIR)
    ids = [_identity(fd)]
    names: list[str] = []
    try:
        stack = [_visit(fd, on_entry, force)]
        while stack:
            pending = stack[-1]
            if pending:
                name = pending.pop()
                child = _open_child(name, fd, force)
                os.close(fd)
                fd = child
                ids.append(_identity(fd))
                names.append(name)
                stack.append(_visit(fd, on_entry, force))
                continue
            stack.pop()
            if not names:
                break
            parent = os.open("..", _DIR, dir_fd=fd)
            os.close(fd)
            fd = parent
            ids.pop()
            if _identity(fd) != ids[-1]:
                raise OSError(f"{root} changed while it was being cleaned up")
            after_dir(fd, names.pop())
    finally:
        os.close(fd)


def _visit(fd: int, on_entry: EntryFn, force: bool) -> list[str]:
    """Handle the non-folders of one folder now; return its sub-folders' names."""
    if force:
        with contextlib.suppress(OSError):
            os.fchmod(fd, stat.S_IRWXU)  # so its entries can be removed
    subdirs: list[str] = []
    with os.scandir(fd) as entries:
        names = [entry.name for entry in entries]
    for name in names:
        st = os.lstat(name, dir_fd=fd)
        if stat.S_ISDIR(st.st_mode):
            subdirs.append(name)
        else:
            on_entry(fd, name, st)
    return subdirs


def remove_tree(path: Path) -> None:
    """Delete ``path`` and everything in it (links are removed, never followed)."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return

    def unlink(dir_fd: int, name: str, _st: os.stat_result) -> None:
        os.unlink(name, dir_fd=dir_fd)

    def rmdir(dir_fd: int, name: str) -> None:
        os.rmdir(name, dir_fd=dir_fd)

    walk_tree(path, unlink, rmdir, force=True)
    os.rmdir(path)


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """``chown`` ``path`` and everything in it to ``uid:gid``; links themselves, not targets."""
    os.chown(path, uid, gid, follow_symlinks=False)

    def chown(dir_fd: int, name: str, _st: os.stat_result | None = None) -> None:
        os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)

    walk_tree(Path(path), chown, chown)
