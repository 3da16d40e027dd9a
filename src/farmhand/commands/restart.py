"""`farm restart`: the farm's processes onto the current release, one host at a time."""

from __future__ import annotations

import click

from farmhand.commands._options import farm_option, role_option
from farmhand.commands._output import step
from farmhand.commands._playbooks import playbook_or_exit
from farmhand.core.errors import FarmError
from farmhand.core.runner import limit_for
from farmhand.core.target import resolve

RESTARTABLE = {"web": "restart.yml"}


@click.command("restart")
@farm_option
@role_option("The role whose processes to restart.", default="web", show_default=True)
def restart_cmd(farm: str | None, role: str) -> None:
    """Restart the farm's processes onto the current release, one host at a time.

    Web hosts leave the load balancer, restart without dropping a request, and come back.

    \b
    Example:
      farm restart -f staging
    """
    target = resolve(farm)
    target.project.validate_role(role)
    if role not in RESTARTABLE:
        raise FarmError(
            f"role {role!r} has no processes to restart: restartable roles are {', '.join(RESTARTABLE)}"
        )
    hosts = target.hosts_with_role(role)
    if not hosts:
        raise FarmError(f"farm {target.farm!r} has no hosts with role {role!r}")
    step(f"Restarting {len(hosts)} {role} hosts of {target.farm}, one at a time")
    playbook_or_exit(target, RESTARTABLE[role], limit_for(target.farm, role))
    step(f"Restarted {', '.join(h.name for h in hosts)}")


COMMANDS = (restart_cmd,)
