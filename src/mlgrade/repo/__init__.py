"""Repository assignments (``kind = "repository"`` in ``assignment.toml``): the capstone.

The learner hands in a whole repository (a folder, a git checkout or a ``.zip``) instead of a
notebook. The flow reuses every notebook stage::

    intake (copy into <job>/repo) -> kernel (sandbox, no cells) -> graders (pytest) -> score

- :mod:`mlgrade.repo.intake` copies the repository into the job folder, never writing the
  original, refusing what a repository must not smuggle in (links, devices, huge files);
- :mod:`mlgrade.repo.check` starts the same sandboxed kernel as a notebook gets, runs no learner
  code in it, and hands it to the hidden graders, which start the learner's processes (their
  tests, their training script, their app under uvicorn) as children of that kernel, inside
  the sandbox, and judge files and HTTP answers on the grader's side;
- :mod:`mlgrade.repo.mutants` reads the file-edit form of ``mutants.toml`` used to test
  repository graders.
"""

from __future__ import annotations

REPO_DIR = "repo"  # the repository's folder inside the job folder

__all__ = ["REPO_DIR"]
