"""The PrairieLearn example course (``examples/prairielearn``): every info file against
PrairieLearn's own JSON schemas (vendored in ``tests/platforms/prairielearn-schemas``), the
cross-references PrairieLearn checks when it syncs a course, and the grader entrypoint run for
real in a temporary folder laid out as PrairieLearn lays out ``/grade``."""

from __future__ import annotations

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

import jsonschema
import pytest
from tests.conftest import REPO, SOLUTIONS

from mlgrade.assignments import default_assignments_dir, get_assignment
from mlgrade.own_wheel import wheel_name

EXAMPLE = REPO / "examples" / "prairielearn"
SCHEMAS = Path(__file__).parent / "platforms" / "prairielearn-schemas"
GRADER = EXAMPLE / "serverFilesCourse" / "mlgrade"
QUESTION = EXAMPLE / "questions" / "mlgrade-month3"
CAPSTONE = EXAMPLE / "questions" / "mlgrade-capstone"  # a repository, uploaded as a .zip
# question -> (assignment, the upload's name): what grade.py reads from the question's environment
GRADED = {QUESTION: ("month3", "month3.ipynb"), CAPSTONE: ("capstone", "capstone.zip")}
BIN = str(Path(sys.executable).parent)  # `python3` (with mlgrade) of this checkout's venv


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _schema_for(path: Path) -> str:
    """Which PrairieLearn schema a file of the course is read with, from where it lies."""
    rel = path.relative_to(EXAMPLE)
    if rel == Path("infoCourse.json"):
        return "infoCourse"
    if rel.parts[0] == "courseInstances" and rel.name == "infoCourseInstance.json":
        return "infoCourseInstance"
    if rel.parts[0] == "courseInstances" and rel.name == "infoAssessment.json":
        return "infoAssessment"
    if rel.parts[0] == "questions" and rel.name == "info.json":
        return "infoQuestion"
    raise AssertionError(f"{rel}: a JSON file PrairieLearn would not read as an info file")


INFO_FILES = sorted(EXAMPLE.rglob("*.json"))


def _validator(name: str) -> jsonschema.Draft7Validator:
    schema = _load(SCHEMAS / f"{name}.json")
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("path", INFO_FILES, ids=lambda p: str(p.relative_to(EXAMPLE)))
def test_info_file_is_valid_against_prairielearns_schema(path: Path) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
              for e in _validator(_schema_for(path)).iter_errors(_load(path))]
    assert errors == []


def test_the_course_has_every_kind_of_info_file() -> None:
    kinds = {_schema_for(p) for p in INFO_FILES}
    assert kinds == {"infoCourse", "infoCourseInstance", "infoAssessment", "infoQuestion"}


def test_the_question_schema_rejects_what_prairielearn_rejects() -> None:
    """The vendored schema is strict where it matters: a misspelt option or no image fails."""
    info = _load(QUESTION / "info.json")
    validator = _validator("infoQuestion")
    misspelt = json.loads(json.dumps(info))
    misspelt["externalGradingOptions"]["timeout_s"] = 600
    no_image = json.loads(json.dumps(info))
    del no_image["externalGradingOptions"]["image"]
    bad_uuid = {**info, "uuid": "not-a-uuid"}
    for doc in (misspelt, no_image, bad_uuid):
        assert list(validator.iter_errors(doc)), doc


def test_cross_references_resolve_as_prairielearn_syncs_them() -> None:
    course = _load(EXAMPLE / "infoCourse.json")
    topics = {t["name"] for t in course["topics"]}
    tags = {t["name"] for t in course.get("tags", [])}
    sets = {s["name"] for s in course.get("assessmentSets", [])}
    questions = {p.parent.relative_to(EXAMPLE / "questions").as_posix(): _load(p)
                 for p in (EXAMPLE / "questions").rglob("info.json")}
    uuids = [d["uuid"] for d in questions.values()]
    for q in questions.values():
        assert q["topic"] in topics and set(q.get("tags", [])) <= tags
    instances = sorted((EXAMPLE / "courseInstances").glob("*/infoCourseInstance.json"))
    assert instances
    for inst in instances:
        uuids.append(_load(inst)["uuid"])
        assessments = sorted((inst.parent / "assessments").rglob("infoAssessment.json"))
        assert assessments
        for path in assessments:
            assessment = _load(path)
            uuids.append(assessment["uuid"])
            assert assessment["set"] in sets
            ids = [q["id"] for zone in assessment["zones"] for q in zone["questions"]]
            assert ids and set(ids) <= set(questions), ids
    assert len(uuids) == len(set(uuids)), "PrairieLearn needs a unique UUID per info file"


