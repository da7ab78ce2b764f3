"""``mlgrade grade`` over repositories: discover one repository per learner, and carry each one
to a worker as the bytes of a ``.zip`` (a :class:`~mlgrade.batch.workers.GradeTask` carries its
submission as bytes, so a remote worker needs no shared file system).

The input is a folder (or a ``.zip`` of one) holding, per learner, a folder (a git checkout;
``capstone-alice/`` counts as ``alice``) or a ``.zip`` of their repository (``alice.zip``).
Anything else is skipped and listed.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

from mlgrade.batch.submissions import (
    Discovery,
    Skipped,
    Submission,
    _ignored,
    _learner_from_folder,
    clean_learner_id,
    content_hash,
    extract_zip,
)
from mlgrade.errors import NotebookInputError, UsageError
from mlgrade.repo.intake import MAX_FILES, MAX_TOTAL_BYTES, SKIPPED_DIRS

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


def discover_repositories(input_path: Path, assignment: str, extract_to: Path | None = None) -> Discovery:
    """One :class:`Submission` per learner's repository in ``input_path``."""
    if not input_path.exists():
        raise UsageError(f"{input_path} does not exist. Pass a folder with one repository per "
                         "learner (a folder or a .zip each), or a .zip of such a folder.")
    root = input_path
    if input_path.is_file():
        if not zipfile.is_zipfile(input_path) or extract_to is None:
            raise UsageError(f"{input_path} is neither a folder nor a .zip archive.")
        root = extract_zip(input_path, extract_to)
    submissions: list[Submission] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    for entry in sorted(root.iterdir()):
        rel = entry.relative_to(root).as_posix()
        if _ignored(entry):
            continue
        if entry.is_symlink():
            skipped.append(Skipped(rel, "a symbolic link; copy the repository itself"))
            continue
        if entry.is_dir():
            learner, source = _learner_from_folder(entry.name, assignment), rel + "/"
        elif entry.suffix == ".zip" and zipfile.is_zipfile(entry):
            learner, source = _learner_from_folder(entry.stem, assignment), rel
        else:
            skipped.append(Skipped(rel, "not a repository (a folder or a .zip)"))
            continue
        learner = clean_learner_id(learner)
        if learner.casefold() in seen:
            skipped.append(Skipped(rel, f"two submissions for learner {learner!r} "
                                   f"({seen[learner.casefold()]}, {source}); keep one and run again"))
            continue
        seen[learner.casefold()] = source
        try:
            digest = content_hash(pack_repository(entry))
        except NotebookInputError as exc:
            skipped.append(Skipped(source, str(exc)))
            continue
        submissions.append(Submission(learner, entry, source, digest,
                                      entry if entry.is_dir() else None))
    if not submissions:
        raise UsageError(f"no repository to grade in {input_path}. Expected alice/ folders or "
                         "alice.zip archives, one per learner.")
    return Discovery(tuple(sorted(submissions, key=lambda s: s.learner.casefold())),
                     tuple(sorted(skipped, key=lambda s: s.source)))


__all__ = ["discover_repositories", "pack_repository"]
