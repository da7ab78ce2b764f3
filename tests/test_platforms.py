"""Platform deliverables end to end: the GitHub Classroom workflow and the Gradescope bundle,
run for real against the installed ``mlgrade`` (one kernel run per platform)."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import FIXTURE_NOTEBOOKS, REPO
from tests.probes import PYTHON310, python310, requires
from typer.testing import CliRunner

from mlgrade.assignments import default_assignments_dir, get_assignment
from mlgrade.cli import app
from mlgrade.deliver import collect_grader_tests
from mlgrade.render import Format
from mlgrade.render.classroom import runners_for

runner = CliRunner()
BIN = str(Path(sys.executable).parent)  # the installed `mlgrade` and `python3` live here
ONE_WRONG = FIXTURE_NOTEBOOKS / "one_wrong_answer.ipynb"


def _month2_tests() -> int:
    """How many grader tests month 2 has (one reporter runner each)."""
    return len(collect_grader_tests(get_assignment(default_assignments_dir(), "month2")))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def _workflow() -> dict[str, Any]:
    result = runner.invoke(app, ["classroom", "workflow", "month2"])
    assert result.exit_code == 0, result.stderr
    return yaml.safe_load(result.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("fmt", list(Format), ids=str)
@pytest.mark.parametrize("name", ["month2", "capstone"])
def test_every_format_is_a_check_option(name: str, fmt: Format, tmp_path: Path) -> None:
    # accepted by the option parser: the run gets as far as looking for the notebook (or the
    # repository)
    missing = tmp_path / "absent.ipynb"
    result = runner.invoke(app, ["check", name, str(missing), "--format", fmt.value])
    assert result.exit_code == 2 and "absent.ipynb" in result.stderr
    assert "Invalid value" not in result.stderr and result.stdout == ""


def test_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["check", "month2", "--format", "xml"])
    assert result.exit_code == 2 and "Invalid value" in result.stderr


def test_classroom_workflow_is_complete_and_lists_every_runner() -> None:
    wf = _workflow()
    assert wf["name"] == "Autograding Tests"  # the reporter posts points only under this name
    assert wf["permissions"]["checks"] == "write"
    (job_name,) = wf["jobs"]
    assert job_name == "run-autograding-tests"
    steps = wf["jobs"][job_name]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert uses[:2] == ["actions/checkout@v5", "actions/setup-python@v6"]  # Node 24 majors
    install = next(s for s in steps if s["name"] == "Install mlgrade")["run"]
    from mlgrade.own_wheel import wheel_name

    # no package index has mlgrade: the template carries the wheel; month 2 needs no torch
    assert f"python -m pip install .github/mlgrade/{wheel_name()}" in install
    assert "download.pytorch.org" not in install
    grade = next(s for s in steps if s.get("id") == "grade")
    assert "mlgrade check month2 month2.ipynb --format classroom" in grade["run"]
    assert grade["env"] == {"MLGRADE_SEED": "${{ secrets.MLGRADE_SEED }}"}
    reporter = steps[-1]
    assert reporter["uses"] == "classroom-resources/autograding-grading-reporter@v1"
    ids = reporter["with"]["runners"].split(",")
    a = get_assignment(default_assignments_dir(), "month2")
    expected = runners_for(collect_grader_tests(a))
    assert ids == [r.id for r in expected] and len(ids) == _month2_tests()
    assert all(re.fullmatch(r"[a-zA-Z0-9]+", i) for i in ids)  # the reporter's own pattern
    assert reporter["env"] == {
        f"{i.upper()}_RESULTS": f"${{{{ steps.grade.outputs.{i}_result }}}}" for i in ids}


def test_classroom_workflow_options_and_unknown_assignment(tmp_path: Path) -> None:
    dest = tmp_path / "classroom.yml"
    result = runner.invoke(app, ["classroom", "workflow", "month2", "-o", str(dest),
                                 "--notebook", "my work.ipynb", "--python", "3.11",
                                 "--install", "mlgrade @ git+https://example.org/mlgrade@v1",
                                 "--constraints", "https://example.org/constraints.txt"])
    assert result.exit_code == 0, result.stderr
    wf = yaml.safe_load(dest.read_text(encoding="utf-8"))
    steps = wf["jobs"]["run-autograding-tests"]["steps"]
    assert steps[1]["with"]["python-version"] == "3.11"
    assert "-c https://example.org/constraints.txt 'mlgrade @ git+https://example.org/mlgrade@v1'" \
        in steps[2]["run"]
    assert "'my work.ipynb'" in steps[3]["run"]
    bad = runner.invoke(app, ["classroom", "workflow", "month99"])
    assert bad.exit_code == 2 and "mlgrade list" in bad.stderr


def test_classroom_readme_puts_the_seed_secret_where_learners_get_it(tmp_path: Path) -> None:
    """Template repository secrets are not copied to learners' repositories (docs/platforms.md):
    the generated README and workflow must not send the lead there."""
    template = tmp_path / "template"
    result = runner.invoke(app, ["classroom", "init", "month2", str(template),
                                 "--install", "mlgrade==0.1.0"])
    assert result.exit_code == 0, result.stderr
    readme = " ".join((template / "README.md").read_text(encoding="utf-8").split())
    assert "in the organisation open *Settings → Secrets and variables → Actions" in readme
    assert "or this repository" not in readme
    assert ("a secret set on this template repository is not copied to them, so set it on the "
            "organisation") in readme
    workflow = (template / ".github" / "workflows" / "classroom.yml").read_text(encoding="utf-8")
    assert "repository or organisation secret" not in workflow
    assert "# Grading seed: the organisation secret MLGRADE_SEED" in workflow
    docs = " ".join((REPO / "docs" / "platforms.md").read_text(encoding="utf-8").split())
    assert "repository secrets of the template are not copied" in docs


def test_workflows_are_valid_github_actions_workflows(tmp_path: Path) -> None:
    """The generated Classroom workflows (every month) and mlgrade's own CI pass
    check-jsonschema's vendored SchemaStore github-workflow schema (offline)."""
    tool = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert tool is not None, "check-jsonschema comes with the dev extra"
    # the capstone's starter carries the learner's own CI workflow (graded by its graders)
    files = [REPO / ".github" / "workflows" / "ci.yml",
             REPO / "assignments" / "capstone" / "starter" / ".github" / "workflows" / "ci.yml"]
    for month in (*(f"month{n}" for n in range(1, 7)), "capstone"):
        dest = tmp_path / f"{month}.yml"
        made = runner.invoke(app, ["classroom", "workflow", month, "-o", str(dest)])
        assert made.exit_code == 0, made.stderr
        files.append(dest)
    done = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows",
                           *map(str, files)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  grade:\n    runs-on: ubuntu-latest\n"
                      "    steps:\n      - uses: actions/checkout@v4\n        shell: 3\n",
                      encoding="utf-8")
    assert subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", str(broken)],
                          capture_output=True, check=False).returncode != 0


