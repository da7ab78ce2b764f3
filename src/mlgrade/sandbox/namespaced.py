"""The ``namespaced`` tier: the process tier inside a bubblewrap sandbox (Linux).

Layout inside the sandbox: an empty root with ``/usr``, ``/etc`` (and the ``/lib*``, ``/bin``
links) and the Python prefixes bound read-only, ``/proc`` of a new pid namespace, a minimal
``/dev``, an empty ``/tmp``, the job folder read-write and the connection folder (ipc
sockets) at their real paths. ``<prefix>/share/mlgrade`` (installed graders) is covered by an
empty tmpfs. Nothing else of the host exists: not the repository, not the solutions, not the
gradebook, not other submissions. ``/etc/passwd`` and ``/etc/group`` are generated files that
know the kernel's uid (so ``pwd`` and ``getpass`` resolve it); with NVIDIA devices present,
the devices and the driver's files are bound in too (:func:`mlgrade.sandbox.gpu.gpu_binds`).

Process chain (one process group, so the watchdog's SIGINT reaches the kernel)::

    launcher (--sigint ign) -> bwrap -> bwrap init (pid 1) -> launcher as root: rlimits,
    chown the connection file, drop to the slot uid, no_new_privs -> ipykernel (ipc transport)

bwrap ignores SIGINT (inherited), otherwise the watchdog's interrupt would kill the box.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from mlgrade.config import Settings
from mlgrade.fsutil import write_text_atomic
from mlgrade.reaping import patience
from mlgrade.sandbox import (
    KernelLaunch,
    ipykernel_argv,
    kernel_python,
    launcher_argv,
)
from mlgrade.sandbox.canary import PROMISES, Canary
from mlgrade.sandbox.gpu import gpu_binds
from mlgrade.sandbox.process import ProcessSandbox
from mlgrade.sandbox.slots import kernel_user, passwd_files

NAMESPACES = ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
              "--unshare-cgroup-try", "--die-with-parent", "--hostname", "mlgrade"]
PROBE_TIMEOUT_S = 20.0  # for the first try of the bwrap probe (the second is longer)
# root inside the box only until the launcher drops to the slot uid
ROOT_CAPS = ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
             "--cap-add", "CAP_CHOWN"]


def _as_root() -> bool:
    return os.geteuid() == 0


def system_binds() -> list[str]:
    """Read-only system folders, and the merged-/usr links as links."""
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    return args


def _prefix_of(python: str) -> list[str]:
    """Folders an interpreter needs: its prefix and, for a venv, the base prefix."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix]
    found = []
    for exe in (python, os.path.realpath(python)):
        prefix = Path(exe).parent.parent
        found.append(str(prefix))
        cfg = prefix / "pyvenv.cfg"
        if cfg.is_file():
            for line in cfg.read_text(encoding="utf-8", errors="replace").splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "home" and value.strip():
                    found.append(str(Path(value.strip()).parent))
    return found


def python_prefixes() -> list[str]:
    """Python prefixes to bind read-only, outermost only, skipping what ``/usr`` covers."""
    candidates = _prefix_of(sys.executable) + _prefix_of(kernel_python())
    roots: list[str] = []
    for path in sorted({os.path.realpath(p) for p in candidates} | set(candidates), key=len):
        if path == "/usr" or path.startswith("/usr/"):
            continue
        if not any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
            roots.append(path)
    return [p for p in roots if os.path.isdir(p)]


def hidden_defaults() -> list[str]:
    """Where graders and solutions live: the installed share folder and a dev checkout."""
    from mlgrade.assignments import bundled_roots

    paths: list[str] = []
    for prefix in python_prefixes():
        paths.append(os.path.join(prefix, "share", "mlgrade"))
    for root in bundled_roots():
        for name in ("graders", "solutions", "assignments"):
            paths.append(str(root / name))
    return sorted(set(paths))


@functools.cache
def namespaced_problem() -> str | None:
    """Why the namespaced tier cannot run here (None when it can). Probed once per process."""
    if not sys.platform.startswith("linux"):
        return "namespaces need Linux"
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    argv = [bwrap, *NAMESPACES, *([] if _as_root() else ["--unshare-user"]), *system_binds(),
            "--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/env", "true"]
    done = None
    for timeout in (PROBE_TIMEOUT_S, patience(4 * PROBE_TIMEOUT_S)):  # a busy machine: retry
        try:
            done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
            break
        except subprocess.TimeoutExpired as exc:
            slow = exc
        except (OSError, subprocess.SubprocessError) as exc:
            return f"bwrap did not run ({exc})"
    if done is None:
        return f"bwrap did not run ({slow}; is the machine overloaded?)"
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        return "bwrap failed: " + (detail[-1][:160] if detail else f"exit {done.returncode}")
    return None


