"""`farm restart`: the farm's processes onto the current release, as `heroku restart` does."""

from __future__ import annotations

import click

from farmhand.commands._options import farm_option, role_option
from farmhand.commands._output import step
from farmhand.commands._playbooks import playbook_or_exit
from farmhand.core.errors import FarmError
from farmhand.core.runner import limit_for
from farmhand.core.target import resolve

# The roles whose processes restart.yml restarts: one play each, scoped by the role's group.
RESTARTABLE = ("web", "worker")


@click.command("restart")
@farm_option
@role_option("Restart only this role's processes (web or worker; default: both).")
def restart_cmd(farm: str | None, role: str | None) -> None:
    """Restart the farm's processes onto the current release, as deploys do.

    Web hosts restart one at a time: each leaves the load balancer, restarts without dropping a
    request, and comes back. Worker hosts hand each Sidekiq process over: the running one takes
    no new job and exits once its jobs are done, a new one starts.

    \b
    Examples:
      farm restart -f staging             # web and worker hosts
      farm restart -f staging -r worker   # the Sidekiq processes only
    """
    target = resolve(farm)
    if role is not None:
        target.project.validate_role(role)
        if role not in RESTARTABLE:
            raise FarmError(
                f"role {role!r} has no processes to restart: restartable roles are {', '.join(RESTARTABLE)}"
            )
    roles = (role,) if role else RESTARTABLE
    hosts = {name: target.hosts_with_role(name) for name in roles}
    if not any(hosts.values()):
        if role:
            raise FarmError(f"farm {target.farm!r} has no hosts with role {role!r}")
        raise FarmError(f"farm {target.farm!r} has no web or worker hosts: no processes to restart")
    counts = " and ".join(f"{len(found)} {name}" for name, found in hosts.items() if found)
    step(f"Restarting {counts} hosts of {target.farm}" + (", web one at a time" if hosts.get("web") else ""))
    playbook_or_exit(target, "restart.yml", limit_for(target.farm, role))
    step(f"Restarted {', '.join(h.name for found in hosts.values() for h in found)}")


COMMANDS = (restart_cmd,)
