"""The canary: before any learner code runs, check from inside the kernel that the sandbox
really gives what its tier promises. If it does not, grading stops (fail closed) rather than
grade in a weaker box than the report would claim.

It runs as the kernel's first (hidden) cell, so it sees exactly the learner's view: same
namespaces, uid, mounts and environment. It costs one execute round trip.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MARK = "mlgrade-canary:"

# what a checked promise means, for the error message
PROMISES = {
    "no_tokens": "no secrets or CI variables in the environment",
    "not_root": "the kernel does not run as root",
    "no_network": "no network interface but loopback, no outbound connection",
    "read_only_root": "the system and the Python environment are read-only",
    "hidden": "graders, solutions and the gradebook are not visible",
}

_SOURCE = r'''
def _mlgrade_canary(promises, hidden):
    import os, re, socket, sys, json, errno
    bad = []
    if "no_tokens" in promises:
        pat = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|PRIVATE|^GITHUB_|^GH_|^AWS_"
                         r"|^ACTIONS_|^RUNNER_|^CI_|^SSH_AUTH_SOCK$|^GOOGLE_|^AZURE_", re.I)
        leaked = sorted(k for k in os.environ if pat.search(k))
        if leaked:
            bad.append(["no_tokens", "variables " + ", ".join(leaked[:5])])
    if "not_root" in promises:
        ids = os.getresuid() + os.getresgid()
        if 0 in ids or 0 in os.getgroups():
            bad.append(["not_root", "ids %r" % (ids,)])
    if "no_network" in promises:
        names = [n for _, n in socket.if_nameindex()]
        if [n for n in names if n != "lo"]:
            bad.append(["no_network", "interfaces " + ", ".join(names)])
        targets = ((socket.AF_INET, ("192.0.2.1", 80)), (socket.AF_INET6, ("2001:db8::1", 80)))
        for family, addr in targets:
            try:
                s = socket.socket(family, socket.SOCK_STREAM)
            except OSError:
                continue
            s.settimeout(0.2)
            try:
                s.connect(addr)
                bad.append(["no_network", "connected to %s" % (addr[0],)])
            except socket.timeout:
                bad.append(["no_network", "connect to %s was not refused at once" % (addr[0],)])
            except OSError:
                pass
            finally:
                s.close()
    if "read_only_root" in promises:
        for d in ("/", "/usr", "/etc", sys.prefix, sys.base_prefix):
            p = os.path.join(d, ".mlgrade-canary-%d" % os.getpid())
            try:
                fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except OSError:
                continue
            os.close(fd)
            os.unlink(p)
            bad.append(["read_only_root", "could write in " + d])
    if "hidden" in promises:
        import stat
        for p in hidden:  # absent, or covered by an empty folder or by /dev/null
            try:
                mode = os.lstat(p).st_mode
            except OSError:
                continue
            if stat.S_ISCHR(mode) or (stat.S_ISDIR(mode) and not os.listdir(p)):
                continue
            bad.append(["hidden", p + " is visible"])
    print("MARK" + json.dumps(bad))
    return None
_mlgrade_canary(PROMISES, HIDDEN)
del _mlgrade_canary
'''


@dataclass(frozen=True)
class Canary:
    """The promises a tier makes, and the paths that must be invisible in it."""

    promises: frozenset[str]
    hidden: tuple[str, ...] = ()

    def source(self) -> str:
        return (_SOURCE.replace("MARK", MARK)
                .replace("PROMISES", repr(sorted(self.promises)))
                .replace("HIDDEN", repr(list(self.hidden))))

    def problems(self, outputs: Iterable[Any], status: str) -> list[str]:
        """What the canary found broken; any unreadable answer counts as broken."""
        if status != "ok":
            return [f"the canary cell did not finish ({status})"]
        text = "".join(str(o.get("text", "")) for o in outputs
                       if o.get("output_type") == "stream" and o.get("name") == "stdout")
        lines = [line for line in text.splitlines() if line.startswith(MARK)]
        if len(lines) != 1:
            return ["the canary gave no answer"]
        try:
            found = json.loads(lines[0][len(MARK):])
            return [f"{PROMISES.get(str(k), k)}: {detail}" for k, detail in found]
        except (ValueError, TypeError):
            return ["the canary's answer was unreadable"]
