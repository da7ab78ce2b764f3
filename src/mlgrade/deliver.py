"""Deliver stage: hand a rendered result to its consumer, and build the platform files.

* :func:`deliver` writes a machine format to ``--output FILE`` (atomically, only once grading
  finished), to ``$GITHUB_OUTPUT``/``$GITHUB_STEP_SUMMARY`` for GitHub Classroom inside
  Actions, or returns it for stdout.
* :func:`collect_grader_tests` lists an assignment's grader tests without a notebook (a pytest
  collection), so the Classroom workflow can name one runner per test.
* :func:`classroom_workflow`, :func:`classroom_template` and :func:`gradescope_bundle` build
  the files a lead uploads. Both platforms install mlgrade from a wheel of the running mlgrade
  that travels with them (``.github/mlgrade/`` in the template, the root of the zip), so no
  package index needs to have mlgrade; ``--install SPEC`` replaces it (a git URL, a version).
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
from mlgrade.assignments import TORCH_CPU_INDEX, Assignment
from mlgrade.errors import AssignmentInvalidError, UsageError
from mlgrade.fsutil import copy_file_atomic, write_bytes_atomic, write_text_atomic
from mlgrade.render import Format, markdown, renderer
from mlgrade.render import classroom as classroom_format
from mlgrade.render.classroom import GraderTest, runners_for
from mlgrade.results import GradeResult, SubmissionStatus

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


# -- installing mlgrade on a platform -------------------------------------------------------------
CLASSROOM_WHEEL_DIR = ".github/mlgrade"  # where `classroom init` puts the wheel in the template
ENV_SEED = "MLGRADE_SEED"


def with_extras(spec: str, extras: list[str]) -> str:
    """``spec`` asking for ``extras`` too: a wheel path or a name gets ``[...]`` appended, a URL
    becomes ``mlgrade[...] @ URL``; a spec that already names extras is left alone."""
    if not extras or "[" in spec:
        return spec
    tag = "[" + ",".join(extras) + "]"
    if " @ " in spec:
        name, _, url = spec.partition(" @ ")
        return f"{name.strip()}{tag} @ {url.strip()}"
    if "://" in spec:
        return f"mlgrade{tag} @ {spec}"
    for op in ("===", "==", "~=", ">=", "<=", "!=", ">", "<"):
        if op in spec:
            name, _, version = spec.partition(op)
            return f"{name.strip()}{tag}{op}{version.strip()}"
    return spec + tag


def install_command(spec: str, constraints: str | None, assignment: Assignment | None = None, *,
                    pip: str = "python -m pip", quote: bool = True) -> str:
    """The pip command that installs ``spec`` (a wheel path, a git URL, a pinned version) with
    the extra ``assignment`` needs; CPU-only torch wheels when it needs torch."""
    extras = [assignment.extra] if assignment is not None and assignment.extra else []
    parts = [f"{pip} install"]
    if assignment is not None and "torch" in assignment.requires:
        parts.append(f"--extra-index-url {TORCH_CPU_INDEX}")
    if constraints:
        parts.append(f"-c {_sh_quote(constraints)}")
    target = with_extras(spec, extras)
    parts.append(_sh_quote(target) if quote else f'"{target}"')
    return " ".join(parts)


def _sh_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _yaml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid YAML scalar


# -- GitHub Classroom workflow -------------------------------------------------------------------
def classroom_workflow(assignment: Assignment, tests: tuple[GraderTest, ...], *,
                       notebook: str | None = None, python: str = "3.12",
                       install: str | None = None, constraints: str | None = None,
                       wheel: str | None = None) -> str:
    """The complete ``.github/workflows/classroom.yml`` for ``assignment``.

    mlgrade is installed from ``install`` if given, else from the wheel ``wheel`` (default: this
    version's) under ``.github/mlgrade/`` of the repository. The reporter requires the
    workflow name ``Autograding Tests`` and a single job named ``run-autograding-tests``; it
    needs ``checks: write`` to post the points to Classroom. The grading seed comes from the
    ``MLGRADE_SEED`` organisation secret when it is set (learners' repositories get the
    organisation's secrets, never the template repository's).
    """
    from mlgrade.own_wheel import wheel_name

    runners = runners_for(tests)
    spec = install or f"{CLASSROOM_WHEEL_DIR}/{wheel or wheel_name()}"
    graded = _sh_quote(graded_path(assignment, notebook))
    check = f"mlgrade check {_sh_quote(assignment.name)} {graded} --format classroom"
    env_lines = "".join(
        f'          {r.env_name}: "${{{{ steps.grade.outputs.{r.output_name} }}}}"\n'
        for r in runners)
    total = sum(t.points for t in tests)
    return f"""\
# GitHub Classroom autograding for {assignment.name} ({_oneline(assignment.title)}).
# Generated by mlgrade {__version__} (`mlgrade classroom init {assignment.name} DIR` writes the whole
# template repository); saved as .github/workflows/classroom.yml.
# {len(runners)} runners, one per grader test, {total:g} points in all.
# Grading seed: the organisation secret {ENV_SEED}, when set (see the README; a secret of the
# template repository is not copied to learners' repositories).
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
        uses: actions/checkout@v5
      - name: Set up Python
        uses: actions/setup-python@v6
        with:
          python-version: {_yaml_str(python)}
      - name: Install mlgrade
        run: |
          python -m pip install --upgrade pip
          {install_command(spec, constraints, assignment)}
      - name: Grade {assignment.name}
        id: grade
        env:
          {ENV_SEED}: ${{{{ secrets.{ENV_SEED} }}}}
        run: |
          # an unset secret arrives empty: then mlgrade draws a seed for this run itself
          if [ -z "${{{ENV_SEED}:-}}" ]; then unset {ENV_SEED}; fi
          # exit 1 only means points were lost: the reporter below decides pass/fail.
          # Any other code (a path it cannot read, a broken install) fails this step.
          code=0
          {check} || code=$?
          if [ "$code" -gt 1 ]; then exit "$code"; fi
      - name: Autograding Reporter
        uses: classroom-resources/autograding-grading-reporter@v1
        env:
{env_lines}        with:
          runners: {",".join(r.id for r in runners)}
"""


def graded_path(assignment: Assignment, notebook: str | None) -> str:
    """What a platform grades: the notebook's file name, or for a repository assignment the
    checkout itself (``.``: the learner's own workflows beside ``classroom.yml`` are theirs)."""
    if assignment.is_repository:
        if notebook is not None:
            raise UsageError(f"{assignment.name} grades the learner's repository: --notebook "
                             "applies to notebook assignments only; leave it out.")
        return "."
    return notebook or assignment.starter.name


def _oneline(text: str) -> str:
    return " ".join(text.split())


_LEARNER_README = """\
# {title}

Your work for this assignment is **`{notebook}`** ({points:g} points). Every push to this
repository is graded automatically; your points appear in GitHub Classroom and under the
**Actions** tab ("Autograding Tests", with a report for each run).

## 1. Open it

```bash
python3 -m venv .venv
. .venv/bin/activate            # Windows: .venv\\Scripts\\activate
{install}
jupyter lab {notebook_q}
```

## 2. Check it locally

```bash
mlgrade check {name} {notebook_q}
```

You get a score and a hint for each test. The graders that run on GitHub use inputs you do not
see, so an answer must be computed, not typed in.

## 3. Hand it in

```bash
git add {notebook_q}
git commit -m "my answers"
git push
```

Push as often as you like; the last run counts.

## For the teacher

{teacher}"""


# the README's last section, for notebook and repository templates alike
FOR_THE_TEACHER = """\
This repository was generated by `mlgrade classroom init {name}` (mlgrade {version}); mark it as
a template and use it as the starter code of a GitHub Classroom assignment.
`.github/workflows/classroom.yml` grades each push; it installs mlgrade from the wheel in
`.github/mlgrade/`. Set a secret grading seed so that nobody can precompute the graders' inputs
from the published graders: in the organisation open *Settings → Secrets and variables →
Actions → New organization secret*, name it `{seed}` and give it a number, or run
`gh secret set {seed} --org YOUR-ORG --body "$(python3 -c 'import secrets; print(secrets.randbelow(2**31))')"`.
Learners' repositories created by Classroom get the organisation's secrets; a secret set on
this template repository is not copied to them, so set it on the organisation.
Without it, every run draws its own seed (the seed is in each run's report).
"""


def teacher_section(name: str) -> str:
    """The template README's words for the lead: what the repository is, the seed secret."""
    return FOR_THE_TEACHER.format(name=name, version=__version__, seed=ENV_SEED)


def classroom_template(assignment: Assignment, dest: Path, *, install: str | None = None,
                       wheel: Path | None = None, python: str = "3.12",
                       constraints: str | None = None) -> list[Path]:
    """Write a GitHub Classroom template repository for ``assignment`` into ``dest`` (a new or
    empty folder): the starter notebook (at the path the workflow grades) and its data, a
    learner README, ``.github/workflows/classroom.yml`` and, unless ``install`` says otherwise,
    a wheel of the running mlgrade under ``.github/mlgrade/``. For a repository assignment the
    starter is the starter repository and the README its own, with a section on grading added
    (:mod:`mlgrade.repo.platforms`). Returns the files written."""
    from mlgrade.own_wheel import build_own_wheel

    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest} is not an empty folder; give a new folder for the template "
                         "repository (nothing was written).")
    tests = collect_grader_tests(assignment)
    if assignment.is_repository:
        from mlgrade.repo import platforms as repo_platforms

        written = repo_platforms.copy_starter(assignment, dest)
    else:
        written = _copy_starter_notebook(assignment, dest)
    wheel_file: str | None = None
    if install is None:
        built = build_own_wheel(dest / CLASSROOM_WHEEL_DIR, wheel)
        wheel_file = built.name
        written.append(built)
    workflow = dest / ".github" / "workflows" / "classroom.yml"
    write_text_atomic(workflow, classroom_workflow(assignment, tests, python=python, install=install,
                                                   constraints=constraints, wheel=wheel_file))
    written.append(workflow)
    spec = install or f"{CLASSROOM_WHEEL_DIR}/{wheel_file}"
    points = assignment.total_points or sum(t.points for t in tests)
    if assignment.is_repository:
        return written + repo_platforms.learner_readme(
            assignment, dest, install=with_extras(spec, [assignment.extra] if assignment.extra else []),
            points=points, teacher=teacher_section(assignment.name))
    extras = [e for e in (assignment.extra, "jupyter") if e]
    index = f" --extra-index-url {TORCH_CPU_INDEX}" if "torch" in assignment.requires else ""
    notebook = assignment.starter.name
    readme = _LEARNER_README.format(
        title=_oneline(assignment.title), notebook=notebook, notebook_q=_sh_quote(notebook),
        points=points, name=assignment.name,
        install=f'pip install{index} "{with_extras(spec, extras)}"',
        teacher=teacher_section(assignment.name))
    write_text_atomic(dest / "README.md", readme)
    write_text_atomic(dest / ".gitignore", ".venv/\n.ipynb_checkpoints/\n__pycache__/\n")
    return [*written, dest / "README.md", dest / ".gitignore"]