@pytest.mark.parametrize("question", list(GRADED), ids=lambda q: q.name)
def test_the_question_is_graded_externally_by_the_entrypoint_without_network(question: Path) -> None:
    info = _load(question / "info.json")
    options = info["externalGradingOptions"]
    assert info["type"] == "v3" and info["gradingMethod"] == "External"
    assert options["enableNetworking"] is False
    assert 0 < options["timeout"] <= 600  # PrairieLearn's maximum
    # PrairieLearn copies each serverFilesCourse entry to /grade/serverFilesCourse/<entry>
    for entry in options["serverFilesCourse"]:
        assert (EXAMPLE / "serverFilesCourse" / entry).exists(), entry
    entrypoint = shlex.split(options["entrypoint"])[0]
    copied = {f"/grade/serverFilesCourse/{e}" for e in options["serverFilesCourse"]}
    assert entrypoint in copied
    assert (EXAMPLE / "serverFilesCourse" / entrypoint.removeprefix("/grade/serverFilesCourse/")
            ).read_text(encoding="utf-8").startswith("#!/usr/bin/env python3\n")
    # the entrypoint stops mlgrade before PrairieLearn's timeout kills the container
    deadline = re.search(r"^DEFAULT_DEADLINE_S = ([0-9.]+)$",
                         (GRADER / "grade.py").read_text(encoding="utf-8"), re.M)
    assert deadline and float(deadline.group(1)) < options["timeout"]
    # the learner uploads exactly the file the entrypoint grades, for the assignment it names
    assignment, upload = GRADED[question]
    environment = options.get("environment", {})
    assert environment.get("MLGRADE_PL_UPLOAD", "month3.ipynb") == upload
    assert environment.get("MLGRADE_PL_ASSIGNMENT", "month3") == assignment
    html = (question / "question.html").read_text(encoding="utf-8")
    assert re.findall(r'<pl-file-upload file-names="([^"]*)"', html) == [upload]
    assert "<pl-external-grader-results>" in html
    assert f"mlgrade check {assignment}" in html


@pytest.mark.parametrize("question", list(GRADED), ids=lambda q: q.name)
def test_the_assessment_awards_the_assignments_points(question: Path) -> None:
    assignment = GRADED[question][0]
    total = get_assignment(default_assignments_dir(), assignment).total_points
    assessment = _load(EXAMPLE / "courseInstances" / "Example" / "assessments" / assignment
                       / "infoAssessment.json")
    (entry,) = [q for zone in assessment["zones"] for q in zone["questions"]]
    assert entry["id"] == question.name and entry["autoPoints"] == total == 16


