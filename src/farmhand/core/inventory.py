"""The farm's hosts as Ansible sees them: the aws_ec2 inventory plugin, loaded in-process
(farmhand.core.variables), as ansible-playbook loads it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from farmhand.core.variables import Ansible


@dataclass(frozen=True)
class Host:
    """One host of a farm, from the inventory's hostvars."""

    name: str
    roles: tuple[str, ...]
    instance_id: str
    private_ip: str
    state: str
    instance_type: str
    # Its variables as a play on it sees them (farmhand.core.variables.HostVariables: group_vars with
    # Ansible's precedence, each value rendered when read): how to reach it, where the app lives.
    vars: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "roles": list(self.roles),
            "instance_id": self.instance_id,
            "private_ip": self.private_ip,
            "state": self.state,
            "instance_type": self.instance_type,
        }


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


def farm_hosts(ansible: Ansible, farm: str) -> list[Host]:
    """Hosts of group farm_<farm>, sorted by name."""
    hosts = []
    for name in ansible.group_hosts(f"farm_{farm}"):
        hv = ansible.inventory_vars(name)
        hosts.append(
            Host(
                name=name,
                roles=roles_of(hv.get("aws_tags", {}).get("role", "")),
                instance_id=hv.get("aws_instance_id", ""),
                private_ip=hv.get("aws_private_ip_address", ""),
                state=hv.get("aws_state", {}).get("name", ""),
                instance_type=hv.get("aws_instance_type", ""),
                vars=ansible.host_vars(name),
            )
        )
    return hosts
