"""GPU boxes: device detection and binds on a fake /dev tree, the memory-limit choice, and a
kernel that always has a resolvable user, in every tier on this machine (which has no GPU).

With NVIDIA devices present the kernel must not run under RLIMIT_AS (CUDA cannot initialise
under it); the cgroup ``memory.max`` limits it instead. The branch is exercised here by telling
a real sandbox it has a GPU (``sandbox.gpu = True``): the kernel then starts without RLIMIT_AS
and the result says which limit applied.
"""

from __future__ import annotations

import json
import os
import resource
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from tests.security.redteam_support import TIERS, make_sandbox, redteam

from mlgrade.config import Settings, resolve_settings
from mlgrade.pipeline import check_notebook
from mlgrade.sandbox import NoSandbox
from mlgrade.sandbox.gpu import (
    MemoryLimit,
    describe_kernel,
    driver_library_dirs,
    gpu_binds,
    gpu_names,
    gpu_present,
    kernel_notes,
    memory_limit,
    nvidia_devices,
)
from mlgrade.sandbox.slots import SLOT_USER, passwd_files


def _fake_gpu_box(root: Path, model: str | None = "NVIDIA H200") -> Path:
    """A file tree shaped like an NVIDIA machine: device nodes (plain files here), the driver's
    /proc entries, libcuda in the distribution's folder and in NVIDIA's container folder."""
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"):
        (root / "dev" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "dev" / name).touch()
    (root / "dev" / "nvidia-caps").mkdir()
    (root / "dev" / "null").touch()
    for i, bus in enumerate(("0000:19:00.0", "0000:3b:00.0")):
        info = root / "proc" / "driver" / "nvidia" / "gpus" / bus / "information"
        info.parent.mkdir(parents=True)
        info.write_text(f"Model: \t {model} {i}\nIRQ: 42\n" if model else "IRQ: 42\n")
    for folder in ("usr/lib/x86_64-linux-gnu", "usr/local/nvidia/lib64"):
        (root / folder).mkdir(parents=True)
        (root / folder / "libcuda.so.1").touch()
    (root / "usr" / "lib64").mkdir()
    (root / "usr" / "lib64" / "libm.so.6").touch()  # a library folder without the driver
    (root / "run" / "nvidia-persistenced").mkdir(parents=True)
    return root


def test_detection_and_binds_on_a_fake_gpu_box(tmp_path: Path) -> None:
    root = _fake_gpu_box(tmp_path)
    assert gpu_present(root)
    assert nvidia_devices(root) == ["/dev/nvidia-caps", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
                                    "/dev/nvidia0", "/dev/nvidia1", "/dev/nvidiactl"]
    assert gpu_names(root) == ["NVIDIA H200 0", "NVIDIA H200 1"]
    assert driver_library_dirs(root) == ["/usr/lib/x86_64-linux-gnu", "/usr/local/nvidia/lib64"]
    args = gpu_binds(root, already=("/usr", "/etc"))
    pairs = [tuple(args[i:i + 3]) for i in range(0, len(args), 3)]
    # sources under the root looked at, destinations at the real paths inside the box
    assert ("--dev-bind", f"{root}/dev/nvidia0", "/dev/nvidia0") in pairs
    assert ("--dev-bind", f"{root}/dev/nvidiactl", "/dev/nvidiactl") in pairs
    assert ("--dev-bind", f"{root}/dev/nvidia-uvm", "/dev/nvidia-uvm") in pairs
    assert ("--ro-bind-try", f"{root}/proc/driver/nvidia", "/proc/driver/nvidia") in pairs
    assert ("--ro-bind-try", f"{root}/run/nvidia-persistenced", "/run/nvidia-persistenced") in pairs
    # /usr is bound read-only anyway: its driver folders need no bind of their own
    assert not any(p[2].startswith("/usr/") for p in pairs)
    assert len(pairs) * 3 == len(args) and {p[0] for p in pairs} == {"--dev-bind", "--ro-bind-try"}
    # a box that binds only /etc must get the driver's library folders too
    narrow = gpu_binds(root, already=("/etc",))
    assert "/usr/local/nvidia/lib64" in narrow and "/usr/lib/x86_64-linux-gnu" in narrow


def test_unknown_models_and_machines_without_a_gpu(tmp_path: Path) -> None:
    assert _fake_gpu_box(tmp_path / "a", model=None) and gpu_names(tmp_path / "a") == ["NVIDIA GPU"] * 2
    (tmp_path / "b" / "dev").mkdir(parents=True)
    (tmp_path / "b" / "dev" / "null").touch()
    for root in (tmp_path / "b", tmp_path / "nothing-here"):
        assert not gpu_present(root) and gpu_names(root) == [] and gpu_binds(root) == []


