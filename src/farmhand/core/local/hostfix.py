"""Host fixes Podman needs on this kind of machine; applied on every `farm local up`.

Neither survives a reboot, so both are checked (and applied if missing) every time:
- default ulimits for containers (nofile at the hard limit, nproc 32768), else systemd and
  sshd inside the containers run out of file descriptors;
- every controller listed in /sys/fs/cgroup/unified/cgroup.controllers mounted as a cgroup v1
  hierarchy: crun refuses a hybrid layout where a controller is only on the v2 tree.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
from pathlib import Path

from farmhand.core.errors import FarmError

CONTAINERS_CONF = Path("/etc/containers/containers.conf")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def ulimits_line() -> str:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = "1048576" if hard == resource.RLIM_INFINITY else str(hard)
    return f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc=32768:32768"]'


def patch_containers_conf(text: str, line: str) -> str:
    """Return containers.conf text with `line` as the [containers] table's default_ulimits."""
    lines = text.splitlines()
    section = None
    for index, current in enumerate(lines):
        stripped = current.strip()
        header = re.match(r"^\[([^\]]+)\]$", stripped)
        if header:
            section = header.group(1).strip()
            continue
        if section == "containers" and re.match(r"^default_ulimits\s*=", stripped):
            lines[index] = line
            return "\n".join(lines) + "\n"
    for index, current in enumerate(lines):
        if current.strip() == "[containers]":
            lines.insert(index + 1, line)
            return "\n".join(lines) + "\n"
    prefix = "\n".join(lines) + "\n\n" if lines else ""
    return f"{prefix}[containers]\n{line}\n"


def ensure_ulimits(conf: Path = CONTAINERS_CONF) -> bool:
    """Set default_ulimits in containers.conf; True if the file changed."""
    text = conf.read_text(encoding="utf-8") if conf.exists() else ""
    patched = patch_containers_conf(text, ulimits_line())
    if patched == text:
        return False
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(patched, encoding="utf-8")
    return True


def ensure_cgroup_v1_controllers(root: Path = CGROUP_ROOT) -> list[str]:
    """Mount v2-only controllers as v1 hierarchies (hybrid hosts only); returns what was mounted."""
    listed = root / "unified" / "cgroup.controllers"
    if not listed.exists():
        return []  # pure v1 or pure v2 host: nothing to fix
    mounted = []
    for controller in listed.read_text().split():
        target = root / controller
        if subprocess.run(["mountpoint", "-q", str(target)], check=False).returncode == 0:
            continue
        target.mkdir(exist_ok=True)
        proc = subprocess.run(
            ["mount", "-t", "cgroup", "-o", controller, "cgroup", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise FarmError(f"cannot mount the {controller} cgroup controller: {proc.stderr.strip()}")
        mounted.append(controller)
    return mounted


def ensure_host_ready() -> None:
    if os.geteuid() != 0:
        raise FarmError("the local farm runs rootful Podman: run farm local as root")
    ensure_ulimits()
    ensure_cgroup_v1_controllers()
