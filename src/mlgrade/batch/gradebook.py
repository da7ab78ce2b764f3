"""The gradebook: one SQLite file on the lead's machine.

Schema changes go through named migrations, each applied once in its own transaction and
recorded in ``migrations``. The database runs in WAL mode with a busy timeout, so two
``mlgrade grade`` runs on one gradebook wait for each other instead of corrupting it; each
graded submission is committed in its own transaction as soon as it arrives, so a run killed
with SIGKILL loses at most the submissions that were still being graded.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from mlgrade.errors import GradebookError, UsageError

T = TypeVar("T")

DEFAULT_GRADEBOOK = Path("gradebook.db")
BUSY_TIMEOUT_MS = 60_000

MIGRATIONS: tuple[tuple[str, str], ...] = (
    ("0001_initial", """
        CREATE TABLE learners (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE
        );
        CREATE TABLE assignments (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL,
            max_score REAL NOT NULL
        );
        CREATE TABLE submissions (
            id INTEGER PRIMARY KEY,
            learner_id INTEGER NOT NULL REFERENCES learners(id),
            assignment_id INTEGER NOT NULL REFERENCES assignments(id),
            source TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            graded_at TEXT NOT NULL,
            mlgrade_version TEXT NOT NULL,
            grader_version TEXT NOT NULL,
            seed INTEGER NOT NULL,
            score REAL NOT NULL,
            max_score REAL NOT NULL,
            duration_s REAL NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('graded', 'errored')),
            reason TEXT,
            result_json TEXT NOT NULL,
            UNIQUE (learner_id, assignment_id)
        );
        CREATE TABLE test_results (
            submission_id INTEGER NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
            test_id TEXT NOT NULL,
            title TEXT NOT NULL,
            question TEXT,
            points REAL NOT NULL,
            earned REAL NOT NULL,
            status TEXT NOT NULL,
            feedback TEXT NOT NULL,
            duration_s REAL NOT NULL,
            PRIMARY KEY (submission_id, test_id)
        );
    """),
    ("0002_submission_problem", """
        -- what went wrong while running the notebook, for `mlgrade report`:
        -- 'timeout', 'kernel_died', 'worker_died', 'worker_timeout' or NULL
        ALTER TABLE submissions ADD COLUMN problem TEXT;
        CREATE INDEX submissions_by_assignment ON submissions(assignment_id, status);
    """),
    ("0003_adjustments", """
        -- a lead's manual changes, with who, when and why; undone ones are kept (history).
        -- content_hash ties an adjustment to the submission it was made for: it survives
        -- regrades of those bytes and stops applying when the learner hands in something else
        CREATE TABLE adjustments (
            id INTEGER PRIMARY KEY,
            learner_id INTEGER NOT NULL REFERENCES learners(id),
            assignment_id INTEGER NOT NULL REFERENCES assignments(id),
            content_hash TEXT NOT NULL,
            test_id TEXT,
            points REAL NOT NULL,
            reason TEXT NOT NULL,
            made_by TEXT NOT NULL,
            made_at TEXT NOT NULL,
            undone_by TEXT,
            undone_at TEXT
        );
        CREATE INDEX adjustments_by_submission ON adjustments(assignment_id, learner_id);
    """),
    ("0004_due_dates", """
        -- due date (ISO 8601 with offset) and optional points off per started day late
        ALTER TABLE assignments ADD COLUMN due TEXT;
        ALTER TABLE assignments ADD COLUMN late_penalty REAL NOT NULL DEFAULT 0;
        -- when the learner handed in, and how we know: 'mtime', 'git' or 'csv'
        ALTER TABLE submissions ADD COLUMN submitted_at TEXT;
        ALTER TABLE submissions ADD COLUMN submitted_from TEXT;
        -- other notebooks in the learner's folder that were not graded (JSON list of paths)
        ALTER TABLE submissions ADD COLUMN ignored_json TEXT NOT NULL DEFAULT '[]';
    """),
    ("0005_code_fingerprints", """
        -- the learner's own code, normalised (see mlgrade.batch.similarity), for copy flags
        ALTER TABLE submissions ADD COLUMN code_tokens TEXT NOT NULL DEFAULT '';
    """),
    ("0006_assignment_seeds", """
        -- the secret seed drawn once per gradebook and assignment (unless the lead pins one)
        CREATE TABLE assignment_seeds (
            assignment TEXT PRIMARY KEY,
            seed INTEGER NOT NULL,
            drawn_at TEXT NOT NULL
        );
    """),
)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Recorded:
    """A submission row as stored, for reports and exports."""

    learner: str
    assignment: str
    source: str
    content_hash: str
    graded_at: str
    mlgrade_version: str
    grader_version: str
    seed: int
    score: float
    max_score: float
    duration_s: float
    status: str
    reason: str | None
    problem: str | None
    result: dict[str, Any]
    submitted_at: str | None = None
    submitted_from: str | None = None
    ignored: tuple[str, ...] = ()
    code_tokens: str = ""


@dataclass(frozen=True)
class Adjustment:
    """One manual change by the lead: a test's points (``test_id``) or the total (``None``)."""

    id: int
    learner: str
    assignment: str
    content_hash: str
    test_id: str | None
    points: float
    reason: str
    made_by: str
    made_at: str


