"""The platform files of a repository assignment (the capstone): what differs from a notebook's.

:func:`mlgrade.deliver.classroom_template` writes the GitHub Classroom template repository: for a
repository assignment that is the starter repository (as ``mlgrade start`` writes it, the
learner's own ``.github/workflows/ci.yml`` included) with the autograding workflow beside it
(``.github/workflows/classroom.yml``, grading the checkout itself) and a section on grading
appended to the starter's README (:func:`learner_readme`). The graders judge the learner's own
files only: they read ``ci.yml`` by name, never ``classroom.yml``, and the wheel under
``.github/mlgrade/`` is one small file that no grader looks at.

:data:`FIND_REPOSITORY` is the part of Gradescope's ``run_autograder`` that finds the repository
among the submitted files.
"""

from __future__ import annotations

from pathlib import Path

from mlgrade.assignments import Assignment
from mlgrade.fsutil import write_text_atomic


def copy_starter(assignment: Assignment, dest: Path) -> list[Path]:
    """The starter repository copied into the empty ``dest``; the files written."""
    from mlgrade.repo.start import start_repository

    start_repository(assignment, dest)
    return sorted(p for p in dest.rglob("*") if p.is_file())


# appended to the starter's README.md: the required sections keep their names and stay first
_GRADING_SECTION = """

## Grading (GitHub Classroom)

<!-- Added by `mlgrade classroom init {name}`: this section is not graded; keep or delete it. -->

Every push to this repository is graded automatically ({points:g} points); your points appear in
GitHub Classroom and under the **Actions** tab ("Autograding Tests", with a report for each
run). `.github/workflows/classroom.yml` is the grader's workflow: leave it as it is.
`.github/workflows/ci.yml` is yours, part of the assignment.

Check your repository locally before you push:

```bash
python3 -m venv .venv
. .venv/bin/activate            # Windows: .venv\\Scripts\\activate
pip install "{install}"
mlgrade check {name} .
```

You get a score and a hint for each test. The graders run your tests, your training script and
your API in a sandbox and use inputs you do not see, so a number in the README must be one your
script measured. Then hand it in:

```bash
git add -A
git commit -m "my capstone"
git push
```

Push as often as you like; the last run counts.

### For the teacher

{teacher}"""


def learner_readme(assignment: Assignment, dest: Path, *, install: str, points: float,
                   teacher: str) -> list[Path]:
    """Append the grading section to the starter's ``README.md`` in ``dest`` (``install``: the
    pip requirement of mlgrade with the assignment's extra; ``teacher``: the lead's paragraph)
    and keep ``.venv/`` out of commits; the files written."""
    readme = dest / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else f"# {assignment.title}\n"
    section = _GRADING_SECTION.format(name=assignment.name, points=points, install=install,
                                      teacher=teacher)
    write_text_atomic(readme, text.rstrip("\n") + "\n" + section)
    ignore = dest / ".gitignore"
    kept = ignore.read_text(encoding="utf-8") if ignore.is_file() else ""
    if ".venv/" not in kept.split():
        write_text_atomic(ignore, kept + ("" if kept.endswith("\n") or not kept else "\n")
                          + ".venv/\n")
    return [readme, ignore]


# Gradescope: what run_autograder grades. The submission's files land in submission/ (uploaded
# files, an uploaded .zip unpacked, or a linked GitHub repository); a .zip of the repository's
# folder leaves that one folder there (with macOS's __MACOSX beside it): grade inside it.
# Written for str.format, like the script it goes into.
FIND_REPOSITORY = """\
repository="$ROOT/submission"
while :; do
  mapfile -t entries < <(find "$repository" -mindepth 1 -maxdepth 1 \\
    -not -name __MACOSX -not -name .DS_Store | sort)
  if [ "${{#entries[@]}}" -eq 1 ] && [ -d "${{entries[0]}}" ] && [ ! -L "${{entries[0]}}" ]; then
    repository="${{entries[0]}}"
  else
    break
  fi
done
if [ "${{#entries[@]}}" -eq 1 ] && [ "${{entries[0]##*.}}" = zip ]; then
  repository="${{entries[0]}}"  # a .zip left as it is: mlgrade reads it
fi
if [ "${{#entries[@]}}" -eq 0 ]; then
  fail "No repository to grade: upload your repository's files (or a .zip of it), or link \\
its GitHub repository."
fi
"""
SUBMIT_REPOSITORY = ("submit their repository (its files, a .zip of it, or a link to its "
                     "GitHub repository)")

__all__ = ["FIND_REPOSITORY", "SUBMIT_REPOSITORY", "copy_starter", "learner_readme"]
