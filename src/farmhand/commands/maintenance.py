"""`farm maintenance`, `maintenance:on`, `maintenance:off`: the web hosts answer 503, or the app."""

from __future__ import annotations

import click

from farmhand.commands._options import fail, farm_option
from farmhand.commands._output import step
from farmhand.commands._playbooks import playbook_or_exit
from farmhand.core.errors import FarmError
from farmhand.core.runner import limit_for, run_module
from farmhand.core.target import Target, resolve


def _web_hosts(target: Target) -> list[str]:
    hosts = [h.name for h in target.hosts_with_role("web")]
    if not hosts:
        raise FarmError(f"farm {target.farm!r} has no web hosts: maintenance mode is served by them")
    return hosts


def _set_maintenance(farm: str | None, on: bool) -> None:
    target = resolve(farm)
    hosts = _web_hosts(target)
    word = "on" if on else "off"
    step(f"Turning maintenance mode {word} for {target.farm} ({len(hosts)} web hosts)")
    playbook_or_exit(
        target, "maintenance.yml", limit_for(target.farm, "web"), "-e", f"farmhand_maintenance={on}"
    )
    step(f"Maintenance mode is {word}")


@click.command("maintenance:on")
@farm_option
def maintenance_on(farm: str | None) -> None:
    """Answer 503 (with Retry-After) to every request but the health check.

    \b
    Example:
      farm maintenance:on -f staging
    """
    _set_maintenance(farm, True)


@click.command("maintenance:off")
@farm_option
def maintenance_off(farm: str | None) -> None:
    """Serve the app again.

    \b
    Example:
      farm maintenance:off -f staging
    """
    _set_maintenance(farm, False)


@click.command("maintenance")
@farm_option
def maintenance_status(farm: str | None) -> None:
    """Show whether maintenance mode is on.

    \b
    Example:
      farm maintenance -f staging
    """
    target = resolve(farm)
    hosts = _web_hosts(target)
    found = run_module(
        target.project,
        target.env,
        limit_for(target.farm, "web"),
        "ansible.builtin.stat",
        "path={{ rails_unicorn_maintenance_file }} get_checksum=false",
    )
    states = {h: ("on" if found.get(h, {}).get("stat", {}).get("exists") else "off") for h in hosts}
    missing = [h for h in hosts if h not in found]
    if missing:
        raise fail(f"could not read maintenance mode on {', '.join(missing)}")
    if len(set(states.values())) == 1:
        click.echo(next(iter(states.values())))
    else:
        for host, state in sorted(states.items()):
            click.echo(f"{host}: {state}")


COMMANDS = (maintenance_on, maintenance_off, maintenance_status)
