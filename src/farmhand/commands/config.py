"""`farm config`, `config:get`, `config:set`, `config:unset`: Heroku's config vars, kept in SSM."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence
from typing import Any

import click

from farmhand.commands import _playbooks
from farmhand.commands._options import farm_option, json_option
from farmhand.commands._output import info, out, show, step
from farmhand.core import config as config_vars
from farmhand.core import deploy
from farmhand.core.errors import FarmError
from farmhand.core.target import Target, resolve

MASK = "********"


def _ssm(target: Target) -> Any:
    return deploy.ssm_client(target)


@click.command("config")
@farm_option
@click.option("--reveal", is_flag=True, help="Show the values (the table masks them).")
@json_option("Print a JSON object of NAME: value.")
@click.option("--shell", "as_shell", is_flag=True, help="Print `export NAME='value'` lines (POSIX shell).")
def config_cmd(farm: str | None, reveal: bool, as_json: bool, as_shell: bool) -> None:
    """List the farm's config vars (values masked unless --reveal).

    --json and --shell print the values: they are for scripts, as Heroku's are.

    \b
    Example:
      farm config -f staging
      farm config -f staging --reveal
      eval "$(farm config -f staging --shell)"
    """
    if as_json and as_shell:
        raise FarmError("--json and --shell are two formats: pick one")
    target = resolve(farm, with_hosts=False)
    found = config_vars.read(_ssm(target), target.farm)
    if as_shell:
        sys.stdout.write("".join(f"export {name}={shlex.quote(value)}\n" for name, value in found.items()))
        return

    def text() -> None:
        out.print(f"=== {target.farm} Config Vars", markup=False)
        if not found:
            info(f"no config vars yet: farm config:set -f {target.farm} KEY=VALUE")
            return
        width = max(len(name) for name in found) + 1
        for name, value in found.items():
            out.print(f"{name + ':':<{width}} {value if reveal else MASK}", markup=False)

    show(as_json, found, text, ensure_ascii=False)


@click.command("config:get")
@farm_option
@click.argument("name", metavar="KEY")
def config_get(farm: str | None, name: str) -> None:
    """Print one config var's value, exactly as it was set.

    \b
    Example:
      farm config:get -f staging SMTP_HOST
    """
    target = resolve(farm, with_hosts=False)
    config_vars.check_name(name, {})
    found = config_vars.read(_ssm(target), target.farm)
    if name not in found:
        raise FarmError(
            f"{name} is not set on farm {target.farm!r} (`farm config -f {target.farm}` lists all)"
        )
    sys.stdout.write(found[name] + "\n")


def _apply(target: Target, change: config_vars.Change, restart: bool) -> None:
    """Write the parameters, then release the change to the app hosts (unless --no-restart)."""
    ssm = _ssm(target)
    config_vars.write(ssm, target.farm, change)
    words = config_vars.describe(change)
    app_hosts = [h for h in target.hosts if set(h.roles) & set(target.project.app_roles)]
    if not restart or not app_hosts:
        step(f"{words} on {target.farm}: written to SSM Parameter Store")
        why = "--no-restart" if app_hosts else f"farm {target.farm!r} has no app hosts"
        info(f"({why}: `farm restart -f {target.farm}` or the next deploy or converge applies them)")
        return
    step(f"{words} on {target.farm}: releasing to {len(app_hosts)} app hosts")
    release, extra_vars = deploy.start_config_change(target, change, say=info)
    hint = " (the config vars are set in SSM; `farm restart` applies them)"
    _playbooks.release_or_exit(target, "config.yml", release, extra_vars, hint=hint)
    step(f"Released {release.label} to {target.farm}: {release.description}")


@click.command("config:set")
@farm_option
@click.argument("assignments", nargs=-1, metavar="KEY=VALUE...")
@click.option("--no-restart", is_flag=True, help="Write the parameters only; apply them later.")
def config_set(farm: str | None, assignments: Sequence[str], no_restart: bool) -> None:
    """Set config vars, as one new release: every app host gets them, web hosts restart one by one.

    Values may hold anything but a NUL byte (spaces, quotes, `=`, newlines, unicode), up to 8 KB.

    \b
    Example:
      farm config:set -f staging SMTP_HOST=smtp.example.com SMTP_PORT=587
      farm config:set -f staging "GREETING=hello world" --no-restart
    """
    target = resolve(farm)
    wanted = config_vars.parse_assignments(assignments, config_vars.reserved_names(target))
    before = config_vars.read(_ssm(target), target.farm)
    change = config_vars.Change(before=before, after={**before, **wanted})
    if change.empty:
        info(f"{', '.join(wanted)} already set so on {target.farm}: nothing to change")
        return
    _apply(target, change, restart=not no_restart)


@click.command("config:unset")
@farm_option
@click.argument("names", nargs=-1, metavar="KEY...")
@click.option("--no-restart", is_flag=True, help="Delete the parameters only; apply it later.")
def config_unset(farm: str | None, names: Sequence[str], no_restart: bool) -> None:
    """Remove config vars, as one new release (like config:set).

    \b
    Example:
      farm config:unset -f staging SMTP_HOST SMTP_PORT
    """
    target = resolve(farm)
    # Reserved names are let through: one set in SSM behind Farmhand's back must be removable.
    checked = config_vars.check_names(names, {}, "config:unset")
    before = config_vars.read(_ssm(target), target.farm)
    missing = [n for n in checked if n not in before]
    if missing:
        raise FarmError(f"not set on farm {target.farm!r}: {', '.join(missing)} (nothing was removed)")
    change = config_vars.Change(before=before, after={k: v for k, v in before.items() if k not in checked})
    _apply(target, change, restart=not no_restart)


COMMANDS = (config_cmd, config_get, config_set, config_unset)