@dataclass(frozen=True)
class Due:
    """An assignment's due date and late penalty (points per started day; 0: none)."""

    due: str | None
    late_penalty: float


@dataclass(frozen=True)
class Provenance:
    """What discovery knows about a submission besides its bytes."""

    submitted_at: str | None = None
    submitted_from: str | None = None
    ignored: tuple[str, ...] = ()
    code_tokens: str = ""


@dataclass(frozen=True)
class TestRow:
    """One grader test's outcome for one learner."""

    __test__ = False  # not a pytest test class

    learner: str
    assignment: str
    test_id: str
    title: str
    points: float
    earned: float
    status: str
    question: str | None = None
    feedback: str = ""


def _retry_locked(step: Callable[[], T]) -> T:
    """Run ``step``, retrying while another process holds the database.

    Two runs opening a new gradebook at once both switch it to WAL and migrate it; SQLite can
    answer "database is locked" at once there (the journal-mode change does not always wait on
    the busy handler), so the open is retried for up to the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Gradebook:
    """A connection to one gradebook file. Use as a context manager."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        if not create and not path.exists():
            raise GradebookError(f"no gradebook at {path}. Run `mlgrade grade ASSIGNMENT FOLDER "
                                 f"--gradebook {path}` first, or pass the right --gradebook.")
        try:
            if path.parent != Path(""):
                path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below)
            self.conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = _retry_locked(lambda: self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            if str(mode).lower() != "wal":
                raise GradebookError(f"{path}: SQLite could not switch to WAL mode (got {mode}); "
                                     "put the gradebook on a local disk.")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            _retry_locked(self.migrate)
        except sqlite3.DatabaseError as exc:
            raise GradebookError(f"{path} cannot be used as a gradebook ({exc}). Pass another "
                                 "--gradebook, or move this file away.") from None

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: takes the write lock up front (waiting up to the
        busy timeout for another run), so concurrent writers serialise instead of failing."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- schema -----------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply the migrations this file lacks, in order; return their names."""
        applied: list[str] = []
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS migrations "
                         "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
            known = {name for name, _ in MIGRATIONS}
            if done - known:
                raise GradebookError(
                    f"{self.path} was written by a newer mlgrade (migrations "
                    f"{', '.join(sorted(done - known))}). Upgrade mlgrade to use it.")
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                             (name, _now()))
                applied.append(name)
        return applied

    def migrations(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM migrations ORDER BY name")]

    def integrity_ok(self) -> bool:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # -- writing ----------------------------------------------------------------------------

    def record(self, *, learner: str, assignment: str, assignment_title: str,
               assignment_max: float, source: str, content_hash: str, result: dict[str, Any],
               problem: str | None, provenance: Provenance | None = None) -> None:
        """Store one graded submission (replacing the learner's previous one) in one
        transaction: the submission row, its per-test rows and the full result JSON."""
        tests = result.get("tests", [])
        prov = provenance or Provenance()
        max_score = float(result.get("max_score") or 0) or assignment_max
        with self.transaction() as conn:
            conn.execute("INSERT INTO learners (name) VALUES (?) ON CONFLICT (name) DO NOTHING",
                         (learner,))
            conn.execute(
                "INSERT INTO assignments (name, title, max_score) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET title = excluded.title, "
                "max_score = excluded.max_score", (assignment, assignment_title, assignment_max))
            learner_id = conn.execute("SELECT id FROM learners WHERE name = ?",
                                      (learner,)).fetchone()[0]
            assignment_id = conn.execute("SELECT id FROM assignments WHERE name = ?",
                                         (assignment,)).fetchone()[0]
            conn.execute("DELETE FROM submissions WHERE learner_id = ? AND assignment_id = ?",
                         (learner_id, assignment_id))
            cur = conn.execute(
                "INSERT INTO submissions (learner_id, assignment_id, source, content_hash, "
                "graded_at, mlgrade_version, grader_version, seed, score, max_score, duration_s, "
                "status, reason, result_json, problem, submitted_at, submitted_from, "
                "ignored_json, code_tokens) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (learner_id, assignment_id, source, content_hash, _now(),
                 str(result.get("mlgrade_version", "")), str(result.get("grader_version", "")),
                 int(result.get("seed", 0)), float(result.get("score", 0.0)), max_score,
                 float(result.get("duration_s", 0.0)), str(result.get("status", "errored")),
                 result.get("reason"), json.dumps(result, ensure_ascii=False, allow_nan=False),
                 problem, prov.submitted_at, prov.submitted_from, json.dumps(list(prov.ignored)),
                 prov.code_tokens))
            conn.executemany(
                "INSERT INTO test_results (submission_id, test_id, title, question, points, "
                "earned, status, feedback, duration_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(cur.lastrowid, t["id"], t["title"], t.get("question"), float(t["points"]),
                  float(t["earned"]), t["status"], t.get("feedback", ""),
                  float(t.get("duration_s", 0.0))) for t in tests])

    def refresh(self, *, learner: str, assignment: str, provenance: Provenance) -> None:
        """Update what discovery found about an unchanged submission (not regraded).

        A file's modification time only fills a missing time: copying the folder again would
        otherwise move every submission later. A commit time or the lead's CSV replaces it.
        """
        prov = provenance
        authoritative = prov.submitted_from not in (None, "mtime")
        with self.transaction() as conn:
            conn.execute(
                "UPDATE submissions SET submitted_at = CASE WHEN ? OR submitted_at IS NULL "
                "THEN ? ELSE submitted_at END, submitted_from = CASE WHEN ? OR submitted_at IS "
                "NULL THEN ? ELSE submitted_from END, ignored_json = ?, code_tokens = ? "
                "WHERE learner_id = (SELECT id FROM learners WHERE name = ?) "
                "AND assignment_id = (SELECT id FROM assignments WHERE name = ?)",
                (authoritative, prov.submitted_at, authoritative, prov.submitted_from,
                 json.dumps(list(prov.ignored)), prov.code_tokens, learner, assignment))

    def set_due(self, *, assignment: str, title: str, max_score: float, due: str | None,
                late_penalty: float | None) -> None:
        """Record the due date and/or late penalty (``None``: keep what is stored)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO assignments (name, title, max_score) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO NOTHING", (assignment, title, max_score))
            if due is not None:
                conn.execute("UPDATE assignments SET due = ? WHERE name = ?", (due, assignment))
            if late_penalty is not None:
                conn.execute("UPDATE assignments SET late_penalty = ? WHERE name = ?",
                             (late_penalty, assignment))

    def due(self, assignment: str) -> Due:
        """The assignment's due date and late penalty as recorded."""
        row = self.conn.execute("SELECT due, late_penalty FROM assignments WHERE name = ?",
                                (assignment,)).fetchone()
        return Due(None, 0.0) if row is None else Due(row[0], float(row[1]))

    def assignment_seed(self, assignment: str, draw: Callable[[], int]) -> int:
        """The secret seed of ``assignment`` in this gradebook, drawn with ``draw`` the first
        time (atomically: two runs starting at once agree on one seed)."""
        with self.transaction() as conn:
            conn.execute("INSERT INTO assignment_seeds (assignment, seed, drawn_at) VALUES "
                         "(?, ?, ?) ON CONFLICT (assignment) DO NOTHING",
                         (assignment, draw(), _now()))
            row = conn.execute("SELECT seed FROM assignment_seeds WHERE assignment = ?",
                               (assignment,)).fetchone()
        return int(row[0])

    def seeds(self) -> dict[str, int]:
        """assignment -> the seed drawn for it in this gradebook."""
        return {name: int(seed) for name, seed in self.conn.execute(
            "SELECT assignment, seed FROM assignment_seeds ORDER BY assignment")}

    def adjust(self, *, learner: str, assignment: str, test_id: str | None, points: float,
               reason: str, made_by: str) -> Adjustment:
        """Record an adjustment on the learner's current submission; it replaces an earlier
        active one for the same test (or the same total)."""
        learner_id, assignment_id, digest = self.current_submission(learner, assignment)
        with self.transaction() as conn:
            conn.execute(
                "UPDATE adjustments SET undone_by = ?, undone_at = ? WHERE learner_id = ? AND "
                "assignment_id = ? AND test_id IS ? AND content_hash = ? AND undone_at IS NULL",
                (made_by, _now(), learner_id, assignment_id, test_id, digest))
            cur = conn.execute(
                "INSERT INTO adjustments (learner_id, assignment_id, content_hash, test_id, "
                "points, reason, made_by, made_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (learner_id, assignment_id, digest, test_id, points, reason, made_by, _now()))
            new_id = cur.lastrowid
        (made,) = [a for a in self.adjustments(assignment) if a.id == new_id]
        return made

    def undo_adjustment(self, *, learner: str, assignment: str, test_id: str | None,
                        made_by: str) -> Adjustment | None:
        """Undo the active adjustment of this test (or total); return it, or ``None``."""
        digest = self.current_submission(learner, assignment)[2]
        active = [a for a in self.adjustments(assignment)
                  if a.learner == learner and a.test_id == test_id and a.content_hash == digest]
        if not active:
            return None
        with self.transaction() as conn:
            conn.execute("UPDATE adjustments SET undone_by = ?, undone_at = ? WHERE id = ?",
                         (made_by, _now(), active[-1].id))
        return active[-1]

    def adjustments(self, assignment: str | None = None) -> list[Adjustment]:
        """Adjustments not undone, in the order they were made (including ones made for an
        earlier submission: the caller compares ``content_hash``)."""
        query = ("SELECT x.id, l.name, a.name, x.content_hash, x.test_id, x.points, x.reason, "
                 "x.made_by, x.made_at FROM adjustments x JOIN learners l ON l.id = x.learner_id "
                 "JOIN assignments a ON a.id = x.assignment_id WHERE x.undone_at IS NULL")
        args: tuple[Any, ...] = ()
        if assignment is not None:
            query += " AND a.name = ?"
            args = (assignment,)
        return [Adjustment(*row) for row in self.conn.execute(query + " ORDER BY x.id", args)]

    def current_submission(self, learner: str, assignment: str) -> tuple[int, int, str]:
        """(learner id, assignment id, content hash) of the learner's recorded submission."""
        row = self.conn.execute(
            "SELECT s.learner_id, s.assignment_id, s.content_hash FROM submissions s "
            "JOIN learners l ON l.id = s.learner_id JOIN assignments a ON a.id = s.assignment_id "
            "WHERE l.name = ? AND a.name = ?", (learner, assignment)).fetchone()
        if row is None:
            known = ", ".join(r[0] for r in self.conn.execute(
                "SELECT l.name FROM submissions s JOIN learners l ON l.id = s.learner_id JOIN "
                "assignments a ON a.id = s.assignment_id WHERE a.name = ? ORDER BY l.name",
                (assignment,))) or "none"
            raise UsageError(f"the gradebook {self.path} has no {assignment} submission from "
                             f"{learner!r} (learners: {known}). Run `mlgrade report` to see "
                             "what it holds.")
        return int(row[0]), int(row[1]), str(row[2])

    # -- reading ----------------------------------------------------------------------------

    def up_to_date(self, assignment: str, grader_version: str, seed: int) -> dict[str, str]:
        """learner -> content hash of submissions already graded with these graders and seed."""
        rows = self.conn.execute(
            "SELECT l.name, s.content_hash FROM submissions s "
            "JOIN learners l ON l.id = s.learner_id JOIN assignments a ON a.id = s.assignment_id "
            "WHERE a.name = ? AND s.grader_version = ? AND s.seed = ?",
            (assignment, grader_version, seed))
        return {name: digest for name, digest in rows}

    def assignments(self) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT a.name FROM assignments a WHERE EXISTS "
            "(SELECT 1 FROM submissions s WHERE s.assignment_id = a.id) ORDER BY a.name")]

    def assignment_title(self, name: str) -> str | None:
        row = self.conn.execute("SELECT title FROM assignments WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def submissions(self, assignment: str | None = None) -> list[Recorded]:
        query = ("SELECT l.name, a.name, s.source, s.content_hash, s.graded_at, s.mlgrade_version, "
                 "s.grader_version, s.seed, s.score, s.max_score, s.duration_s, s.status, "
                 "s.reason, s.problem, s.result_json, s.submitted_at, s.submitted_from, "
                 "s.ignored_json, s.code_tokens FROM submissions s "
                 "JOIN learners l ON l.id = s.learner_id "
                 "JOIN assignments a ON a.id = s.assignment_id")
        rows = self._for_assignment(query, assignment, "a.name, l.name COLLATE NOCASE")
        return [_recorded(row) for row in rows]

    def test_rows(self, assignment: str | None = None) -> list[TestRow]:
        query = ("SELECT l.name, a.name, t.test_id, t.title, t.points, t.earned, t.status, "
                 "t.question, t.feedback FROM test_results t "
                 "JOIN submissions s ON s.id = t.submission_id "
                 "JOIN learners l ON l.id = s.learner_id "
                 "JOIN assignments a ON a.id = s.assignment_id")
        rows = self._for_assignment(query, assignment, "a.name, l.name COLLATE NOCASE, t.rowid")
        return [TestRow(*row) for row in rows]

    def _for_assignment(self, query: str, assignment: str | None, order: str) -> sqlite3.Cursor:
        """Run ``query`` (which joins ``assignments a``), restricted to one assignment if given."""
        args: tuple[Any, ...] = ()
        if assignment is not None:
            query += " WHERE a.name = ?"
            args = (assignment,)
        return self.conn.execute(f"{query} ORDER BY {order}", args)


def _recorded(row: tuple[Any, ...]) -> Recorded:
    (learner, assignment, source, digest, graded_at, mlgrade_version, grader_version, seed,
     score, max_score, duration_s, status, reason, problem, result_json, submitted_at,
     submitted_from, ignored_json, code_tokens) = row
    return Recorded(learner=learner, assignment=assignment, source=source, content_hash=digest,
                    graded_at=graded_at, mlgrade_version=mlgrade_version,
                    grader_version=grader_version, seed=seed, score=score, max_score=max_score,
                    duration_s=duration_s, status=status, reason=reason, problem=problem,
                    result=json.loads(result_json), submitted_at=submitted_at,
                    submitted_from=submitted_from, ignored=tuple(json.loads(ignored_json)),
                    code_tokens=code_tokens)


def _statements(sql: str) -> list[str]:
    """Split a migration script on ``;`` (the scripts hold no literal semicolons)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def open_existing(path: Path) -> Gradebook:
    """A gradebook that must already exist (report, export, feedback)."""
    return Gradebook(path, create=False)


__all__ = ["DEFAULT_GRADEBOOK", "MIGRATIONS", "Adjustment", "Due", "Gradebook", "Provenance",
           "Recorded", "TestRow", "open_existing"]
