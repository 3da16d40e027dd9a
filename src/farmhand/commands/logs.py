"""`farm logs`: the farm's hosts' journals merged, each line tagged with host and program.

Like `heroku logs [--tail]`: the last N lines of every host's journal merged by time, then with
--tail each host's journal followed from where its backlog ended (farmhand.core.journal).
"""

from __future__ import annotations

import re
import sys

import click

from farmhand.commands._options import farm_option, role_option
from farmhand.core import journal
from farmhand.core.errors import FarmError
from farmhand.core.target import resolve


def _echo_now(line: str) -> None:
    """Print a followed line at once (stdout may be a pipe)."""
    click.echo(line)
    sys.stdout.flush()


@click.command("logs")
@farm_option
@role_option("Only the hosts of this role (web, worker, cron, db...).")
@click.option("-t", "--tail", is_flag=True, help="Keep printing new lines as they come.")
@click.option(
    "-n", "--num", "lines", type=click.IntRange(min=1), default=100, show_default=True, help="Lines to show."
)
@click.option("--grep", metavar="REGEX", help="Only lines whose message matches (journalctl --grep).")
def logs(farm: str | None, role: str | None, tail: bool, lines: int, grep: str | None) -> None:
    """Show the farm's logs: every host's journal merged, each line tagged with host and program.

    \b
    Example:
      farm logs -f staging
      farm logs -f staging -r web --tail
      farm logs -f staging -n 500 --grep 'Completed 5[0-9][0-9]'
    """
    if grep is not None:
        try:
            re.compile(grep)
        except re.error as err:
            raise FarmError(f"invalid --grep pattern {grep!r}: {err}") from None
    target = resolve(farm)
    hosts = target.hosts
    if role is not None:
        target.project.validate_role(role)
        hosts = target.hosts_with_role(role)
        if not hosts:
            raise FarmError(f"farm {target.farm!r} has no hosts with role {role}")
    try:
        found = journal.backlog(target, hosts, lines, grep, lambda why: click.echo(why, err=True))
        for line in journal.merged(found, lines):
            click.echo(line)
        if tail:
            journal.follow(target, hosts, grep, journal.last_cursors(found), _echo_now)
    except KeyboardInterrupt:
        if not tail:
            raise
        raise click.exceptions.Exit(0) from None  # Ctrl-C is how a tail ends, as heroku logs --tail


COMMANDS = (logs,)
