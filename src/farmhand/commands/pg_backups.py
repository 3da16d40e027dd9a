"""`farm pg:backups`, `pg:backups:capture`, `pg:backups:restore`, `pg:backups:schedules`: the
farm's pgBackRest backups, in Heroku's words."""

from __future__ import annotations

import json
import subprocess
import sys

import click

from farmhand.commands._options import fail, farm_option, json_option
from farmhand.commands._output import info, out, show, size, step, table
from farmhand.commands._playbooks import playbook_or_exit
from farmhand.core import backups
from farmhand.core.errors import FarmError
from farmhand.core.runner import limit_for, stream_lines
from farmhand.core.ssh import host_connection, remote_argv
from farmhand.core.target import resolve


@click.command("pg:backups")
@farm_option
@json_option("Print JSON instead of a table.")
def pg_backups(farm: str | None, as_json: bool) -> None:
    """List the farm's backups: label, type, start and finish, size, WAL range.

    \b
    Example:
      farm pg:backups -f staging
    """
    target = resolve(farm)
    found = backups.list_backups(target)

    def text() -> None:
        out.print(f"=== {target.farm} Backups", markup=False)
        if not found:
            info(f"no backups yet: farm pg:backups:capture -f {target.farm}")
            return
        rows = table("LABEL", "TYPE", "STARTED", "FINISHED", "SIZE", "STORED", "WAL START", "WAL STOP")
        for b in reversed(found):
            rows.add_row(
                b.label,
                b.type,
                backups.stamp(b.started),
                backups.stamp(b.stopped),
                size(b.size),
                size(b.repo_size),
                b.wal_start,
                b.wal_stop,
            )
        out.print(rows)

    show(as_json, {"farm": target.farm, "backups": [b.as_dict() for b in found]}, text)


@click.command("pg:backups:capture")
@farm_option
@click.option(
    "--type",
    "kind",
    type=click.Choice(backups.TYPES),
    default="full",
    show_default=True,
    help="Full, differential (since the last full) or incremental (since the last backup).",
)
def pg_backups_capture(farm: str | None, kind: str) -> None:
    """Take a backup now, with progress.

    \b
    Example:
      farm pg:backups:capture -f staging
      farm pg:backups:capture -f staging --type diff
    """
    target = resolve(farm)
    host = backups.primary(target)
    before = {b.label for b in backups.list_backups(target)}
    step(f"Taking a {kind} backup of {target.farm} on {host.name}")
    argv = backups.pgbackrest_argv(target.farm, f"--type={kind}", "--log-level-console=detail", "backup")
    try:
        code, _ = stream_lines(
            remote_argv(host_connection(host, target.env), argv),
            target.env,
            to=sys.stdout,
            prefix="       ",
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise FarmError("ssh is not installed: install openssh-client") from None
    if code != 0:
        raise fail(f"the {kind} backup of {target.farm} failed on {host.name} (pgbackrest exit {code})")
    new = [b for b in backups.list_backups(target) if b.label not in before]
    if not new:
        raise fail(f"pgbackrest finished but no new backup of {target.farm} is listed")
    b = new[-1]
    step(f"Backup {b.label} ({b.type}, {size(b.size)}) of {target.farm} is done")


@click.command("pg:backups:schedules")
@farm_option
@json_option("Print JSON instead of a table.")
def pg_backups_schedules(farm: str | None, as_json: bool) -> None:
    """Show when backups are taken (the primary's timers; set with farmhand_backup_schedules).

    \b
    Example:
      farm pg:backups:schedules -f staging
    """
    target = resolve(farm)
    found = backups.schedules(target)

    def text() -> None:
        out.print(f"=== {target.farm} Backup schedules", markup=False)
        if not found:
            info("no scheduled backups (farmhand_backup_schedules is empty, or the farm is not converged)")
            return
        rows = table("TYPE", "SCHEDULE", "NEXT", "LAST")
        for s in found:
            rows.add_row(s.type, s.calendar, s.next_run, s.last_run)
        out.print(rows)

    show(as_json, {"farm": target.farm, "schedules": [s.as_dict() for s in found]}, text)


@click.command("pg:backups:restore")
@farm_option
@click.argument("label", required=False)
@click.option("--to-time", metavar="'YYYY-MM-DD HH:MM:SS+00'", help="Point in time to restore to.")
@click.option("--target", "host", metavar="HOST", help="Host to restore into. Default: the db_restore host.")
@click.option("--confirm", metavar="FARM", help="Restore in place (into the primary): the farm's name.")
def pg_backups_restore(
    farm: str | None, label: str | None, to_time: str | None, host: str | None, confirm: str | None
) -> None:
    """Restore a backup (or a point in time) into a fresh host, or in place, then check it.

    Without LABEL or --to-time: the latest backup and every archived WAL after it.
    The default target is the farm's host tagged db_restore; --target PRIMARY restores in
    place and needs --confirm FARM.

    \b
    Example:
      farm pg:backups:restore -f staging
      farm pg:backups:restore -f staging 20261123-101500F
      farm pg:backups:restore -f staging --to-time '2026-11-23 10:30:00+00'
      farm pg:backups:restore -f staging --target staging-db-1 --confirm staging
    """
    target = resolve(farm, refresh=True)
    request = backups.check_request(target, label, to_time, host, confirm)
    plan = backups.plan_restore(target, request, backups.list_backups(target))
    where = "in place" if plan.in_place else "into"
    step(f"Restoring {plan.describe()} of {target.farm} {where} {plan.host}")
    playbook_or_exit(target, "pg_restore.yml", limit_for(target.farm), "-e", json.dumps(plan.extra_vars()))
    step(f"{plan.host} holds {target.farm}'s database as of {plan.describe()}: consistent and reachable")
    if plan.in_place and target.hosts_with_role("db_follower"):
        info(f"Followers are on the old timeline: re-seed each with farm pg:follow -f {target.farm} HOST")


COMMANDS = (pg_backups, pg_backups_capture, pg_backups_schedules, pg_backups_restore)
