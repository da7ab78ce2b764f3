"""Due dates: when each learner handed in, and whether that was late.

The due date comes from ``--due`` or ``due = 2026-03-01T23:59:00+00:00`` in the assignment's
``assignment.toml`` (with an optional ``late_penalty``: points off per started day late; none
unless set). A submission's time is, in order of preference:

* the lead's CSV (``--submitted-at times.csv``, rows ``learner,timestamp``);
* the last commit time of a folder-per-learner git checkout (``git log -1 --format=%cI``);
* the notebook file's modification time (kept from a ``.zip``'s own record).

Times without a zone are read as UTC. Lateness is data for the lead: a score changes only when
a penalty is configured.
"""

from __future__ import annotations

import csv
import math
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlgrade._compat import tomllib
from mlgrade.assignments import Assignment
from mlgrade.batch.submissions import Submission
from mlgrade.errors import UsageError

GIT_TIMEOUT_S = 10


@dataclass(frozen=True)
class DuePolicy:
    """An assignment's due date (``None``: none set) and late penalty per started day."""

    due: datetime | None
    late_penalty: float | None  # None: not given (keep what the gradebook holds)
    source: str


@dataclass(frozen=True)
class Lateness:
    """How late one submission was, and what it costs."""

    late: bool
    days: int  # started days after the due date (0 when on time)
    penalty: float  # points off


def parse_time(raw: Any, source: str) -> datetime:
    """An ISO 8601 time (a TOML datetime too) as an aware datetime; naive ones are UTC."""
    if isinstance(raw, datetime):
        value = raw
    else:
        text = str(raw).strip()
        try:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            raise UsageError(f"{source}: {text!r} is not a date and time; write it as ISO 8601, "
                             "e.g. 2026-03-01T23:59:00+00:00.") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def resolve_due(assignment: Assignment, cli_due: str | None,
                cli_penalty: float | None) -> DuePolicy:
    """``--due``/``--late-penalty`` > ``assignment.toml`` > none."""
    meta_path = Path(assignment.folder) / "assignment.toml"
    try:
        meta = tomllib.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        meta = {}  # load_assignment already read it; nothing more to learn here
    due: datetime | None = None
    source = "none"
    if cli_due is not None:
        due, source = parse_time(cli_due, "--due"), "--due"
    elif meta.get("due") is not None:
        due, source = parse_time(meta["due"], f"{meta_path} due"), str(meta_path)
    penalty = cli_penalty
    where = "--late-penalty"
    if penalty is None and meta.get("late_penalty") is not None:
        penalty, where = meta["late_penalty"], f"{meta_path} late_penalty"
    if penalty is not None:
        try:
            penalty = float(penalty)
        except (TypeError, ValueError):
            raise UsageError(f"{where}: late_penalty must be points per day, got {penalty!r}.") from None
        if not (penalty >= 0 and math.isfinite(penalty)):
            raise UsageError(f"{where}: late_penalty must be 0 or more points per day, "
                             f"got {penalty!r}.")
    return DuePolicy(due, penalty, source)


def read_times_csv(path: Path) -> dict[str, datetime]:
    """``learner,timestamp`` rows (a header row is allowed) -> learner -> time."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --submitted-at {path} ({exc}).") from None
    times: dict[str, datetime] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip():
            continue
        if len(row) < 2:
            raise UsageError(f"{path} line {number}: expected learner,timestamp, got {row!r}.")
        who, stamp = row[0].strip(), row[1].strip()
        if number == 1 and stamp.lower() in ("timestamp", "submitted_at", "time", "submitted"):
            continue
        times[who.casefold()] = parse_time(stamp, f"{path} line {number}")
    return times


def _git_time(folder: Path) -> datetime | None:
    """The last commit time of a learner's own checkout, or ``None``.

    Only a folder with its own ``.git`` counts (not a repository around the whole input). The
    checkout is the learner's: git runs with hooks and fsmonitor off and no pager, only to read
    the log.
    """
    if not (folder / ".git").exists():
        return None
    cmd = ["git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null",
           "-c", f"safe.directory={folder.resolve()}", "--no-pager", "-C", str(folder),
           "log", "-1", "--format=%cI"]
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
                              env=env, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = done.stdout.strip()
    if done.returncode != 0 or not out:
        return None
    try:
        return parse_time(out, "git")
    except UsageError:
        return None


def submitted_at(sub: Submission, times: dict[str, datetime] | None) -> tuple[str, str]:
    """(ISO time, how we know) for one submission."""
    if times is not None and sub.learner.casefold() in times:
        return times[sub.learner.casefold()].isoformat(), "csv"
    if sub.folder is not None:
        committed = _git_time(sub.folder)
        if committed is not None:
            return committed.isoformat(), "git"
    stamp = datetime.fromtimestamp(sub.path.stat().st_mtime, timezone.utc)
    return stamp.isoformat(timespec="seconds"), "mtime"


def lateness(submitted: str | None, due: str | None, penalty_per_day: float,
             score: float) -> Lateness:
    """Late by how many started days, and the penalty (never more than the score)."""
    if not submitted or not due:
        return Lateness(False, 0, 0.0)
    over = (parse_time(submitted, "gradebook") - parse_time(due, "gradebook")).total_seconds()
    if over <= 0:
        return Lateness(False, 0, 0.0)
    days = math.ceil(over / 86400)
    return Lateness(True, days, round(min(max(score, 0.0), penalty_per_day * days), 6))