def test_memory_limit_choice() -> None:
    assert memory_limit(6144, gpu=False, cgroup=True) == MemoryLimit(6144, 6144)
    assert memory_limit(6144, gpu=False, cgroup=False).describe() == "RLIMIT_AS 6144 MiB"
    with_cgroup = memory_limit(6144, gpu=True, cgroup=True)
    assert with_cgroup.rlimit_as_mb == 0 and with_cgroup.cgroup_mb == 6144
    assert with_cgroup.describe() == "cgroup memory.max 6144 MiB: GPU present, RLIMIT_AS off"
    assert memory_limit(6144, gpu=True, cgroup=False).describe() == "none: GPU present and no cgroup"
    assert memory_limit(0, gpu=False, cgroup=True).describe() == "none: --memory-mb 0"
    assert kernel_notes("none", with_cgroup, gpu=False) == ()
    assert kernel_notes("NVIDIA H200", with_cgroup, gpu=True) == (
        "GPU visible to the kernel: NVIDIA H200",
        "memory limit: cgroup memory.max 6144 MiB: GPU present, RLIMIT_AS off")


def test_passwd_files_name_the_kernel_uid() -> None:
    passwd, group = passwd_files(61007, 61007, SLOT_USER, Path("/tmp/job"))
    assert "learner:x:61007:61007:mlgrade kernel:/tmp/job:/usr/sbin/nologin" in passwd.splitlines()
    assert passwd.startswith("root:x:0:0:") and "learner:x:61007:" in group
    assert passwd_files(0, 0, "root", Path("/job"))[0].count("root:x:0:0") == 1


def test_a_gpu_sandbox_launches_without_rlimit_as(tmp_path: Path) -> None:
    sandbox = make_sandbox("process")
    settings = Settings(memory_mb=4096)
    assert "--as-mb" in sandbox._limits(settings)  # no GPU here: the address-space limit
    sandbox.gpu = True
    assert "--as-mb" not in sandbox._limits(settings)
    cgroup = sandbox.cgroup is not None
    assert sandbox.memory_limit(settings) == memory_limit(4096, gpu=True, cgroup=cgroup)
    device, notes = describe_kernel(sandbox, settings)
    assert device == "none" and notes[0] == "GPU visible to the kernel: none"
    assert notes[1].startswith("memory limit: " + ("cgroup memory.max 4096 MiB" if cgroup else "none"))
    assert describe_kernel(NoSandbox(), settings) == (NoSandbox().device, ())  # no GPU: nothing said


# -- the kernel's identity and limits, in every tier -------------------------------------------
PROBE = """\
import getpass, json, os, pwd, resource
try:
    pw_name = pwd.getpwuid(os.getuid()).pw_name
except KeyError:
    pw_name = None
cgroup_limit = None  # the memory limit of the kernel's own cgroup (v1 or v2), where /sys shows it
for line in open("/proc/self/cgroup"):
    _, controllers, where = line.rstrip().split(":", 2)
    for folder, name in (("/sys/fs/cgroup/memory", "memory.limit_in_bytes"), ("/sys/fs/cgroup", "memory.max")):
        if ("memory" in controllers.split(",") if name.endswith("bytes") else controllers == ""):
            try:
                cgroup_limit = int(open(folder + where + "/" + name).read())
            except (OSError, ValueError):
                pass
print("PROBE", json.dumps({"getuser": getpass.getuser(), "pwd": pw_name, "uid": os.getuid(),
      "USER": os.environ.get("USER"), "LOGNAME": os.environ.get("LOGNAME"), "HOME": os.environ.get("HOME"),
      "cwd": os.getcwd(), "as": resource.getrlimit(resource.RLIMIT_AS)[0], "cgroup": cgroup_limit}))
"""


def redteam_memory_mb() -> int:
    return resolve_settings({}, redteam().limits, environ={}).memory_mb


def _probe(tmp_path: Path, sandbox: object) -> tuple[dict[str, object], tuple[str, ...], str]:
    path, executed = tmp_path / "probe.ipynb", tmp_path / "executed.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(PROBE)]), path)
    a = redteam()
    settings = resolve_settings({}, a.limits, environ={})
    result = check_notebook(path, a, settings, sandbox=sandbox, save_executed=executed).result  # type: ignore[arg-type]
    cell = nbformat.read(executed, as_version=4).cells[0]
    text = "".join(o.get("text", "") for o in cell.outputs)
    assert "PROBE " in text, cell.outputs
    return json.loads(text.split("PROBE ", 1)[1]), result.notices, result.device