def _decode(value: str) -> dict[str, Any]:
    return json.loads(base64.b64decode(value, validate=True))  # type: ignore[no-any-return]


def test_classroom_outputs_for_an_unrunnable_notebook_cover_the_workflow(tmp_path: Path) -> None:
    from tests.render.canned import COULD_NOT_RUN

    from mlgrade.deliver import deliver

    a = get_assignment(default_assignments_dir(), "month2")
    listed = _workflow()["jobs"]["run-autograding-tests"]["steps"][-1]["with"]["runners"]
    out = tmp_path / "github_output"
    deliver(COULD_NOT_RUN, Format.CLASSROOM, output=None, env={"GITHUB_OUTPUT": str(out)},
            assignment=a)
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert [n.removesuffix("_result") for n in outputs] == listed.split(",")
    docs = [_decode(v) for v in outputs.values()]
    assert all(d["status"] == "error" and d["tests"][0]["score"] == 0 for d in docs)
    assert sum(d["max_score"] for d in docs) == 15  # Classroom still sees the real total


@pytest.mark.kernel
def test_classroom_grading_step_runs_and_feeds_every_runner(tmp_path: Path) -> None:
    """Run the generated workflow's grading step in bash, as Actions would."""
    wf = _workflow()
    steps = wf["jobs"]["run-autograding-tests"]["steps"]
    script = next(s for s in steps if s.get("id") == "grade")["run"]
    reporter_env = steps[-1]["env"]
    shutil.copyfile(ONE_WRONG, tmp_path / "month2.ipynb")
    out, summary = tmp_path / "github_output", tmp_path / "summary.md"
    env = _env(GITHUB_OUTPUT=str(out), GITHUB_STEP_SUMMARY=str(summary))
    # Actions runs `run:` with `bash -e`; exit 1 (points lost) must not stop the reporter
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    # what the reporter would see: one variable per listed runner, each decodable
    for var, expr in reporter_env.items():
        name = re.fullmatch(r"\$\{\{ steps\.grade\.outputs\.(\w+) \}\}", expr).group(1)  # type: ignore[union-attr]
        assert var == name.removesuffix("_result").upper() + "_RESULTS"
        doc = _decode(outputs[name])
        assert doc["tests"] and doc["status"] in ("pass", "fail", "error")
    docs = [_decode(v) for v in outputs.values()]
    assert len(docs) == len(reporter_env) == _month2_tests()
    lost = [d for d in docs if d["status"] != "pass"]
    assert lost and all(d["status"] == "fail" for d in lost)  # wrong answers, no grader errors
    assert sum(d["max_score"] for d in docs) == 15
    total = sum(t["score"] for d in docs for t in d["tests"])
    assert total == 15 - sum(d["max_score"] for d in lost)  # all-or-nothing per runner
    assert f"**Score: {total} / 15**" in summary.read_text(encoding="utf-8")
    # a wrong notebook name is a real error: the step fails instead of reporting zero
    (tmp_path / "month2.ipynb").unlink()
    missing = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "month2.ipynb" in missing.stderr


