"""Deliver stage: hand a rendered result to its consumer, and build the platform files.

* :func:`deliver` writes a machine format to ``--output FILE`` (atomically, only once grading
  finished), to ``$GITHUB_OUTPUT``/``$GITHUB_STEP_SUMMARY`` for GitHub Classroom inside
  Actions, or returns it for stdout.
* :func:`collect_grader_tests` lists an assignment's grader tests without a notebook (a pytest
  collection), so the Classroom workflow can name one runner per test.
* :func:`classroom_workflow` and :func:`gradescope_bundle` build the files a lead uploads.
"""

from __future__ import annotations

import contextlib
import io
import json
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path

from mlgrade import __version__
from mlgrade.assignments import Assignment
from mlgrade.errors import AssignmentInvalidError, UsageError
from mlgrade.fsutil import write_bytes_atomic, write_text_atomic
from mlgrade.render import Format, markdown, renderer
from mlgrade.render import classroom as classroom_format
from mlgrade.render.classroom import GraderTest, runners_for
from mlgrade.results import GradeResult, SubmissionStatus

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
ENV_AUTOGRADER_ROOT = "MLGRADE_AUTOGRADER_ROOT"


def collect_grader_tests(assignment: Assignment) -> tuple[GraderTest, ...]:
    """The assignment's grader tests in run order (no kernel, no notebook)."""
    from mlgrade.grading.runner import collect_graders

    tests, errors = collect_graders(assignment.graders)
    if errors or not tests:
        why = errors[0] if errors else "no grader tests were found"
        raise AssignmentInvalidError(
            f"the graders of {assignment.name} in {assignment.graders} cannot be collected "
            f"({why}). Fix them, then check with `mlgrade check {assignment.name} "
            "SOLUTION.ipynb`.")
    return tuple(GraderTest(t.id, t.title, t.question, t.points or 0.0) for t in tests)


# -- delivering a rendered result ----------------------------------------------------------------
def classroom_outputs(result: GradeResult, assignment: Assignment | None) -> dict[str, str]:
    """Runner outputs; an errored result is completed with the tests it lacks, so every
    runner the generated workflow lists gets a document."""
    expected: tuple[GraderTest, ...] | None = None
    if assignment is not None and result.status is SubmissionStatus.ERRORED:
        with contextlib.suppress(AssignmentInvalidError):
            expected = collect_grader_tests(assignment)
    return classroom_format.outputs(result, expected)


def deliver(result: GradeResult, fmt: Format, *, output: Path | None,
            env: Mapping[str, str], assignment: Assignment | None = None) -> str | None:
    """Write ``result`` in machine format ``fmt`` where it belongs; return text for stdout
    (or None when it went to a file).

    Classroom inside GitHub Actions (``GITHUB_OUTPUT`` set, no ``--output``): the runner
    outputs are appended to ``$GITHUB_OUTPUT`` and the Markdown report to
    ``$GITHUB_STEP_SUMMARY`` (when set), each in one write.
    """
    if fmt is Format.CLASSROOM:
        text = classroom_format.output_lines(classroom_outputs(result, assignment))
        if env.get("GITHUB_STEP_SUMMARY"):
            _append(Path(env["GITHUB_STEP_SUMMARY"]), markdown.render(result) + "\n")
        if output is None and env.get("GITHUB_OUTPUT"):
            _append(Path(env["GITHUB_OUTPUT"]), text)
            return None
    else:
        text = renderer(fmt)(result)
    if output is not None:
        write_text_atomic(output, text)
        return None
    return text


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


# -- GitHub Classroom workflow -------------------------------------------------------------------
def install_command(spec: str | None, constraints: str | None) -> str:
    """The pip command that installs mlgrade with CPU-only torch wheels."""
    target = spec or f"mlgrade=={__version__}"
    parts = ["python -m pip install", f"--extra-index-url {TORCH_CPU_INDEX}"]
    if constraints:
        parts.append(f"-c {_sh_quote(constraints)}")
    parts.append(_sh_quote(target))
    return " ".join(parts)


def _sh_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _yaml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid YAML scalar


