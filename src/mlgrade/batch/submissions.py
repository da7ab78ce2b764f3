"""Discover stage: turn a folder (or a ``.zip``) of submissions into learner/notebook pairs.

Two layouts are understood, and may be mixed:

* a folder of notebooks, ``alice.ipynb``: the learner id is the file name;
* a folder per learner, ``alice/month3.ipynb`` (GitHub Classroom clones, possibly named
  ``month3-alice``): the learner id is the folder name, without the assignment prefix.

Anything that is not a notebook is skipped and listed, never an error. Two submissions for one
learner are both skipped with a message naming the files, so the lead decides which counts.
A learner folder holding several notebooks, one of them named ``ASSIGNMENT.ipynb``, is graded
from that one; the others are listed as ignored.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from mlgrade.errors import UsageError

IGNORED_NAMES = {".ipynb_checkpoints", "__MACOSX", ".git", ".github", "__pycache__", ".DS_Store"}
MAX_ZIP_BYTES = 2 * 1024**3  # refuse archives that expand past this (zip bombs)


@dataclass(frozen=True)
class Submission:
    """One learner's notebook for one assignment."""

    learner: str
    path: Path  # where the notebook is on disk (inside the extracted zip for zip input)
    source: str  # the path relative to the input, shown in reports and feedback
    content_hash: str  # sha256 of the file's bytes
    folder: Path | None = None  # the learner's own folder (folder-per-learner layout)
    ignored: tuple[str, ...] = ()  # other notebooks in that folder, not graded

    def read_bytes(self) -> bytes:
        if self.path.is_dir():  # a repository (mlgrade.repo.batch): packed as a .zip
            from mlgrade.repo.intake import pack_repository

            return pack_repository(self.path)
        return self.path.read_bytes()


@dataclass(frozen=True)
class Skipped:
    """Something in the input that will not be graded, and why."""

    source: str
    reason: str


@dataclass(frozen=True)
class Discovery:
    submissions: tuple[Submission, ...]
    skipped: tuple[Skipped, ...]


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ignored(path: Path) -> bool:
    return path.name in IGNORED_NAMES or path.name.startswith(".")


def _learner_from_folder(name: str, assignment: str) -> str:
    for sep in ("-", "_"):
        prefix = f"{assignment}{sep}"
        if name.lower().startswith(prefix.lower()) and len(name) > len(prefix):
            return name[len(prefix):]
    return name


