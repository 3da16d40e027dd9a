"""Which farm a command acts on, where it lives (real AWS or the local farm), and its hosts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from farmhand.core import aws
from farmhand.core.errors import FarmError
from farmhand.core.inventory import Host, farm_hosts
from farmhand.core.local.farm import REAL_AWS_VARS, LocalFarm
from farmhand.core.project import Project, validate_farm
from farmhand.core.variables import Ansible

RUNNING = ["pending", "running"]


@dataclass
class Target:
    """A farm with its environment (for boto3 and Ansible alike) and its running hosts.

    ENV is the whole environment to give every subprocess and boto3 client acting on the farm
    (aws.client(..., target.env)); resolve never changes os.environ.
    """

    project: Project
    farm: str
    local: bool
    env: dict[str, str] = field(default_factory=dict)
    hosts: list[Host] = field(default_factory=list)
    # The inventory and variables of this command's Ansible (None when resolved without hosts).
    ansible: Ansible | None = field(default=None, repr=False)

    def hosts_with_role(self, role: str) -> list[Host]:
        return [h for h in self.hosts if role in h.roles]

    def var(self, host: Host, name: str, default: Any = None) -> Any:
        """NAME as Ansible gives it to HOST (a host of this farm): rendered, vault values decrypted."""
        if self.ansible is None:
            raise FarmError(f"farm {self.farm!r} was resolved without its hosts: cannot read {name}")
        return self.ansible.var(host.name, name, default)


def environment_for(project: Project, farm: str) -> tuple[bool, dict[str, str]]:
    """The process environment for a farm: the local farm's when one by that name is up here."""
    env = dict(os.environ)
    local = LocalFarm(project, farm)
    if local.exists():
        for name in REAL_AWS_VARS:
            env.pop(name, None)
        env.update(local.env())
        return True, env
    return False, env


def resolve(farm: str | None, refresh: bool = False, with_hosts: bool = True) -> Target:
    """Validate the farm and find its hosts; every way this can fail is one clear FarmError.

    with_hosts=False stops once the farm is known to run (its EC2 instances), without asking the
    inventory for its hosts: for commands that only talk to AWS (`farm config`).
    """
    project = Project.locate()
    name = validate_farm(farm)
    # The farm's environment goes explicitly to whatever acts on it (boto3 clients, ansible-playbook,
    # ssh: Target.env); this process's own environment stays as the user's shell made it.
    local, env = environment_for(project, name)
    ec2 = aws.client("ec2", project.region, env)
    instances = aws.farm_instances(ec2, name)
    if not instances:
        if name in project.configured_farms() or local:
            raise FarmError(f"farm {name!r} has no hosts: no EC2 instance is tagged farm={name}")
        known = sorted(project.configured_farms() | aws.tagged_farms(ec2))
        raise FarmError(f"unknown farm {name!r}: known farms are {', '.join(known) or 'none'}")
    running = [i for i in instances if i["State"]["Name"] in RUNNING]
    if not running:
        raise FarmError(f"farm {name!r} has no running hosts ({len(instances)} stopped or stopping)")
    if not with_hosts:
        return Target(project=project, farm=name, local=local, env=env)
    # The inventory as ansible-playbook loads it, in this process: its hosts and their variables.
    ansible = Ansible(project, env, refresh=refresh)
    hosts = farm_hosts(ansible, name)
    if not refresh and {h.instance_id for h in hosts} != {i["InstanceId"] for i in running}:
        # The inventory's cache (one for the account, kept 60 s) predates an instance that runs now
        # or still lists one that is gone (another farm came up, ps:scale): read it afresh, which
        # rewrites the cache for the ansible-playbook run that may follow.
        ansible = Ansible(project, env, refresh=True)
        hosts = farm_hosts(ansible, name)
    if not hosts:
        raise FarmError(f"the inventory finds no hosts in farm_{name}: check the instances' tags")
    return Target(project=project, farm=name, local=local, env=env, hosts=hosts, ansible=ansible)
