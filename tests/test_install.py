"""Installs like a normal package: a light core with named extras, months refused with the
install command when their packages are missing, ``mlgrade doctor``, the built wheel in a fresh
venv, and files for people created with the usual permissions."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from tests.conftest import SOLUTIONS
from tests.install_support import clean_env
from typer.testing import CliRunner

from mlgrade._compat import tomllib
from mlgrade.assignments import default_assignments_dir, get_assignment, install_hint, missing_modules
from mlgrade.cli import app
from mlgrade.errors import ExitCode
from mlgrade.fsutil import people_mode, write_text_atomic

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


# -- the dependency layout -------------------------------------------------------------------
def _names(requirements: list[str]) -> set[str]:
    import re

    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_core_is_light_and_extras_are_named_for_what_they_bring() -> None:
    project = PYPROJECT["project"]
    core = _names(project["dependencies"])
    assert not core & {"torch", "lightgbm", "xgboost-cpu", "fastapi", "mlflow-skinny", "jupyterlab"}
    assert {"numpy", "pandas", "scikit-learn", "matplotlib", "ipykernel", "nbclient"} <= core
    extras = project["optional-dependencies"]
    assert _names(extras["boosting"]) == {"lightgbm", "xgboost-cpu"}
    assert _names(extras["deep"]) == {"torch"}
    assert {"fastapi", "httpx", "pydantic", "mlflow-skinny", "uvicorn"} <= _names(extras["serving"])
    assert _names(extras["jupyter"]) == {"jupyterlab"}
    assert extras["all"] == ["mlgrade[boosting,deep,serving,jupyter]"]
    assert any(r.startswith("mlgrade[") and "deep" in r for r in extras["dev"])  # the suite runs every month
    assert project["requires-python"] == ">=3.10" and 'python_version < \'3.11\'' in " ".join(
        project["dependencies"])
    # every month declares its extra, and the extra exists
    root = default_assignments_dir()
    for name, extra in (("month4", "boosting"), ("month5", "deep"), ("month6", "serving")):
        a = get_assignment(root, name)
        assert a.extra == extra and a.requires
    assert all(not get_assignment(root, f"month{m}").requires for m in (1, 2, 3))


def _assignment_needing(tmp_path: Path, requires: str, extra: str = "deep") -> Path:
    """A copy of month2 (assignment folder + graders) that also requires ``requires``."""
    import shutil

    root = tmp_path / "assignments"
    shutil.copytree(default_assignments_dir() / "month2", root / "month2")
    shutil.copytree(default_assignments_dir().parent / "graders" / "month2", tmp_path / "graders" / "month2")
    meta = root / "month2" / "assignment.toml"
    text = meta.read_text(encoding="utf-8").replace(
        'starter = "month2.ipynb"', f'starter = "month2.ipynb"\nrequires = ["{requires}"]\nextra = "{extra}"')
    meta.write_text(text, encoding="utf-8")
    return root


def test_a_month_with_missing_packages_is_refused_before_any_cell(tmp_path: Path) -> None:
    root = _assignment_needing(tmp_path, "torch_not_installed_anywhere")
    sentinel = tmp_path / "cell-ran"
    nb = json.loads((SOLUTIONS / "month2.ipynb").read_text(encoding="utf-8"))
    nb["cells"].insert(0, {"cell_type": "code", "id": "sentinel", "metadata": {}, "outputs": [],
                           "execution_count": None, "source": f"open({str(sentinel)!r}, 'w').close()"})
    path = tmp_path / "month2.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    result = runner.invoke(app, ["--assignments", str(root), "check", "month2", str(path)])
    assert result.exit_code == ExitCode.ENVIRONMENT == 3, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "torch_not_installed_anywhere" in line
    assert 'pip install "mlgrade[deep]"' in line and "nothing was run" in line
    assert not sentinel.exists()


def test_start_says_what_the_month_still_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _assignment_needing(tmp_path, "torch_not_installed_anywhere")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["--assignments", str(root), "start", "month2"])
    assert result.exit_code == 0, result.stderr
    (note,) = [ln for ln in result.stderr.splitlines() if ln.startswith("note:")]
    assert note.startswith("note: month2 needs torch_not_installed_anywhere, not installed yet: "
                           'pip install "mlgrade[deep]"')
    plain = runner.invoke(app, ["start", "month2", "--dest", str(tmp_path / "m2.ipynb")])
    assert plain.exit_code == 0 and "note:" not in plain.stderr


def test_install_hint_writes_out_the_cpu_torch_index() -> None:
    a = get_assignment(default_assignments_dir(), "month5")
    # no NVIDIA GPU (this machine, CI): the CPU-only build is THE command, not an aside
    hint = install_hint(a, gpu=False)
    assert hint.startswith('pip install "mlgrade[deep]" --extra-index-url '
                           'https://download.pytorch.org/whl/cpu (the CPU-only torch')
    assert install_hint(a) == hint  # detected: this machine has no NVIDIA driver
    with_gpu = install_hint(a, gpu=True)
    assert with_gpu.startswith('pip install "mlgrade[deep]" (or the CPU-only torch')
    other = install_hint(a, "/opt/course/bin/python", gpu=False)
    assert other.startswith('/opt/course/bin/python -m pip install "mlgrade[deep]" --extra-index-url')
    assert install_hint(get_assignment(default_assignments_dir(), "month4")) == 'pip install "mlgrade[boosting]"'


def test_missing_modules_asks_the_interpreter_without_importing() -> None:
    assert missing_modules(("json", "no_such_module_xyz"), sys.executable) == ("no_such_module_xyz",)
    assert missing_modules(("json",), "/nonexistent/python") == ("json",)  # cannot answer: missing
    probe = subprocess.run([sys.executable, "-c", "import sys\nfrom mlgrade.assignments import missing_modules\n"
                            f"missing_modules(('torch',), {sys.executable!r})\nprint('torch' in sys.modules)"],
                           capture_output=True, text=True, timeout=60, check=True)
    assert probe.stdout.strip() == "False"


def test_doctor_shows_each_month_the_sandbox_and_the_gpu() -> None:
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}" in out and "mlgrade " in out
    assert "isolation for `check`:" in out and "kernel memory limit:" in out
    assert "GPU visible to the kernel's torch:" in out and "NVIDIA devices:" in out
    for m in range(1, 7):
        assert f"month{m}" in out
    assert "no:" not in out  # the dev environment has every extra


def test_doctor_tells_what_to_install_for_a_missing_package(tmp_path: Path) -> None:
    root = _assignment_needing(tmp_path, "no_such_module_xyz", "serving")
    result = runner.invoke(app, ["--assignments", str(root), "doctor"], terminal_width=200)
    assert result.exit_code == 0, result.stderr
    assert "no: no_such_module_xyz missing" in result.stdout
    assert 'pip install "mlgrade[serving]"' in result.stdout


# -- files for people get the usual permissions ------------------------------------------------
def test_atomic_writes_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        assert people_mode() == 0o644
        write_text_atomic(tmp_path / "a.txt", "x")
        assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
        os.umask(0o027)
        write_text_atomic(tmp_path / "b.txt", "x")
        assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_start_and_output_files_are_not_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)
    try:
        assert runner.invoke(app, ["start", "month2"]).exit_code == 0
        assert runner.invoke(app, ["classroom", "workflow", "month2", "-o", "wf.yml"]).exit_code == 0
        for made in (tmp_path / "month2.ipynb", tmp_path / "wf.yml"):
            assert stat.S_IMODE(made.stat().st_mode) == 0o644, made
    finally:
        os.umask(old)


# -- the built distribution ----------------------------------------------------------------------
@pytest.mark.xdist_group("dist")  # one wheel build and venv per run, not per worker
@pytest.mark.slow
def test_sdist_and_wheel_pass_twine_and_carry_the_bundled_data(built_dist: tuple[Path, Path]) -> None:
    wheel, sdist = built_dist
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    data = "mlgrade-{}.data/data/share/mlgrade/".format(wheel.name.split("-")[1])
    for m in range(1, 7):
        assert f"{data}assignments/month{m}/assignment.toml" in names
        assert f"{data}graders/month{m}/test_month{m}.py" in names
    assert not any("solutions/" in n for n in names)  # reference solutions are never installed
    assert "Requires-Python: >=3.10" in meta and "License-File: LICENSE" in meta
    assert "Project-URL: Source" in meta and "Classifier: Programming Language :: Python :: 3.10" in meta
    assert "Provides-Extra: deep" in meta


@pytest.mark.xdist_group("dist")  # one wheel build and venv per run, not per worker
@pytest.mark.slow
def test_the_sdist_installs_and_finds_its_assignments_and_graders(built_dist: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    from tests.install_support import base_python

    venv = tmp_path / "venv"
    subprocess.run([base_python(), "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    done = subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", str(built_dist[1])],
                          capture_output=True, text=True, timeout=600, env=clean_env())
    assert done.returncode == 0, done.stderr[-3000:]
    found = subprocess.run([python, "-c", "from mlgrade.assignments import default_assignments_dir as d, "
                            "list_assignments as l; r = d(); print(r); print(*[a.name + ':' + str(a.graders.is_dir()) "
                            "for a in l(r)])"], capture_output=True, text=True, timeout=60, cwd=tmp_path, check=True)
    where, names = found.stdout.splitlines()
    assert where == str(venv / "share" / "mlgrade" / "assignments")
    assert sorted(names.split()) == ["capstone:True"] + [f"month{m}:True" for m in range(1, 7)]


@pytest.mark.xdist_group("dist")  # one wheel build and venv per run, not per worker
@pytest.mark.slow
@pytest.mark.kernel
def test_the_wheel_in_a_fresh_venv_checks_month2_without_torch(built_dist: tuple[Path, Path], wheel_venv: Path,
                                                                tmp_path: Path) -> None:
    python = wheel_venv / "bin" / "python"
    has_torch = subprocess.run([str(python), "-c", "import importlib.util as u; print(u.find_spec('torch'))"],
                               capture_output=True, text=True, check=True, timeout=60)
    assert has_torch.stdout.strip() == "None"  # the core install pulls no torch
    out = tmp_path / "result.json"
    done = subprocess.run([str(wheel_venv / "bin" / "mlgrade"), "check", "month2", str(SOLUTIONS / "month2.ipynb"),
                           "--format", "json", "--output", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=clean_env())
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert (doc["score"], doc["max_score"]) == (15, 15) and doc["device"] == "none"
    # the graders come from the installed share folder, not from this checkout
    where = subprocess.run([str(python), "-c", "from mlgrade.assignments import default_assignments_dir as d; "
                            "print(d())"], capture_output=True, text=True, check=True, timeout=60, cwd=tmp_path)
    assert where.stdout.strip().startswith(str(wheel_venv)) and "share/mlgrade" in where.stdout
    # an installed mlgrade (no checkout) ships itself by repacking its files into a wheel
    repack = subprocess.run([str(python), "-c", "import sys; from pathlib import Path; from mlgrade.own_wheel "
                             "import build_own_wheel; print(build_own_wheel(Path(sys.argv[1])))", str(tmp_path / "re")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert repack.returncode == 0, repack.stderr
    with zipfile.ZipFile(repack.stdout.strip()) as again, zipfile.ZipFile(built_dist[0]) as built:
        assert set(again.namelist()) == set(built.namelist())
    # month 5 needs the deep extra: refused with the command that installs it
    refused = subprocess.run([str(wheel_venv / "bin" / "mlgrade"), "check", "month5",
                              str(SOLUTIONS / "month5.ipynb")], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120, env=clean_env())
    assert refused.returncode == 3 and 'pip install "mlgrade[deep]"' in refused.stderr


def test_ci_runs_the_readme_commands_and_release_publishes_with_trusted_publishing() -> None:
    import re

    import yaml

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"```bash\n(.*?)\n```", readme.split("## Set-up: two commands", 1)[1], re.S)[:2]
    ci = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8"))
    (job,) = ci["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert all(c.strip() in runs for c in commands) and len(commands) == 2
    # the second tier, in CI as in .ci/run: every month's mutants and alternatives
    tier = ".venv/bin/python -m pytest -m mutation"
    assert tier in runs and tier in (REPO / ".ci" / "run").read_text() and tier in readme
    # the prerequisites .ci/run installs, installed the same way; a failed install stops CI
    assert ".ci/prerequisites" in runs and ".ci/prerequisites" in (REPO / ".ci" / "run").read_text()
    assert "|| true" not in runs and "3.10" in str(job["steps"])
    release = yaml.safe_load((REPO / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8"))
    assert release[True]["push"]["tags"] == ["v*"]  # YAML reads the key `on` as True
    publish = release["jobs"]["publish"]
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["steps"][-1]["uses"].startswith("pypa/gh-action-pypi-publish@")
    build_steps = "\n".join(s.get("run", "") for s in release["jobs"]["build"]["steps"])
    assert "python -m build" in build_steps and "twine check" in build_steps
