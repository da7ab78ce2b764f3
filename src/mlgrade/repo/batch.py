"""``mlgrade grade`` over repositories: discover one repository per learner, and carry each one
to a worker as the bytes of a ``.zip`` (a :class:`~mlgrade.batch.workers.GradeTask` carries its
submission as bytes, so a remote worker needs no shared file system).

The input is a folder (or a ``.zip`` of one) holding, per learner, a folder (a git checkout;
``capstone-alice/`` counts as ``alice``) or a ``.zip`` of their repository (``alice.zip``).
Anything else is skipped and listed.
"""

from __future__ import annotations

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
from mlgrade.repo.intake import pack_repository


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
