#!/usr/bin/env python3
"""PrairieLearn external-grader entrypoint: grade /grade/student/month3.ipynb with mlgrade (or
the upload and assignment the question names, e.g. the capstone repository as capstone.zip).

PrairieLearn copies this file to /grade/serverFilesCourse/mlgrade/grade.py (the question's
``externalGradingOptions.serverFilesCourse``), marks it executable and runs it in the image
built from the Dockerfile beside it. It runs

    mlgrade check month3 /grade/student/month3.ipynb --format prairielearn \
        --output /grade/results/results.json

and always leaves a results.json behind, exiting 0 (PrairieLearn counts any other exit status,
or a missing results.json, as a failed grading job with no feedback). When mlgrade refuses the
file (not a notebook), cannot grade it or does not finish in time, the result has
``gradable: false`` and a message for the learner: PrairieLearn then shows "invalid, not
gradable" and does not use up an attempt.

It runs as root, like PrairieLearn's own grader images: /grade is owned by root. The learner's
code never does: mlgrade runs each kernel under an unprivileged uid of its own (see the
Dockerfile). Only the standard library is used here, so a broken mlgrade install still yields
a results.json that says so.

Environment (all optional):
  MLGRADE_PL_ASSIGNMENT   the assignment to grade (default month3)
  MLGRADE_PL_UPLOAD       the uploaded file under /grade/student (default month3.ipynb); a .zip
                          is a repository assignment's repository (e.g. capstone.zip). A
                          question sets both in externalGradingOptions.environment.
  MLGRADE_GRADE_ROOT      the grading folder (default /grade; mlgrade's tests use a temporary one)
  MLGRADE_GRADE_DEADLINE  seconds mlgrade may take before it is stopped (default 570, i.e. 30 s
                          under the question's 600 s timeout)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ASSIGNMENT = os.environ.get("MLGRADE_PL_ASSIGNMENT") or "month3"
UPLOAD = os.environ.get("MLGRADE_PL_UPLOAD") or "month3.ipynb"
REPOSITORY = UPLOAD.endswith(".zip")  # a repository assignment: mlgrade reads the .zip itself
DEFAULT_DEADLINE_S = 570.0
STOP_GRACE_S = 20.0  # after SIGINT, how long mlgrade gets to stop its kernel before SIGKILL
MESSAGE_LIMIT = 4000


def not_gradable(results: Path, message: str, detail: str = "") -> None:
    """Write a results.json that PrairieLearn shows as "invalid, not gradable"."""
    text = message if len(message) <= MESSAGE_LIMIT else message[:MESSAGE_LIMIT] + " …"
    doc: dict[str, Any] = {"gradable": False, "score": 0.0, "message": text,
                           "format_errors": [text], "output": detail[-MESSAGE_LIMIT:],
                           "tests": []}
    write_json(results, doc)


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def mlgrade_result(path: Path) -> dict[str, Any] | None:
    """The results.json mlgrade wrote, if it is a PrairieLearn result document."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(doc, dict) and isinstance(doc.get("gradable"), bool):
        return doc
    return None


def last_error(stderr: str) -> str:
    """mlgrade's one-line error ("error: ... what to do"), else the last line it printed."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("error:"):
            return line[len("error:"):].strip()
    return lines[-1] if lines else "no output"


def run_mlgrade(upload: Path, results: Path, deadline: float) -> tuple[int | None, str]:
    """Run ``mlgrade check``; returns (exit code or None when stopped at the deadline, stderr)."""
    # Run from the upload's folder, so that mlgrade's messages name the file as the learner
    # knows it ("month3.ipynb is not a notebook ..."), not by its path in the container.
    command = [sys.executable, "-m", "mlgrade", "check", ASSIGNMENT, upload.name,
               "--format", "prairielearn", "--output", str(results.resolve())]
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as err:
        # Its own session: at the deadline the whole group is stopped, not this script.
        process = subprocess.Popen(command, cwd=upload.parent, stdin=subprocess.DEVNULL,
                                   stdout=sys.stderr, stderr=err, start_new_session=True)
        code: int | None
        try:
            code = process.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            code = None
            os.killpg(process.pid, signal.SIGINT)  # mlgrade stops its kernel on Ctrl-C
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        err.seek(0)
        stderr = err.read()
    sys.stderr.write(stderr[-20_000:])  # PrairieLearn keeps the container's output in its log
    return code, stderr


def main() -> int:
    root = Path(os.environ.get("MLGRADE_GRADE_ROOT") or "/grade")
    results = root / "results" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.unlink(missing_ok=True)
    try:
        deadline = float(os.environ.get("MLGRADE_GRADE_DEADLINE") or DEFAULT_DEADLINE_S)
    except ValueError:
        deadline = DEFAULT_DEADLINE_S

    upload = root / "student" / UPLOAD
    if not upload.is_file():
        what = "a .zip of your repository" if REPOSITORY else "your notebook"
        not_gradable(results, f"No {UPLOAD} was submitted: upload {what} under that name.")
        return 0

    try:
        code, stderr = run_mlgrade(upload, results, deadline)
    except OSError as exc:  # the interpreter or mlgrade cannot even start
        not_gradable(results, "The grader could not start; please tell your instructor "
                     f"({type(exc).__name__}: {exc}).")
        return 0

    if code is None:
        results.unlink(missing_ok=True)
        slow = ("your tests, your training script and your app's startup finish quickly"
                if REPOSITORY else "every cell of your notebook finishes quickly when run "
                "from the top")
        not_gradable(results, f"Grading did not finish within {deadline:g} seconds. Make sure "
                     f"{slow} (no waiting for input, no endless loops), then submit again.", stderr)
    elif code in (0, 1) and mlgrade_result(results) is not None:
        pass  # graded: mlgrade's own result (1 only means points were lost)
    elif code == 2:  # mlgrade refused the file: the learner can fix it
        not_gradable(results, f"Your file could not be graded: {last_error(stderr)}", stderr)
    else:  # 3 environment, 4 internal error, or no usable result: the course's problem
        not_gradable(results, f"The grader failed (mlgrade exit code {code}): "
                     f"{last_error(stderr)}. Your attempt was not counted; please tell your "
                     "instructor.", stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
