"""A wheel of the running mlgrade, for platforms that must install it without a package index.

GitHub Classroom templates and Gradescope bundles carry this wheel, so the grading machine
installs exactly the mlgrade (and graders) the lead tried, from the repository or the zip;
only the dependencies come from the package index.

* From a source checkout (an editable install): ``pip wheel --no-deps`` of the checkout.
* From an installed mlgrade: the wheel is put back together from the files its ``RECORD``
  lists (the package, its metadata and the ``share/mlgrade`` data: assignments and graders).
"""

from __future__ import annotations

import atexit
import base64
import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from mlgrade import __version__
from mlgrade.errors import EnvironmentProblem, UsageError

BUILD_TIMEOUT_S = 600.0


def wheel_name() -> str:
    """The file name of this version's wheel (pure Python, any platform)."""
    return f"mlgrade-{__version__}-py3-none-any.whl"


def _checkout() -> Path | None:
    from mlgrade.assignments import _repo_root

    return _repo_root()


def build_own_wheel(dest_dir: Path, wheel: Path | None = None) -> Path:
    """Put a wheel of the running mlgrade into ``dest_dir`` and return its path.

    ``wheel`` is a wheel built earlier (``python -m build``) to copy instead; it must be this
    version's."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    if wheel is not None:
        if not wheel.is_file() or not wheel.name.startswith(f"mlgrade-{__version__}-"):
            raise UsageError(f"--wheel {wheel}: not a wheel of mlgrade {__version__}. Build one with "
                             "`python -m build` in the mlgrade checkout, or leave --wheel out.")
        target = dest_dir / wheel.name
        shutil.copyfile(wheel, target)
        return target
    cached = _built.get("wheel")
    if cached is None or not cached.is_file():  # once per process: a build takes seconds
        scratch = Path(tempfile.mkdtemp(prefix="mlgrade-own-wheel-"))
        atexit.register(shutil.rmtree, scratch, True)
        root = _checkout()
        cached = _wheel_from_checkout(root, scratch) if root is not None else _wheel_from_installed(scratch)
        _built["wheel"] = cached
    target = dest_dir / cached.name
    shutil.copyfile(cached, target)
    return target


_built: dict[str, Path] = {}


def _wheel_from_checkout(root: Path, dest_dir: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="mlgrade-wheel-") as tmp:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp, str(root)],
                capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise EnvironmentProblem(f"could not build the mlgrade wheel from {root} ({exc}).") from None
        built = sorted(Path(tmp).glob("mlgrade-*.whl"))
        if done.returncode != 0 or not built:
            detail = (done.stderr.strip().splitlines() or ["no wheel was written"])[-1]
            raise EnvironmentProblem(
                f"could not build the mlgrade wheel from {root} ({detail}). Check that pip can "
                "reach the package index (it fetches hatchling), or pass --wheel FILE.")
        target = dest_dir / built[0].name
        shutil.copyfile(built[0], target)
        return target


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _wheel_from_installed(dest_dir: Path) -> Path:
    """Repack the installed distribution: every file of its RECORD except generated scripts
    and bytecode; data files go back under ``mlgrade-<v>.data/data/``."""
    try:
        dist = metadata.distribution("mlgrade")
    except metadata.PackageNotFoundError:
        raise EnvironmentProblem("mlgrade is not installed as a package here, so no wheel can be "
                                 "made of it; pass --wheel FILE.") from None
    files = dist.files or []
    info_dir = f"mlgrade-{__version__}.dist-info"
    data_dir = f"mlgrade-{__version__}.data/data/"
    buf = io.BytesIO()
    record_rows: list[list[str]] = []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in files:
            rel = f.as_posix()
            if rel.endswith((".pyc", "RECORD", "INSTALLER", "REQUESTED", "direct_url.json")):
                continue
            parts = Path(os.path.normpath(rel)).parts
            if parts and parts[0] == "..":  # outside site-packages: data or scripts
                tail = "/".join(parts)
                if "/share/mlgrade/" not in "/" + tail:
                    continue  # console scripts: the installer writes them again
                arc = data_dir + tail[tail.index("share/mlgrade/"):]
            else:
                arc = rel
            data = Path(str(dist.locate_file(f))).read_bytes()
            zf.writestr(arc, data)
            record_rows.append([arc, _record_hash(data), str(len(data))])
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerows(record_rows + [[f"{info_dir}/RECORD", "", ""]])
        zf.writestr(f"{info_dir}/RECORD", out.getvalue())
    target = dest_dir / wheel_name()
    target.write_bytes(buf.getvalue())
    return target