def _notebooks_under(folder: Path) -> list[Path]:
    found = []
    for path in sorted(folder.rglob("*.ipynb")):
        rel = path.relative_to(folder)
        if any(part in IGNORED_NAMES or part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and not path.is_symlink():
            found.append(path)
    return found


Candidate = tuple[str, Path, Path | None, tuple[str, ...]]  # learner, notebook, folder, ignored


def _candidates(root: Path, assignment: str) -> tuple[list[Candidate], list[Skipped]]:
    pairs: list[Candidate] = []
    skipped: list[Skipped] = []
    for entry in sorted(root.iterdir()):
        rel = entry.relative_to(root).as_posix()
        if _ignored(entry):
            continue
        if entry.is_symlink():
            skipped.append(Skipped(rel, "a symbolic link; copy the file itself"))
        elif entry.is_dir():
            notebooks = _notebooks_under(entry)
            learner = _learner_from_folder(entry.name, assignment)
            named = [p for p in notebooks if p.name == f"{assignment}.ipynb"]
            if len(named) == 1 or len(notebooks) == 1:
                chosen = (named or notebooks)[0]
                ignored = tuple(p.relative_to(root).as_posix() for p in notebooks if p != chosen)
                pairs.append((learner, chosen, entry, ignored))
            elif not notebooks:
                skipped.append(Skipped(rel + "/", "no notebook in this folder"))
            else:
                listing = ", ".join(p.relative_to(root).as_posix() for p in (named or notebooks))
                skipped.append(Skipped(rel + "/", f"several notebooks for learner {learner!r} "
                                       f"({listing}); name the one to grade {assignment}.ipynb"))
        elif entry.suffix == ".ipynb":
            pairs.append((entry.stem, entry, None, ()))
        else:
            skipped.append(Skipped(rel, "not a notebook (.ipynb)"))
    return pairs, skipped


_SAFE_ID = re.compile(r"[^\w.@+-]+")


def clean_learner_id(raw: str) -> str:
    """Learner ids come from file names: keep them readable, and safe as file names."""
    return _SAFE_ID.sub("_", raw.strip()).strip("._") or "unnamed"


def discover(input_path: Path, assignment: str, extract_to: Path | None = None) -> Discovery:
    """Find every submission in ``input_path`` (a folder or a ``.zip``).

    ``extract_to`` is a private folder for a zip's contents; it must exist and be empty.
    Raises :class:`UsageError` when the input is missing or holds no notebook at all.
    """
    if not input_path.exists():
        raise UsageError(f"{input_path} does not exist. Pass a folder of notebooks, a folder per "
                         "learner, or a .zip of either.")
    root = input_path
    if input_path.is_file():
        if not zipfile.is_zipfile(input_path):
            raise UsageError(f"{input_path} is neither a folder nor a .zip archive. Pass a folder "
                             "of notebooks, a folder per learner, or a .zip of either.")
        if extract_to is None:
            raise UsageError("a .zip input needs a folder to extract into")
        root = extract_zip(input_path, extract_to)
    pairs, skipped = _candidates(root, assignment)
    by_learner: dict[str, list[Path]] = {}
    for learner, path, _, _ in pairs:
        by_learner.setdefault(clean_learner_id(learner).casefold(), []).append(path)
    submissions = []
    for learner, path, folder, ignored in pairs:
        key = clean_learner_id(learner).casefold()
        paths = by_learner[key]
        rel = path.relative_to(root).as_posix()
        if len(paths) > 1:
            others = ", ".join(p.relative_to(root).as_posix() for p in paths)
            who = clean_learner_id(learner)
            skipped.append(Skipped(rel, f"two submissions for learner {who!r} ({others}); "
                                   "keep one and run again"))
            continue
        data = path.read_bytes()
        submissions.append(Submission(clean_learner_id(learner), path, rel, content_hash(data),
                                      folder, ignored))
    if not submissions:
        detail = f" ({len(skipped)} item(s) skipped)" if skipped else ""
        raise UsageError(f"no notebook to grade in {input_path}{detail}. Expected alice.ipynb "
                         f"files or alice/{assignment}.ipynb folders.")
    return Discovery(tuple(sorted(submissions, key=lambda s: s.learner.casefold())),
                     tuple(sorted(skipped, key=lambda s: s.source)))


def _safe_members(archive: zipfile.ZipFile) -> Iterable[tuple[zipfile.ZipInfo, PurePosixPath]]:
    for info in archive.infolist():
        name = PurePosixPath(info.filename.replace("\\", "/"))
        if info.is_dir() or name.is_absolute() or ".." in name.parts:
            continue
        mode = (info.external_attr >> 16) & 0o170000
        if mode and not stat.S_ISREG(mode):  # symlinks and devices are never extracted
            continue
        yield info, name


def extract_zip(archive_path: Path, dest: Path) -> Path:
    """Extract regular files only, never outside ``dest``; return the folder to scan.

    A zip that wraps everything in one top folder (``submissions/alice.ipynb``) is unwrapped.
    """
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = list(_safe_members(archive))
            if sum(info.file_size for info, _ in members) > MAX_ZIP_BYTES:
                raise UsageError(f"{archive_path} expands to more than 2 GiB; unpack it yourself "
                                 "and pass the folder.")
            for info, name in members:
                target = dest.joinpath(*name.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                _keep_zip_time(target, info)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UsageError(f"cannot read {archive_path} as a zip archive ({exc}).") from None
    entries = [p for p in dest.iterdir() if not _ignored(p)]
    if len(entries) == 1 and entries[0].is_dir() and not _notebooks_directly_in(entries[0], 0):
        inner = entries[0]
        # one wrapping folder of learner folders or notebooks: scan inside it
        if any(p.is_dir() or p.suffix == ".ipynb" for p in inner.iterdir() if not _ignored(p)):
            return inner
    return dest


def _keep_zip_time(target: Path, info: zipfile.ZipInfo) -> None:
    """Give an extracted file the modification time the archive recorded (its submitted-at
    time); zip times carry no zone, so they are read as this machine's local time."""
    try:
        stamp = time.mktime((*info.date_time, 0, 0, -1))
        os.utime(target, (stamp, stamp))
    except (OverflowError, ValueError, OSError):
        pass  # an impossible date in the archive: keep the extraction time


def _notebooks_directly_in(folder: Path, _depth: int) -> bool:
    """A single top folder that is itself one learner's folder holds its notebook directly
    and nothing else; a wrapper holds several notebooks or folders."""
    items = [p for p in folder.iterdir() if not _ignored(p)]
    notebooks = [p for p in items if p.suffix == ".ipynb"]
    return len(notebooks) == 1 and not any(p.is_dir() for p in items)