@pytest.mark.kernel
@pytest.mark.parametrize("tier", TIERS)
def test_the_kernel_has_a_resolvable_user_and_no_rlimit_as_on_a_gpu_box(tier: str, tmp_path: Path) -> None:
    sandbox = make_sandbox(tier)
    sandbox.gpu = True  # the GPU branch on this GPU-less machine: no RLIMIT_AS, notices
    seen, notices, device = _probe(tmp_path, sandbox)
    assert seen["as"] == resource.RLIM_INFINITY
    if tier == "process" and sandbox.cgroup is not None:  # the limit moved to the cgroup
        assert seen["cgroup"] == redteam_memory_mb() * 1024 * 1024
    assert seen["USER"] == seen["LOGNAME"] == seen["getuser"] and seen["HOME"] == seen["cwd"]
    switched = sandbox.uid is not None or seen["uid"] != os.getuid()
    if switched:
        assert seen["getuser"] == SLOT_USER
    # namespaced: a generated /etc/passwd names the kernel's uid in the box; process tier
    # without a uid switch: the kernel is this user, whom the host's passwd knows
    if tier == "namespaced" or not switched:
        assert seen["pwd"] == seen["getuser"]
    # (process tier with a slot uid: USER/LOGNAME make getpass work; the host's passwd,
    # which mlgrade never edits, has no entry for the slot uid)
    assert device == "none" and notices[-2] == "GPU visible to the kernel: none"
    assert notices[-1].startswith("memory limit: ")


@pytest.mark.kernel
def test_the_unsandboxed_kernel_has_a_user_too(tmp_path: Path) -> None:
    seen, notices, device = _probe(tmp_path, NoSandbox())
    assert seen["getuser"] == seen["USER"] == seen["LOGNAME"] and seen["HOME"] == seen["cwd"]
    assert device == "none" and not any(n.startswith("GPU visible") for n in notices)


@pytest.mark.kernel
@pytest.mark.skipif(os.geteuid() != 0, reason="device nodes for the fake GPU need root (mknod)")
@pytest.mark.parametrize("tier", [p for p in TIERS if p.id == "namespaced"])
def test_the_namespaced_box_binds_the_gpu_devices_and_driver_files(tier: str, tmp_path: Path) -> None:
    """A fake GPU tree with real character devices (clones of /dev/null) and a driver library
    outside /usr: bubblewrap binds them where CUDA looks, and the kernel sees them."""
    import stat

    root = tmp_path / "gpu-root"
    (root / "dev").mkdir(parents=True)
    for name in ("nvidia0", "nvidiactl", "nvidia-uvm"):
        os.mknod(root / "dev" / name, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (root / "opt" / "nvidia" / "lib64").mkdir(parents=True)
    (root / "opt" / "nvidia" / "lib64" / "libcuda.so.1").write_bytes(b"not really libcuda")
    (root / "run" / "nvidia-persistenced").mkdir(parents=True)
    sandbox = make_sandbox(tier)
    sandbox.gpu_root, sandbox.gpu = str(root), True
    sandbox.device = ", ".join(gpu_names(root))
    path, executed = tmp_path / "probe.ipynb", tmp_path / "executed.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(
        "import json, os, stat\n"
        "print('PROBE', json.dumps({p: stat.S_ISCHR(os.stat(p).st_mode) for p in "
        "('/dev/nvidia0', '/dev/nvidiactl', '/dev/nvidia-uvm')} | "
        "{'lib': os.path.isfile('/opt/nvidia/lib64/libcuda.so.1'),"
        " 'run': os.path.isdir('/run/nvidia-persistenced')}))")]),
        path)
    a = redteam()
    result = check_notebook(path, a, resolve_settings({}, a.limits, environ={}), sandbox=sandbox,
                            save_executed=executed).result
    text = "".join(o.get("text", "") for o in nbformat.read(executed, as_version=4).cells[0].outputs)
    assert "PROBE " in text, text
    assert json.loads(text.split("PROBE ", 1)[1]) == {
        "/dev/nvidia0": True, "/dev/nvidiactl": True, "/dev/nvidia-uvm": True, "lib": True, "run": True}
    assert result.device == "NVIDIA GPU" and "GPU visible to the kernel: NVIDIA GPU" in result.notices
