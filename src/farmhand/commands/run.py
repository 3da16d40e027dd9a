"""`farm run` and `farm console`: one-off commands in the app's current release, Heroku's way."""

from __future__ import annotations

from collections.abc import Sequence

import click

from farmhand.commands._options import farm_option, role_option
from farmhand.commands._output import err
from farmhand.core import hosts, oneoff, ssh
from farmhand.core.errors import FarmError
from farmhand.core.target import resolve

PASS_THROUGH = {"ignore_unknown_options": True, "allow_interspersed_args": False}


def run_in_release(farm: str | None, role: str | None, command: Sequence[str]) -> None:
    """Run COMMAND on the farm's one-off host (or ROLE's first host); exit with its status."""
    if not command:
        raise FarmError("no command given: farm run -f FARM -- COMMAND...")
    target = resolve(farm)
    if role is not None and role in target.project.roles and role not in target.project.app_roles:
        raise FarmError(
            f"role {role!r} does not run the app: farm run runs on {', '.join(target.project.app_roles)}"
            " hosts (farm ssh reaches any host)"
        )
    choice = hosts.oneoff(target, role)
    if choice.note:
        err.print(f"farm: {choice.note}", markup=False, soft_wrap=True)
    tty = ssh.terminal()
    if tty:
        err.print(f"Running `{oneoff.shell_line(command)}` on {choice.host.name}...", markup=False)
    remote = oneoff.release_command(choice.host, command)
    raise click.exceptions.Exit(ssh.run_interactive(target.env, choice.host, remote, tty=tty))


@click.command("run", context_settings=PASS_THROUGH)
@farm_option
@role_option("Run on this role's first host. Default: console (else worker, else web).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run_cmd(farm: str | None, role: str | None, command: tuple[str, ...]) -> None:
    """Run a one-off command in the app's current release, with its config vars.

    As the app's user, in the release `current` points at, with the app's environment
    (FARMHAND_RELEASE names the release). Several arguments are the command's words, each one
    reaching it as you gave it; a single argument is a command line for the shell on the host
    (quote it whole to use $VARIABLES, pipes or `;` there). It runs on the farm's console host,
    or the first host of -r ROLE; a farm with no console host uses its first worker, else web
    host, and says so on stderr. A terminal when stdin and stdout are one (so consoles work),
    plain streams otherwise, stdin passed through. Exits with the command's status.

    \b
    Example:
      farm run -f staging -- bundle exec rails db:migrate:status
      farm run -f staging -- bin/rails runner 'puts Book.count'
      farm run -f staging -- rails console
      farm run -f staging -r worker -- 'echo $REDIS_URL'
      echo 'puts Book.count' | farm run -f staging -- rails runner -
    """
    run_in_release(farm, role, command)


@click.command("console", context_settings=PASS_THROUGH)
@farm_option
@role_option("Run on this role's first host. Default: console (else worker, else web).")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def console_cmd(farm: str | None, role: str | None, args: tuple[str, ...]) -> None:
    """Open a Rails console in the app's current release (`farm run -- bin/rails console`).

    \b
    Example:
      farm console -f staging
      farm console -f staging -- --sandbox
    """
    run_in_release(farm, role, ["bin/rails", "console", *args])


COMMANDS = (run_cmd, console_cmd)
