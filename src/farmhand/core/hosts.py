"""Which host an operator's command goes to: by name (as `farm ps` shows it), by role, or the farm's
host for one-off work (its `console` host, else its first worker, else its first web host)."""

from __future__ import annotations

from dataclasses import dataclass

from farmhand.core.errors import FarmError
from farmhand.core.inventory import Host
from farmhand.core.target import Target

# Where one-off commands go when no role is given: the seed farm's dedicated role first.
ONEOFF_ROLES = ("console", "worker", "web")


@dataclass(frozen=True)
class Choice:
    """A host picked for a command, and a note to print when it is not the one asked for."""

    host: Host
    note: str = ""


def by_name(target: Target, name: str) -> Host:
    for host in target.hosts:
        if host.name == name:
            return host
    names = ", ".join(h.name for h in target.hosts)
    raise FarmError(f"unknown host {name!r} in farm {target.farm!r}: hosts are {names}")


def with_role(target: Target, role: str) -> list[Host]:
    """The farm's hosts carrying ROLE, sorted by name; a role it has no host of is an error."""
    target.project.validate_role(role)
    hosts = sorted(target.hosts_with_role(role), key=lambda h: h.name)
    if not hosts:
        raise FarmError(f"farm {target.farm!r} has no hosts with role {role!r}")
    return hosts


def oneoff(target: Target, role: str | None = None) -> Choice:
    """The host for a one-off command: the first of ROLE, else of the first role in ONEOFF_ROLES the
    farm has; a note says so when that is not a console host."""
    if role is not None:
        return Choice(with_role(target, role)[0])
    for candidate in ONEOFF_ROLES:
        hosts = sorted(target.hosts_with_role(candidate), key=lambda h: h.name)
        if hosts and candidate == ONEOFF_ROLES[0]:
            return Choice(hosts[0])
        if hosts:
            return Choice(
                hosts[0], f"farm {target.farm!r} has no console host: using {hosts[0].name} ({candidate})"
            )
    raise FarmError(f"farm {target.farm!r} has no console, worker or web host: name a role with -r ROLE")


def in_role_order(target: Target) -> list[Host]:
    """The farm's hosts, by their first role in the project's order of roles, then by name."""
    order = {role: n for n, role in enumerate(target.project.roles)}
    return sorted(target.hosts, key=lambda h: (min((order.get(r, 99) for r in h.roles), default=99), h.name))
