"""`farm ps:scale`, the steps: new hosts are converged and deployed to before they take work;
leaving hosts are taken out of work (their jobs finish) before they are terminated.

Growing a type: the fleet brings the hosts up, Ansible waits until it can log in, they are
converged together with the hosts whose configuration lists the farm's hosts (the database's
pg_hba, the load balancer's servers), then the current release is shipped to them alone (no
migrations): Sidekiq starts there with the release, a web host joins the load balancer once it
answers its health check as that release.

Shrinking a type: the chosen hosts are drained (web: out of the load balancer; worker: Sidekiq
quieted, the play waits for their jobs), the fleet terminates them, and the hosts that listed
them are converged.

The command picks the playbook of each run (`Playbooks`: site.yml, deploy.yml, scale_in.yml).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from farmhand.core import deploy
from farmhand.core.errors import RunFailed
from farmhand.core.releases import Release
from farmhand.core.runner import run_module
from farmhand.core.scaling import plan as scaling
from farmhand.core.scaling.instances import Fleet
from farmhand.core.scaling.plan import Bounds, RoleChange
from farmhand.core.target import Target, resolve

Say = Callable[[str], None]
# Roles whose configuration lists the farm's other hosts: converged again when hosts come or go.
DEPENDENT_ROLES = ("db", "db_follower", "db_restore", "lb")


class Playbooks(Protocol):
    """The Ansible runs a scale needs, each stopping the command (RunFailed + HINT) if it fails."""

    def converge(self, target: Target, hosts: Sequence[str], hint: str = "") -> None:
        """Apply the farm's configuration to HOSTS."""
        ...

    def ship(self, target: Target, release: Release, hosts: Sequence[str], hint: str) -> None:
        """Deploy the running RELEASE to HOSTS only: no migrations, no new release recorded."""
        ...

    def drain(self, target: Target, hosts: Sequence[str]) -> None:
        """Take HOSTS out of work; their running jobs finish."""
        ...


def redis_hosts(target: Target) -> list[str]:
    """The hosts that run the farm's Redis: farmhand_redis_hosts as Ansible computes it
    (group_vars/all/redis.yml: those tagged redis, else the first worker host, else the db host;
    none with an external URL), read for the farm's first host as site.yml's Redis play reads it."""
    first = sorted(target.hosts, key=lambda h: h.name)[0]
    return [str(name) for name in target.var(first, "farmhand_redis_hosts") or []]


def plan(target: Target, wanted: dict[str, int], fleets: Callable[[str], Fleet]) -> list[RoleChange]:
    """Check the request against the farm before anything changes."""
    bounds: dict[str, Bounds] = {}
    protected = set(redis_hosts(target))
    for role in wanted:
        with_role = target.hosts_with_role(role)
        fleet = fleets(role)
        bounds[role] = fleet.bounds(role, with_role)
        protected |= set(fleet.fixed(role, with_role))
    return scaling.plan(target.farm, wanted, target.hosts, bounds, sorted(protected))


def _limit(names: Sequence[str]) -> str:
    return ",".join(sorted(names))


def _dependents(target: Target, exclude: Sequence[str] = ()) -> list[str]:
    return sorted(
        {h.name for h in target.hosts if set(h.roles) & set(DEPENDENT_ROLES) and h.name not in exclude}
    )


def _stranded(target: Target, role: str, new: Sequence[str], before: int) -> str:
    """What to do with new hosts that run but take no work (a failed converge or deploy)."""
    return (
        f"; {', '.join(new)} run but take no work: fix it and run `farm converge -f {target.farm}` "
        f"then `farm deploy -f {target.farm} --force`, or `farm ps:scale -f {target.farm} {role}={before}`"
    )


def _wait_for_login(target: Target, names: Sequence[str], say: Say) -> None:
    found = run_module(
        target.project, target.env, _limit(names), "ansible.builtin.wait_for_connection", "timeout=600"
    )
    missing = sorted(set(names) - set(found))
    if missing:
        raise RunFailed(f"cannot log in to {', '.join(missing)}: they run, but SSH does not answer")
    say(f"{', '.join(names)}: SSH answers")


def grow(target: Target, change: RoleChange, fleet: Fleet, playbooks: Playbooks, say: Say) -> Target:
    """Add CHANGE.adds hosts; converge and deploy them. Returns the farm as it is now."""
    new = fleet.add(change.role, change.adds, target.hosts_with_role(change.role), say)
    say(f"New {change.role} hosts: {', '.join(new)}")
    target = resolve(target.farm, refresh=True)
    unknown = sorted(set(new) - {h.name for h in target.hosts})
    if unknown:
        raise RunFailed(
            f"the inventory does not list {', '.join(unknown)} yet: run `farm converge -f {target.farm}`"
        )
    _wait_for_login(target, new, say)
    converge = sorted({*new, *_dependents(target)})
    say(f"Converging {', '.join(converge)}")
    playbooks.converge(target, converge, _stranded(target, change.role, new, change.current))
    history = deploy.release_history(target)
    current = deploy.current_release(history)
    if current is None or not current.sha:
        say("No release yet: the first `farm deploy` ships the app to them")
        return target
    say(f"Deploying {current.label} ({current.sha[:7]}) to {', '.join(new)}")
    playbooks.ship(target, current, new, _stranded(target, change.role, new, change.current))
    return target


def shrink(target: Target, change: RoleChange, fleet: Fleet, playbooks: Playbooks, say: Say) -> Target:
    """Drain CHANGE.leaving (their jobs finish), terminate them, converge the hosts that listed them."""
    names = [h.name for h in change.leaving]
    if change.role == "worker":
        say(f"Quieting Sidekiq on {', '.join(names)} and waiting for their jobs to finish")
    else:
        say(f"Taking {', '.join(names)} out of work")
    playbooks.drain(target, names)
    fleet.remove(change.role, change.leaving, say)
    target = resolve(target.farm, refresh=True)
    dependents = _dependents(target, exclude=names)
    if dependents:
        say(f"Converging {', '.join(dependents)} (they listed the hosts that left)")
        playbooks.converge(target, dependents)
    return target


def run(
    target: Target,
    changes: Sequence[RoleChange],
    fleets: Callable[[str], Fleet],
    playbooks: Playbooks,
    say: Say,
) -> Target:
    """Grow first, then shrink: capacity never dips below both counts during the change."""
    for change in changes:
        if change.adds:
            target = grow(target, change, fleets(change.role), playbooks, say)
    for change in changes:
        if change.removes:
            target = shrink(target, change, fleets(change.role), playbooks, say)
    return target
