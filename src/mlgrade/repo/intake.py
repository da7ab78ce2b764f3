"""Intake stage of a repository: copy a learner's repository into the job folder.

The source is only ever read. A folder (a git checkout included: ``.git`` is left behind) is
walked without following links; a ``.zip`` is read entry by entry (GitHub's "Download ZIP" has
one top folder, which is dropped). Symbolic links, devices and FIFOs are not copied (the
learner is told); a path that leaves the repository, more than :data:`MAX_FILES` files, a file
over :data:`MAX_FILE_BYTES` or more than :data:`MAX_TOTAL_BYTES` in all refuses the submission.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mlgrade.errors import NotebookInputError

MAX_FILES = 3_000
MAX_FILE_BYTES = 25 * 1024 * 1024
MAX_TOTAL_BYTES = 100 * 1024 * 1024
MAX_DEPTH = 24
# folders a repository carries that grading never needs (and that can be huge)
SKIPPED_DIRS = frozenset({".git", "__pycache__", ".venv", "venv", "node_modules", ".mypy_cache",
                          ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints"})


@dataclass(frozen=True)
class Intake:
    """What was copied: file count, bytes, and what was left out (learner-facing notices)."""

    files: int
    bytes: int
    notices: tuple[str, ...] = ()


class _Budget:
    def __init__(self, source: Path) -> None:
        self.source, self.files, self.bytes = source, 0, 0
        self.links: list[str] = []
        self.special: list[str] = []

    def take(self, relpath: str, size: int) -> None:
        self.files += 1
        self.bytes += size
        if self.files > MAX_FILES:
            raise NotebookInputError(f"{self.source} holds more than {MAX_FILES} files; hand in "
                                     "the repository without generated files or environments.")
        if size > MAX_FILE_BYTES:
            raise NotebookInputError(f"{relpath} in {self.source} is larger than "
                                     f"{MAX_FILE_BYTES // 2**20} MiB; keep large data and models "
                                     "out of the repository.")
        if self.bytes > MAX_TOTAL_BYTES:
            raise NotebookInputError(f"{self.source} is larger than {MAX_TOTAL_BYTES // 2**20} "
                                     "MiB; keep large data and models out of the repository.")

    def notices(self) -> tuple[str, ...]:
        out = []
        if self.links:
            out.append(f"{len(self.links)} symbolic link(s) in the repository were not copied "
                       f"(e.g. {self.links[0]}): commit real files.")
        if self.special:
            out.append(f"{len(self.special)} special file(s) (FIFO, device, socket) were not "
                       f"copied (e.g. {self.special[0]}).")
        return tuple(out)


def _write(dest: Path, relpath: str, data: bytes) -> None:
    target = dest.joinpath(*PurePosixPath(relpath).parts)
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except OSError:  # a zip naming one path twice, or a file and a folder alike
        raise NotebookInputError(f"the repository names {relpath} twice (or as a file and a "
                                 "folder); hand in a clean copy.") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _read_regular(dir_fd: int, name: str) -> bytes:
    """At most one byte more than the cap (so an oversized file is noticed)."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as handle:
        return handle.read(MAX_FILE_BYTES + 1)