def _copy_starter_notebook(assignment: Assignment, dest: Path) -> list[Path]:
    notebook = assignment.starter.name
    copy_file_atomic(assignment.starter, dest / notebook)
    written = [dest / notebook]
    for data in assignment.data_dirs:
        for src in sorted(p for p in data.rglob("*") if p.is_file()):
            target = dest / data.name / src.relative_to(data)
            copy_file_atomic(src, target)
            written.append(target)
    return written


# -- Gradescope autograder bundle -----------------------------------------------------------------
_SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once while building the autograder image. mlgrade goes into its own
# virtual environment: Ubuntu 24.04's Python refuses pip installs into the system (PEP 668),
# which a venv never runs into. Python 3.10 (Ubuntu 22.04) or newer.
# {env_root} overrides /autograder and MLGRADE_SETUP_PYTHON picks the interpreter (tests).
set -euo pipefail
HERE="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"
ROOT="${{{env_root}:-/autograder}}"
VENV="$ROOT/mlgrade-venv"

pick_python() {{  # the first interpreter >= 3.10 that can make a venv
  for candidate in ${{MLGRADE_SETUP_PYTHON:-python3.13 python3.12 python3.11 python3.10 python3}}; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c \\
        'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}}

if ! PY="$(pick_python)"; then  # e.g. Ubuntu 22.04 without python3-venv
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv
  PY="$(pick_python)" || {{ echo "setup.sh: no Python >= 3.10 with venv" >&2; exit 1; }}
fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip
{install}
"$VENV/bin/mlgrade" --version
"""

_RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission. It grades the submitted {what} with the
# mlgrade that setup.sh installed and always leaves results/results.json behind.
# {env_root} overrides /autograder (used by mlgrade's own tests). The grading seed is
# {env_seed} when the environment sets it, else mlgrade draws one for the run (see the result).
set -uo pipefail
ROOT="${{{env_root}:-/autograder}}"
ASSIGNMENT={assignment}
{expected}RESULTS="$ROOT/results/results.json"
MLGRADE="$ROOT/mlgrade-venv/bin/mlgrade"
PYTHON="$ROOT/mlgrade-venv/bin/python"
if [ ! -x "$MLGRADE" ]; then MLGRADE="$(command -v mlgrade)"; PYTHON="$(command -v python3)"; fi
mkdir -p "$ROOT/results"

fail() {{  # write a 0-point results.json that tells the learner what to do
  "$PYTHON" - "$1" "$RESULTS" <<'PY'
import json, sys
doc = {{"score": 0, "execution_time": 0, "output": sys.argv[1], "visibility": "visible",
       "stdout_visibility": "hidden", "tests": []}}
with open(sys.argv[2], "w", encoding="utf-8") as handle:
    json.dump(doc, handle, ensure_ascii=False)
PY
  exit 0
}}

{find}
errors="$(mktemp)"
code=0
"$MLGRADE" check "$ASSIGNMENT" "${what}" --format gradescope --output "$RESULTS" \\
  2>"$errors" || code=$?
cat "$errors" >&2
if [ "$code" -gt 1 ] || [ ! -s "$RESULTS" ]; then
  fail "Your {what} could not be graded (mlgrade exit code $code): $(tail -c 2000 "$errors")"
fi
exit 0
"""

# how run_autograder finds the notebook among the submitted files
_FIND_NOTEBOOK = """\
mapfile -t found < <(find "$ROOT/submission" -name '*.ipynb' \\
  -not -path '*/.ipynb_checkpoints/*' | sort)
notebook=""
for path in "${{found[@]}}"; do
  if [ "$(basename "$path")" = "$EXPECTED" ]; then notebook="$path"; fi
done
if [ -z "$notebook" ] && [ "${{#found[@]}}" -eq 1 ]; then notebook="${{found[0]}}"; fi
if [ -z "$notebook" ]; then
  fail "No notebook to grade: submit exactly one .ipynb file (ideally named $EXPECTED);\\
 found ${{#found[@]}}."
fi
"""


def gradescope_bundle(assignment: Assignment, dest: Path, *, install: str | None = None,
                      constraints: str | None = None, notebook: str | None = None,
                      wheel: Path | None = None) -> list[str]:
    """Write the autograder zip Gradescope expects (``setup.sh`` and ``run_autograder`` at its
    root) with a wheel of the running mlgrade (graders included) beside them, unless
    ``install`` names another pip requirement. Returns the member names."""
    from mlgrade.own_wheel import build_own_wheel

    if dest.suffix != ".zip":
        raise UsageError(f"{dest} does not end in .zip; Gradescope only accepts a .zip "
                         "autograder. Pass -o autograder.zip.")
    import tempfile

    members: dict[str, bytes] = {}
    if install is None:
        with tempfile.TemporaryDirectory(prefix="mlgrade-bundle-") as tmp:
            built = build_own_wheel(Path(tmp), wheel)
            members[built.name] = built.read_bytes()
        spec = f"$HERE/{built.name}"
    else:
        spec = install
    command = install_command(spec, constraints, assignment, pip='"$VENV/bin/python" -m pip',
                              quote=install is not None)
    setup = _SETUP_SH.format(env_root=ENV_AUTOGRADER_ROOT, install=command)
    if assignment.is_repository:
        from mlgrade.repo.platforms import FIND_REPOSITORY, SUBMIT_REPOSITORY

        graded_path(assignment, notebook)  # refuses --notebook
        what, expected, find, submit = "repository", "", FIND_REPOSITORY, SUBMIT_REPOSITORY
    else:
        expected = f"EXPECTED={_sh_quote(notebook or assignment.starter.name)}\n"
        what, find, submit = "notebook", _FIND_NOTEBOOK, "submit their .ipynb notebook"
    run = _RUN_AUTOGRADER.format(env_root=ENV_AUTOGRADER_ROOT, env_seed=ENV_SEED, what=what,
                                 assignment=_sh_quote(assignment.name), expected=expected,
                                 find=find.format())
    readme = (f"Gradescope autograder for {assignment.name} ({_oneline(assignment.title)}), "
              f"built by mlgrade {__version__}.\nUpload this zip as the autograder of a "
              "programming assignment (any Ubuntu base image with Python >= 3.10); learners "
              f"{submit}.\n")
    members = {"setup.sh": setup.encode(), "run_autograder": run.encode(),
               "README.txt": readme.encode(), **members}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            mode = 0o755 if name in ("setup.sh", "run_autograder") else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    write_bytes_atomic(dest, buf.getvalue())
    return list(members)