class NamespacedSandbox(ProcessSandbox):
    """Network, pid, ipc, uts and mount namespaces via bubblewrap, on top of the process tier."""

    tier = "namespaced"

    def _switches_uid(self) -> bool:
        return _as_root()  # the prefixes are bound with searchable parents

    def _hidden(self) -> list[str]:
        return sorted(set(hidden_defaults()) | set(self._protected))

    def canary(self) -> Canary:
        promises = set(PROMISES) - ({"not_root"} if not _as_root() else set())
        return Canary(frozenset(promises), tuple(self._hidden()))

    def identity_files(self, job_dir: Path) -> list[str]:
        """Generated ``/etc/passwd`` and ``/etc/group`` (root-owned, beside the job folder,
        out of the kernel's reach) bound over the host's, naming the kernel's uid."""
        uid = self.uid if self.uid is not None else os.getuid()
        gid = uid if self.uid is not None else os.getgid()
        passwd, group = passwd_files(uid, gid, kernel_user(self.uid), job_dir)
        folder = job_dir.parent / "etc"
        folder.mkdir(mode=0o755, exist_ok=True)
        args: list[str] = []
        for name, text in (("passwd", passwd), ("group", group)):
            write_text_atomic(folder / name, text, file_mode=0o644)
            args += ["--ro-bind", str(folder / name), f"/etc/{name}"]
        return args

    def bwrap_args(self, job_dir: Path, conn: Path) -> list[str]:
        args = [shutil.which("bwrap") or "bwrap", *NAMESPACES]
        args += ROOT_CAPS if _as_root() else ["--unshare-user"]
        args += system_binds() + self.identity_files(job_dir)
        args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm",
                 "--perms", "1777", "--tmpfs", "/tmp"]
        prefixes = python_prefixes()
        made = {"/", "/tmp", "/usr", "/etc"}

        def parents(path: Path) -> list[str]:
            # bwrap copies the host's modes onto the folders it creates above a bind (a 0700
            # /root would lock the slot uid out of a pyenv): create them searchable first
            out: list[str] = []
            for parent in reversed(path.parents):
                if str(parent) not in made:
                    made.add(str(parent))
                    out += ["--perms", "0711", "--dir", str(parent)]
            return out

        for prefix in prefixes:
            args += parents(Path(prefix)) + ["--ro-bind", prefix, prefix]
        if self.gpu:  # the device nodes and driver files CUDA needs, in searchable folders
            binds = gpu_binds(self.gpu_root, ("/usr", "/etc", *[b for b in system_binds() if b.startswith("/")]))
            for i in range(0, len(binds), 3):
                kind, source, dest = binds[i:i + 3]
                if not dest.startswith(("/dev/", "/proc/")):  # those folders exist already
                    args += parents(Path(dest))
                args += [kind, source, dest]
        bound = ["/usr", "/etc", *prefixes]
        covered: list[str] = []
        for path in self._hidden():  # cover what a bound folder would otherwise show
            inside = any(path == b or path.startswith(b.rstrip("/") + "/") for b in bound)
            if not inside or any(path.startswith(c.rstrip("/") + "/") for c in covered):
                continue
            covered.append(path)
            if os.path.isdir(path):
                args += ["--tmpfs", path]
            elif os.path.lexists(path):
                args += ["--ro-bind", "/dev/null", path]
        for folder in (job_dir, conn):
            args += parents(folder) + ["--bind", str(folder), str(folder)]
        return args + ["--chdir", str(job_dir), "--"]

    def launch(self, job_dir: Path, run_dir: Path, settings: Settings) -> KernelLaunch:
        env, options, conn = self._prepare(job_dir)
        if conn is None:  # not root: no uid switch, the connection folder is ours
            conn = job_dir.parent / "conn"
            conn.mkdir(mode=0o700, exist_ok=True)
        inner = launcher_argv(*self._limits(settings), *options,
                              "--unset", "JPY_PARENT_PID", "--sigint", "dfl")
        argv = (launcher_argv("--sigint", "ign") + self.bwrap_args(job_dir, conn)
                + inner + ipykernel_argv())
        return KernelLaunch(argv=self._contain(argv, settings), env=env, transport="ipc", conn_dir=conn,
                            canary=self.canary())