def _dockerfile_env() -> dict[str, str]:
    """The grading settings the Dockerfile's ENV instructions give the image."""
    text = (GRADER / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for item in shlex.split(line[4:], comments=True):
                key, _, value = item.partition("=")
                if key.startswith("MLGRADE_") or key.endswith("_NUM_THREADS"):
                    env[key] = value
    return env


def test_the_image_installs_this_version_from_a_pinned_base_with_cpu_torch() -> None:
    dockerfile = (GRADER / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.\d+\.\d+-slim-\w+$", dockerfile, re.M)
    assert f"ARG MLGRADE_WHEEL={wheel_name()}\n" in dockerfile
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in dockerfile
    assert "-c /tmp/mlgrade-install/constraints.txt" in dockerfile
    assert (GRADER / "constraints.txt").read_text() == (REPO / "constraints.txt").read_text()
    env = _dockerfile_env()
    assert env["MLGRADE_ISOLATION"] == "process" and int(env["MLGRADE_MEMORY_MB"]) < 2048
    assert "useradd --system --uid " + env["MLGRADE_UID_BASE"] in dockerfile


# -- the entrypoint, run for real ---------------------------------------------------------------
def _grade_root(tmp_path: Path, upload: Path | bytes | None, question: Path = QUESTION) -> Path:
    """A folder laid out as PrairieLearn's grading job (``/grade``): serverFilesCourse with the
    question's entries, tests, student (the upload under the question's name), data; no results
    folder (the entrypoint makes it)."""
    name = GRADED[question][1]
    root = tmp_path / "grade"
    for sub in ("serverFilesCourse", "tests", "student", "data"):
        (root / sub).mkdir(parents=True)
    for entry in _load(question / "info.json")["externalGradingOptions"]["serverFilesCourse"]:
        src, dest = EXAMPLE / "serverFilesCourse" / entry, root / "serverFilesCourse" / entry
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dest) if src.is_dir() else shutil.copyfile(src, dest)
    (root / "data" / "data.json").write_text("{}", encoding="utf-8")
    if isinstance(upload, Path):
        shutil.copyfile(upload, root / "student" / name)
    elif upload is not None:
        (root / "student" / name).write_bytes(upload)
    return root


def _offline() -> list[str]:
    """As root (this project's machines), run the entrypoint in a network namespace of its own
    with only loopback up, as PrairieLearn's container with ``enableNetworking: false`` is;
    elsewhere (CI runs as a normal user) it runs with the machine's network."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("ip")):
        return []
    return ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "offline"]


def _run_entrypoint(root: Path, question: Path = QUESTION, **extra: str) -> dict[str, Any]:
    entrypoint = root / "serverFilesCourse" / "mlgrade" / "grade.py"
    entrypoint.chmod(entrypoint.stat().st_mode | stat.S_IXUSR)  # as PrairieLearn does
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLGRADE_", "GITHUB_"))}
    env.update(_dockerfile_env())
    # the image's environment, then the question's (externalGradingOptions.environment)
    env.update(_load(question / "info.json")["externalGradingOptions"].get("environment", {}))
    if os.environ.get("MLGRADE_UID_BASE"):  # a developer's own sandbox uids (parallel sessions)
        env["MLGRADE_UID_BASE"] = os.environ["MLGRADE_UID_BASE"]
    env.update(PATH=BIN + os.pathsep + env.get("PATH", ""), MLGRADE_GRADE_ROOT=str(root), **extra)
    done = subprocess.run([*_offline(), str(entrypoint)], cwd=root.parent, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr  # any other status: PrairieLearn shows no feedback
    doc: dict[str, Any] = _load(root / "results" / "results.json")
    assert isinstance(doc["gradable"], bool) and isinstance(doc["message"], str)
    return doc


@pytest.mark.kernel
def test_entrypoint_grades_the_reference_solution_with_full_marks(tmp_path: Path) -> None:
    doc = _run_entrypoint(_grade_root(tmp_path, SOLUTIONS / "month3.ipynb"))
    assert doc["gradable"] is True and doc["score"] == 1.0
    tests = doc["tests"]
    assert tests and all(t["points"] == t["max_points"] > 0 for t in tests)
    assert sum(t["max_points"] for t in tests) == 16
    assert all(t["name"] and t["message"] for t in tests)


@pytest.mark.kernel
def test_entrypoint_stops_mlgrade_at_its_deadline(tmp_path: Path) -> None:
    notebook = tmp_path / "sleeps.ipynb"
    notebook.write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "id": "sleep", "metadata": {},
                   "outputs": [], "source": "import time\ntime.sleep(3600)"}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
    doc = _run_entrypoint(_grade_root(tmp_path, notebook), MLGRADE_GRADE_DEADLINE="20")
    assert doc["gradable"] is False and doc["tests"] == []
    assert doc["message"].startswith("Grading did not finish within 20 seconds.")


def test_entrypoint_reports_a_broken_upload_as_not_gradable(tmp_path: Path) -> None:
    doc = _run_entrypoint(_grade_root(tmp_path, b"print('this is not a notebook')\n"))
    assert doc["gradable"] is False and doc["tests"] == []
    assert doc["message"].startswith("Your file could not be graded: ")
    assert doc["message"].startswith("Your file could not be graded: month3.ipynb is not a notebook")
    assert doc["format_errors"] == [doc["message"]]


def test_entrypoint_reports_a_missing_upload_as_not_gradable(tmp_path: Path) -> None:
    doc = _run_entrypoint(_grade_root(tmp_path, None))
    assert doc["gradable"] is False
    assert doc["message"] == "No month3.ipynb was submitted: upload your notebook under that name."


@pytest.mark.kernel
@pytest.mark.slow
def test_entrypoint_grades_the_reference_repository_zip_with_full_marks(tmp_path: Path) -> None:
    """The capstone question: the reference repository uploaded as GitHub's "Download ZIP"
    (one top folder) earns 1.0, graded in the image's settings (process tier, 1536 MiB)."""
    archive = tmp_path / "capstone.zip"
    reference = SOLUTIONS / "capstone"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(reference.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, f"churn-api-main/{path.relative_to(reference).as_posix()}")
    doc = _run_entrypoint(_grade_root(tmp_path, archive, CAPSTONE), CAPSTONE)
    assert doc["gradable"] is True and doc["score"] == 1.0, doc["message"]
    assert len(doc["tests"]) == 13 and sum(t["max_points"] for t in doc["tests"]) == 16


def test_entrypoint_reports_a_missing_or_broken_repository_as_not_gradable(tmp_path: Path) -> None:
    doc = _run_entrypoint(_grade_root(tmp_path / "missing", None, CAPSTONE), CAPSTONE)
    assert doc["gradable"] is False
    assert doc["message"] == "No capstone.zip was submitted: upload a .zip of your repository under that name."
    doc = _run_entrypoint(_grade_root(tmp_path / "broken", b"not a zip", CAPSTONE), CAPSTONE)
    assert doc["gradable"] is False and doc["tests"] == []
    assert doc["message"].startswith("Your file could not be graded: ") and "zip" in doc["message"]
