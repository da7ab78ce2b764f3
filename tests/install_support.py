"""Building mlgrade's wheel and installing it into fresh virtual environments, once per session.

The install tests are the slow tier's "works out in the world" checks: the wheel is built with
``python -m build`` from this checkout, installed into a fresh ``python -m venv`` without the
constraints file and without the deep-learning extra (no torch), and used from there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT_S = 1200  # the first run downloads the dependencies from the package index


def build_dist(out: Path) -> tuple[Path, Path]:
    """``python -m build`` of the checkout: (wheel, sdist)."""
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = out.glob("mlgrade-*.whl")
    (sdist,) = out.glob("mlgrade-*.tar.gz")
    return wheel, sdist


def base_python() -> str:
    """The interpreter under the test environment's venv (a venv of a venv is not fresh)."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(base) if base.exists() else sys.executable


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a new shell: no variables of this venv or of mlgrade's settings."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "GITHUB_", "MLGRADE_", "PIP_CONSTRAINT")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    env.update(extra)
    return env


def fresh_venv(python: str, where: Path, wheel: Path) -> Path:
    """A new venv at ``where`` with ``wheel`` installed (plain pip: no constraints file)."""
    if where.exists():
        shutil.rmtree(where)
    subprocess.run([python, "-m", "venv", str(where)], check=True, timeout=300)
    # --no-compile: byte-compiling SciPy, pandas and scikit-learn would take most of the install
    done = subprocess.run([str(where / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile",
                           str(wheel)],
                          capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, env=clean_env())
    assert done.returncode == 0, done.stderr[-3000:]
    return where


def externally_managed_copy(python: Path, dest: Path) -> Path:
    """A copy of the installation of ``python`` whose standard library folder holds an
    ``EXTERNALLY-MANAGED`` file (PEP 668), as Ubuntu 24.04 marks its system Python. The copy's
    binary still loads ``libpython`` from the original prefix (its RUNPATH)."""
    prefix = python.parent.parent
    shutil.copytree(prefix, dest, symlinks=True)
    version = f"python{python.name.removeprefix('python')}"
    (dest / "lib" / version / "EXTERNALLY-MANAGED").write_text(
        "[externally-managed]\nError=This Python is managed by the system (mlgrade test).\n",
        encoding="utf-8")
    return dest / "bin" / python.name