def _unpack_bundle(tmp_path: Path, wheel: Path | None = None, assignment_name: str = "month2") -> Path:
    """The bundle of ``assignment_name`` (month 2) unpacked as Gradescope does. Without ``wheel`` it installs
    a pinned version (these tests never run setup.sh: run_autograder falls back to the mlgrade
    on PATH)."""
    from mlgrade import __version__
    from mlgrade.deliver import with_extras

    zip_path = tmp_path / "autograder.zip"
    how = ["--wheel", str(wheel)] if wheel else ["--install", f"mlgrade=={__version__}"]
    result = runner.invoke(app, ["gradescope", "bundle", assignment_name, "-o", str(zip_path), *how])
    assert result.exit_code == 0, result.stderr
    root = tmp_path / "autograder"
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        assert {"setup.sh", "run_autograder"} <= set(names)
        for info in zf.infolist():
            mode = info.external_attr >> 16
            if info.filename in ("setup.sh", "run_autograder"):
                assert mode & stat.S_IXUSR, f"{info.filename} must be executable"
        zf.extractall(root / "source")
    for name in ("setup.sh", "run_autograder"):
        (root / "source" / name).chmod(0o755)
        assert subprocess.run(["bash", "-n", str(root / "source" / name)]).returncode == 0
    setup = (root / "source" / "setup.sh").read_text()
    assert "--break-system-packages" not in setup and '-m venv "$VENV"' in setup
    if wheel is not None:  # the zip carries the wheel; only dependencies come from the index
        assert wheel.name in names and f'"$HERE/{wheel.name}"' in setup
    else:
        extra = get_assignment(default_assignments_dir(), assignment_name).extra
        spec = with_extras(f"mlgrade=={__version__}", [extra] if extra else [])
        assert f"-m pip install {shlex.quote(spec)}" in setup
    (root / "submission").mkdir()
    return root


