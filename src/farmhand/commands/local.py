"""`farm local up`, `image`, `down`, `env`: the local farm (Podman containers as hosts, moto as AWS)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from farmhand.commands._group import HerokuGroup
from farmhand.commands._options import farm_option
from farmhand.commands._output import info, step
from farmhand.core.local import hostfix
from farmhand.core.local.farm import LocalFarm
from farmhand.core.local.image import ensure_image
from farmhand.core.local.podman import require
from farmhand.core.local.shape import parse_args
from farmhand.core.project import Project, validate_farm


@click.group("local", cls=HerokuGroup)
def local() -> None:
    """The local farm: Podman containers as EC2 hosts, moto as the AWS API."""


@local.command("up")
@farm_option
@click.option(
    "--shape",
    "shapes",
    multiple=True,
    metavar="ROLE[,ROLE]=N",
    help="Hosts per role (repeatable). Default: farmhand_local_shape in group_vars.",
)
def local_up(farm: str | None, shapes: Sequence[str]) -> None:
    """Bring up a local farm (again: a no-op).

    \b
    Example:
      farm local up -f demo
      farm local up -f tiny --shape web=1 --shape worker,cron=1
    """
    project = Project.locate()
    name = validate_farm(farm)
    shape = parse_args(shapes) if shapes else project.farm_var(name, "farmhand_local_shape")
    step(f"Bringing up local farm {name}")
    # --shape starts over; without it the counts `farm ps:scale` set are kept.
    hosts = LocalFarm(project, name).up(shape, say=info, scaled={} if shapes else None)
    step(f"Local farm {name} is up: {len(hosts)} hosts")
    for host in hosts:
        info(f"{host.name:<28} {','.join(host.roles):<20} {host.ip}")
    for url in LocalFarm(project, name).app_urls():
        info(f"Load balancer at {url} (the app answers there once deployed: farm deploy -f {name})")
    info(f'Use it: farm ps -f {name}   (or for ansible: eval "$(farm local env -f {name})")')


@local.command("image")
def local_image() -> None:
    """Build the local farm's Debian image (once; cached) and apply the host fixes.

    \b
    Example:
      farm local image
    """
    project = Project.locate()
    require("podman")
    hostfix.ensure_host_ready()
    step(f"Image {ensure_image(project.state_dir / 'image')} is ready")


@local.command("down")
@farm_option
def local_down(farm: str | None) -> None:
    """Remove a local farm: containers, network, moto records, keys.

    \b
    Example:
      farm local down -f demo
    """
    project = Project.locate()
    name = validate_farm(farm)
    step(f"Removing local farm {name}")
    if LocalFarm(project, name).down(say=info):
        step(f"Local farm {name} is gone")
    else:
        info(f"no local farm {name!r} here: nothing to remove")


@local.command("env")
@farm_option
def local_env(farm: str | None) -> None:
    """Print `export` lines that point AWS and Ansible at a local farm.

    \b
    Example:
      eval "$(farm local env -f demo)"
      ansible-inventory --graph
    """
    project = Project.locate()
    click.echo(LocalFarm(project, validate_farm(farm)).shell_env(), nl=False)


COMMANDS = (local,)
