"""The farm's hosts as Ansible sees them: the aws_ec2 inventory plugin, through ansible-inventory."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farmhand.core.errors import FarmError
from farmhand.core.project import Project


@dataclass(frozen=True)
class Host:
    """One host of a farm, from the inventory's hostvars."""

    name: str
    roles: tuple[str, ...]
    instance_id: str
    private_ip: str
    state: str
    instance_type: str
    # Its inventory variables (group_vars included, as Ansible merges them): how to reach it.
    vars: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roles": list(self.roles),
            "instance_id": self.instance_id,
            "private_ip": self.private_ip,
            "state": self.state,
            "instance_type": self.instance_type,
        }


def inventory_list(project: Project, env: Mapping[str, str], refresh: bool = False) -> dict[str, Any]:
    """`ansible-inventory --list` of the project's inventory file, as a dict.

    The listing is written to a file (`--output`), not read from stdout, where Ansible's display
    settings (`-v`'s "Using ... as config file") would mix with it.
    """
    with tempfile.TemporaryDirectory(prefix="farmhand-inventory-") as tmp:
        listing = Path(tmp) / "inventory.json"
        cmd = ["ansible-inventory", "-i", str(project.inventory), "--list", "--output", str(listing)]
        if refresh:
            cmd.append("--flush-cache")
        proc = subprocess.run(
            cmd, cwd=project.root, env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if proc.returncode != 0 or not listing.is_file():
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            reason = lines[-1] if lines else f"exit {proc.returncode}"
            raise FarmError(f"ansible-inventory failed: {reason}")
        return untag(json.loads(listing.read_text(encoding="utf-8")))


def untag(value: Any) -> Any:
    """Unwrap the `{"__ansible_unsafe": ...}` markers ansible-inventory puts on templated values."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return untag(value["__ansible_unsafe"])
        return {k: untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untag(v) for v in value]
    return value


def roles_of(tag: str) -> tuple[str, ...]:
    """The roles in a `role` tag: `worker, cron` -> ("worker", "cron")."""
    return tuple(r.strip() for r in tag.split(",") if r.strip())


def farm_hosts(inventory: dict[str, Any], farm: str) -> list[Host]:
    """Hosts of group farm_<farm>, sorted by name."""
    hostvars = inventory.get("_meta", {}).get("hostvars", {})
    names = inventory.get(f"farm_{farm}", {}).get("hosts", [])
    hosts = []
    for name in sorted(names):
        hv = hostvars.get(name, {})
        hosts.append(
            Host(
                name=name,
                roles=roles_of(hv.get("aws_tags", {}).get("role", "")),
                instance_id=hv.get("aws_instance_id", ""),
                private_ip=hv.get("aws_private_ip_address", ""),
                state=hv.get("aws_state", {}).get("name", ""),
                instance_type=hv.get("aws_instance_type", ""),
                vars=hv,
            )
        )
    return hosts