def _run_autograder(root: Path) -> dict[str, Any]:
    results = root / "results" / "results.json"
    results.unlink(missing_ok=True)
    done = subprocess.run([str(root / "source" / "run_autograder")], cwd=root / "source",
                          env=_env(MLGRADE_AUTOGRADER_ROOT=str(root)), capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return json.loads(results.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.mark.kernel
def test_gradescope_bundle_grades_a_submission_in_a_mimicked_root(tmp_path: Path) -> None:
    root = _unpack_bundle(tmp_path)
    # a learner uploads a folder; the notebook has a different name
    (root / "submission" / "work").mkdir()
    shutil.copyfile(ONE_WRONG, root / "submission" / "work" / "my answers.ipynb")
    doc = _run_autograder(root)
    assert doc["max_score"] == 15 and len(doc["tests"]) == _month2_tests()
    failed = [t for t in doc["tests"] if t["status"] == "failed"]
    assert failed and all(t["score"] == 0 and t["output"] for t in failed)
    assert doc["score"] == 15 - sum(t["max_score"] for t in failed)
    assert all(t["visibility"] == "visible" for t in doc["tests"])


def test_gradescope_bundle_always_leaves_results(tmp_path: Path) -> None:
    root = _unpack_bundle(tmp_path)
    doc = _run_autograder(root)  # nothing submitted
    assert doc["score"] == 0 and doc["tests"] == [] and "No notebook" in doc["output"]
    (root / "submission" / "month2.ipynb").write_text("not a notebook", encoding="utf-8")
    doc = _run_autograder(root)  # mlgrade refuses the file (exit 2): the learner is told why
    assert doc["score"] == 0 and "could not be graded" in doc["output"]
    assert "month2.ipynb" in doc["output"]


def test_gradescope_bundle_rejects_a_non_zip_name(tmp_path: Path) -> None:
    result = runner.invoke(app, ["gradescope", "bundle", "month2", "-o", str(tmp_path / "x.tar")])
    assert result.exit_code == 2 and ".zip" in result.stderr


# -- the real install paths, from the built wheel (slow tier) -----------------------------------
def _run_steps(steps: list[dict[str, Any]], cwd: Path, env: dict[str, str]) -> None:
    """Every ``run:`` step in order, as Actions runs them (``bash -e``), with each step's own
    ``env:`` (``${{ secrets.X }}`` of an unset secret is the empty string)."""
    for step in steps:
        if "run" not in step:
            continue
        step_env = {k: re.sub(r"\$\{\{ secrets\.\w+ \}\}", "", str(v)) for k, v in step.get("env", {}).items()}
        done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=cwd, env={**env, **step_env},
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"step {step['name']!r} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"


@pytest.mark.xdist_group("dist")  # one wheel build and venv per run, not per worker
@pytest.mark.slow
@pytest.mark.kernel
def test_classroom_template_steps_run_green(built_dist: tuple[Path, Path], wheel_venv: Path,
                                            tmp_path: Path) -> None:
    """`classroom init month3`, pushed with a finished notebook: every step of its workflow runs
    in a fresh venv and the reporter's variables hold full marks."""
    from tests.conftest import SOLUTIONS
    from tests.install_support import clean_env

    template = tmp_path / "template"
    result = runner.invoke(app, ["classroom", "init", "month3", str(template), "--wheel", str(built_dist[0])])
    assert result.exit_code == 0, result.stderr
    wheel = template / ".github" / "mlgrade" / built_dist[0].name
    readme = (template / "README.md").read_text(encoding="utf-8")
    assert wheel.is_file() and (template / "month3.ipynb").read_bytes() == get_assignment(
        default_assignments_dir(), "month3").starter.read_bytes()
    assert "mlgrade check month3 month3.ipynb" in readme and "git push" in readme
    assert "MLGRADE_SEED" in readme and "gh secret set MLGRADE_SEED" in readme
    assert f'pip install ".github/mlgrade/{wheel.name}[jupyter]"' in readme
    again = runner.invoke(app, ["classroom", "init", "month3", str(template)])
    assert again.exit_code == 2 and "not an empty folder" in again.stderr

    checkout = tmp_path / "checkout"  # what actions/checkout leaves: the learner's pushed repository
    shutil.copytree(template, checkout)
    shutil.copyfile(SOLUTIONS / "month3.ipynb", checkout / "month3.ipynb")
    wf = yaml.safe_load((checkout / ".github" / "workflows" / "classroom.yml").read_text(encoding="utf-8"))
    steps = wf["jobs"]["run-autograding-tests"]["steps"]
    assert [s["uses"] for s in steps if "uses" in s] == [
        "actions/checkout@v5", "actions/setup-python@v6", "classroom-resources/autograding-grading-reporter@v1"]
    out, summary = tmp_path / "github_output", tmp_path / "summary.md"
    # actions/setup-python puts its interpreter first on PATH: here, the fresh venv's
    env = clean_env(PATH=f"{wheel_venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
                    GITHUB_OUTPUT=str(out), GITHUB_STEP_SUMMARY=str(summary))
    _run_steps(steps, checkout, env)
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    reporter = steps[-1]
    ids = reporter["with"]["runners"].split(",")
    assert len(ids) == len(reporter["env"]) == len(outputs) == 13
    docs = []
    for runner_id in ids:
        expr = reporter["env"][f"{runner_id.upper()}_RESULTS"]
        name = re.fullmatch(r"\$\{\{ steps\.grade\.outputs\.(\w+) \}\}", expr).group(1)  # type: ignore[union-attr]
        docs.append(_decode(outputs[name]))
    assert all(d["status"] == "pass" and isinstance(d["max_score"], int) for d in docs), docs
    assert sum(t["score"] for d in docs for t in d["tests"]) == 16
    assert "**Score: 16 / 16**" in summary.read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.kernel
@requires(PYTHON310)  # Gradescope's Ubuntu 22.04 image has 3.10: pyenv's or actions/setup-python's
@pytest.mark.xdist_group("dist")  # one wheel build and venv per run, not per worker
def test_gradescope_bundle_installs_and_grades_on_python310_externally_managed(
        built_dist: tuple[Path, Path], tmp_path: Path) -> None:
    """setup.sh and run_autograder from the zip, under a Python 3.10 marked externally managed
    (PEP 668, as Ubuntu 24.04 marks its Python): a venv, never --break-system-packages."""
    from tests.conftest import SOLUTIONS
    from tests.install_support import clean_env, externally_managed_copy

    py310 = python310()
    assert py310 is not None
    python = externally_managed_copy(py310, tmp_path / "system-python")
    refused = subprocess.run([str(python), "-m", "pip", "install", "--dry-run", "--no-index", "six"],
                             capture_output=True, text=True, timeout=120, env=clean_env())
    assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr  # PEP 668 is on

    root = _unpack_bundle(tmp_path, built_dist[0])
    # PIP_NO_COMPILE: no byte-compiling of SciPy and friends, which would take most of the install
    env = clean_env(MLGRADE_AUTOGRADER_ROOT=str(root), MLGRADE_SETUP_PYTHON=str(python), PIP_NO_COMPILE="1")
    setup = subprocess.run(["bash", str(root / "source" / "setup.sh")], cwd=root / "source", env=env,
                           capture_output=True, text=True, timeout=1500)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-3000:]
    venv_python = root / "mlgrade-venv" / "bin" / "python"
    version = subprocess.run([str(venv_python), "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True, check=True, timeout=60)
    assert version.stdout.strip() == "(3, 10)"
    shutil.copyfile(SOLUTIONS / "month2.ipynb", root / "submission" / "month2.ipynb")
    # the copied interpreter loads libpython from pyenv's prefix, which the namespaced box does
    # not show; Gradescope's containers have no bubblewrap either: the process tier grades
    done = subprocess.run([str(root / "source" / "run_autograder")], cwd=root / "source",
                          env={**env, "MLGRADE_ISOLATION": "process"}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))
    assert (doc["score"], len(doc["tests"])) == (15, _month2_tests()), doc.get("output")


def test_install_specs_get_the_months_extra_and_the_cpu_torch_index() -> None:
    from mlgrade.deliver import install_command, with_extras

    assert with_extras(".github/mlgrade/m.whl", ["deep"]) == ".github/mlgrade/m.whl[deep]"
    assert with_extras("mlgrade==0.2.0", ["boosting"]) == "mlgrade[boosting]==0.2.0"
    assert with_extras("mlgrade @ git+https://x/y@v1", ["serving"]) == "mlgrade[serving] @ git+https://x/y@v1"
    assert with_extras("git+https://x/y@v1", ["serving"]) == "mlgrade[serving] @ git+https://x/y@v1"
    assert with_extras("mlgrade[all]", ["deep"]) == "mlgrade[all]" and with_extras("m.whl", []) == "m.whl"
    root = default_assignments_dir()
    month5, month2 = get_assignment(root, "month5"), get_assignment(root, "month2")
    assert install_command("w.whl", None, month5) == (
        "python -m pip install --extra-index-url https://download.pytorch.org/whl/cpu 'w.whl[deep]'")
    assert install_command("w.whl", "c.txt", month2) == "python -m pip install -c c.txt w.whl"