def classroom_workflow(assignment: Assignment, tests: tuple[GraderTest, ...], *,
                       notebook: str | None = None, python: str = "3.12",
                       install: str | None = None, constraints: str | None = None) -> str:
    """The complete ``.github/workflows/classroom.yml`` for ``assignment``.

    The reporter requires the workflow name ``Autograding Tests`` and a single job named
    ``run-autograding-tests``; it needs ``checks: write`` to post the points to Classroom.
    """
    runners = runners_for(tests)
    nb = notebook or assignment.starter.name
    check = f"mlgrade check {_sh_quote(assignment.name)} {_sh_quote(nb)} --format classroom"
    env_lines = "".join(
        f'          {r.env_name}: "${{{{ steps.grade.outputs.{r.output_name} }}}}"\n'
        for r in runners)
    total = sum(t.points for t in tests)
    return f"""\
# GitHub Classroom autograding for {assignment.name} ({_oneline(assignment.title)}).
# Generated by `mlgrade classroom workflow {assignment.name}` (mlgrade {__version__});
# save as .github/workflows/classroom.yml in the assignment's template repository.
# {len(runners)} runners, one per grader test, {total:g} points in all.
name: Autograding Tests
on:
  - push
  - repository_dispatch
  - workflow_dispatch
permissions:
  checks: write
  actions: read
  contents: read
jobs:
  run-autograding-tests:
    runs-on: ubuntu-latest
    if: github.actor != 'github-classroom[bot]'
    timeout-minutes: 30
    steps:
      - name: Checkout code
        uses: actions/checkout@v4
      - name: Set up Python
        uses: actions/setup-python@v5
        with:
          python-version: {_yaml_str(python)}
      - name: Install mlgrade
        run: |
          python -m pip install --upgrade pip
          {install_command(install, constraints)}
      - name: Grade {assignment.name}
        id: grade
        run: |
          # exit 1 only means points were lost: the reporter below decides pass/fail.
          # Any other code (bad notebook path, broken install) fails this step.
          code=0
          {check} || code=$?
          if [ "$code" -gt 1 ]; then exit "$code"; fi
      - name: Autograding Reporter
        uses: classroom-resources/autograding-grading-reporter@v1
        env:
{env_lines}        with:
          runners: {",".join(r.id for r in runners)}
"""


def _oneline(text: str) -> str:
    return " ".join(text.split())


# -- Gradescope autograder bundle -----------------------------------------------------------------
_SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once while building the autograder image.
set -euo pipefail
if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-pip python3-venv
fi
python3 -m pip install --upgrade pip || true
{install}
mlgrade --version
"""

_RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission. It grades the submitted notebook with the
# installed mlgrade and always leaves results/results.json behind.
# {env_root} overrides /autograder (used by mlgrade's own tests).
set -uo pipefail
ROOT="${{{env_root}:-/autograder}}"
ASSIGNMENT={assignment}
EXPECTED={notebook}
RESULTS="$ROOT/results/results.json"
mkdir -p "$ROOT/results"

fail() {{  # write a 0-point results.json that tells the learner what to do
  python3 - "$1" "$RESULTS" <<'PY'
import json, sys
doc = {{"score": 0, "execution_time": 0, "output": sys.argv[1], "visibility": "visible",
       "stdout_visibility": "hidden", "tests": []}}
with open(sys.argv[2], "w", encoding="utf-8") as handle:
    json.dump(doc, handle, ensure_ascii=False)
PY
  exit 0
}}

mapfile -t found < <(find "$ROOT/submission" -name '*.ipynb' \
  -not -path '*/.ipynb_checkpoints/*' | sort)
notebook=""
for path in "${{found[@]}}"; do
  if [ "$(basename "$path")" = "$EXPECTED" ]; then notebook="$path"; fi
done
if [ -z "$notebook" ] && [ "${{#found[@]}}" -eq 1 ]; then notebook="${{found[0]}}"; fi
if [ -z "$notebook" ]; then
  fail "No notebook to grade: submit exactly one .ipynb file (ideally named $EXPECTED);\
 found ${{#found[@]}}."
fi

errors="$(mktemp)"
code=0
mlgrade check "$ASSIGNMENT" "$notebook" --format gradescope --output "$RESULTS" \
  2>"$errors" || code=$?
cat "$errors" >&2
if [ "$code" -gt 1 ] || [ ! -s "$RESULTS" ]; then
  fail "Your notebook could not be graded (mlgrade exit code $code): $(tail -c 2000 "$errors")"
fi
exit 0
"""


def gradescope_bundle(assignment: Assignment, dest: Path, *, install: str | None = None,
                      constraints: str | None = None, notebook: str | None = None) -> list[str]:
    """Write the autograder zip Gradescope expects (``setup.sh`` and ``run_autograder`` at its
    root); the graders ship with the pinned mlgrade it installs. Returns the member names."""
    if dest.suffix != ".zip":
        raise UsageError(f"{dest} does not end in .zip; Gradescope only accepts a .zip "
                         "autograder. Pass -o autograder.zip.")
    setup = _SETUP_SH.format(install=install_command(install, constraints).replace(
        "python -m pip", "python3 -m pip"))
    run = _RUN_AUTOGRADER.format(env_root=ENV_AUTOGRADER_ROOT,
                                 assignment=_sh_quote(assignment.name),
                                 notebook=_sh_quote(notebook or assignment.starter.name))
    readme = (f"Gradescope autograder for {assignment.name} ({_oneline(assignment.title)}), "
              f"built by mlgrade {__version__}.\nUpload this zip as the autograder of a "
              "programming assignment; learners submit their .ipynb notebook.\n")
    members = {"setup.sh": setup, "run_autograder": run, "README.txt": readme}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            mode = 0o755 if name != "README.txt" else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text)
    write_bytes_atomic(dest, buf.getvalue())
    return list(members)