def _copy_folder(source: Path, dest: Path) -> Intake:
    budget = _Budget(source)
    pending: list[tuple[str, int]] = [("", 0)]
    while pending:
        rel, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise NotebookInputError(f"{source} is nested deeper than {MAX_DEPTH} folders.")
        folder = source / rel if rel else source
        dir_fd = os.open(folder, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_DIRECTORY", 0))
        try:
            for name in sorted(os.listdir(dir_fd)):
                relpath = f"{rel}/{name}" if rel else name
                st = os.lstat(name, dir_fd=dir_fd)
                if stat.S_ISLNK(st.st_mode):
                    budget.links.append(relpath)
                elif stat.S_ISDIR(st.st_mode):
                    if name not in SKIPPED_DIRS:
                        (dest / relpath).mkdir(mode=0o755, exist_ok=True)
                        pending.append((relpath, depth + 1))
                elif stat.S_ISREG(st.st_mode):
                    if st.st_size > MAX_FILE_BYTES:
                        budget.take(relpath, st.st_size)  # refuses before reading
                    data = _read_regular(dir_fd, name)
                    budget.take(relpath, len(data))  # what was read: the file may have grown
                    _write(dest, relpath, data)
                else:
                    budget.special.append(relpath)
        finally:
            os.close(dir_fd)
    return Intake(budget.files, budget.bytes, budget.notices())


def _zip_names(archive: zipfile.ZipFile) -> tuple[list[zipfile.ZipInfo], str]:
    """The entries and the single top folder to drop ("" when there is none)."""
    infos = archive.infolist()
    tops = {PurePosixPath(i.filename).parts[0] for i in infos if PurePosixPath(i.filename).parts}
    only = next(iter(tops)) if len(tops) == 1 else ""
    strip = only if only and all(i.filename.startswith(only + "/") for i in infos) else ""
    return infos, strip


def _copy_zip(source: Path, dest: Path) -> Intake:
    budget = _Budget(source)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise NotebookInputError(f"{source} is not a readable zip archive ({exc}).") from None
    with archive:
        infos, strip = _zip_names(archive)
        for info in infos:
            name = info.filename.replace("\\", "/")
            parts = PurePosixPath(name).parts
            if strip:
                parts = parts[1:]
            if not parts:
                continue
            relpath = "/".join(parts)
            if name.startswith("/") or ".." in parts or ":" in parts[0]:
                raise NotebookInputError(f"{source} has an entry outside the repository "
                                         f"({info.filename!r}); refusing the archive.")
            if any(p in SKIPPED_DIRS for p in parts[:-1]) or (info.is_dir() and parts[-1] in SKIPPED_DIRS):
                continue
            if len(parts) > MAX_DEPTH:
                raise NotebookInputError(f"{source} is nested deeper than {MAX_DEPTH} folders.")
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                budget.links.append(relpath)
                continue
            if info.is_dir():
                (dest / relpath).mkdir(parents=True, exist_ok=True, mode=0o755)
                continue
            if info.file_size > MAX_FILE_BYTES:
                budget.take(relpath, info.file_size)  # refuses before reading
            with archive.open(info) as handle:  # the declared size may lie: read one byte more
                data = handle.read(MAX_FILE_BYTES + 1)
            budget.take(relpath, len(data))
            _write(dest, relpath, data)
    return Intake(budget.files, budget.bytes, budget.notices())


def copy_repository(source: Path, dest: Path) -> Intake:
    """Copy the repository ``source`` (folder or ``.zip``) into the new folder ``dest``."""
    if source.is_dir():
        dest.mkdir(mode=0o755)
        return _copy_folder(source, dest)
    if source.is_file() and zipfile.is_zipfile(source):
        dest.mkdir(mode=0o755)
        return _copy_zip(source, dest)
    if not source.exists():
        raise NotebookInputError(f"{source} does not exist: pass the repository's folder, a git "
                                 "checkout or a .zip of it.")
    raise NotebookInputError(f"{source} is neither a folder nor a .zip archive: pass the "
                             "repository's folder, a git checkout or a .zip of it.")




_EPOCH = (1980, 1, 1, 0, 0, 0)  # every entry's time: the same folder packs to the same bytes


def pack_repository(path: Path) -> bytes:
    """The repository at ``path`` as ``.zip`` bytes: a ``.zip`` file as it is; a folder's
    regular files (sorted, no links, without ``.git`` and other caches), deterministically."""
    if path.is_file():
        return path.read_bytes()
    buffer = io.BytesIO()
    files = total = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder, dirs, names in os.walk(path):  # never follows links to folders
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
            for name in sorted(names):
                full = Path(folder) / name
                st = full.lstat()
                if not stat.S_ISREG(st.st_mode):
                    continue  # intake says so when it grades the original; a copy drops them
                files, total = files + 1, total + st.st_size
                if files > MAX_FILES or total > MAX_TOTAL_BYTES:
                    raise NotebookInputError(f"{path} is too large to grade (more than "
                                             f"{MAX_FILES} files or {MAX_TOTAL_BYTES // 2**20} MiB).")
                # under one top folder, which intake drops (as it drops GitHub's)
                info = zipfile.ZipInfo(f"repo/{full.relative_to(path).as_posix()}", _EPOCH)
                info.external_attr = (stat.S_IFREG | 0o644) << 16
                archive.writestr(info, full.read_bytes())
    return buffer.getvalue()


__all__ = ["Intake", "MAX_FILES", "MAX_FILE_BYTES", "MAX_TOTAL_BYTES", "copy_repository",
           "pack_repository"]
