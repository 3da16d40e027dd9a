"""`farm cron`, `cron:history`, `cron:logs`, `cron:run`: the farm's scheduled jobs, Heroku Scheduler's way.

Each command runs the cron_scheduler role's runner (`farmhand-cron`) on the farm's active cron
host (farmhand_cron_active_host as Ansible computes it: group_vars/all/cron.yml picks the first
host tagged cron) over SSH, as `farm psql` reaches the database: same user, key and options as
Ansible. A job name is checked against `cron_scheduler_jobs` as Ansible gives it to that host
(farmhand.core.variables) before the host is asked.
"""

from __future__ import annotations

import re

import click

from farmhand.commands._options import farm_option, json_option
from farmhand.core import ssh
from farmhand.core.errors import FarmError
from farmhand.core.inventory import Host
from farmhand.core.target import Target, resolve

JOB_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
RUNNER = "/usr/local/bin/farmhand-cron"


def cron_host(target: Target) -> Host:
    """The active cron host, as site.yml makes it: farmhand_cron_active_host as Ansible computes it
    for the farm's cron hosts (set it in group_vars to fail over to a standby)."""
    hosts = sorted(target.hosts_with_role("cron"), key=lambda h: h.name)
    if not hosts:
        raise FarmError(f"farm {target.farm!r} has no cron host (no host tagged cron)")
    active = target.var(hosts[0], "farmhand_cron_active_host")
    for host in hosts:
        if host.name == active:
            return host
    names = ", ".join(h.name for h in hosts)
    raise FarmError(
        f"farmhand_cron_active_host {active!r} is not a cron host of farm {target.farm!r}: {names}"
    )


def check_job(target: Target, job: str) -> None:
    """Refuse a job name that is malformed or not among the jobs Ansible gives the active cron host
    (cron_scheduler_jobs; a host of farm_<farm> and role_cron when the farm has none), before any
    host is asked."""
    if not JOB_NAME.match(job):
        raise FarmError(f"invalid job name {job!r}: jobs are named with a-z, 0-9, - and _")
    if target.hosts_with_role("cron"):
        jobs = target.var(cron_host(target), "cron_scheduler_jobs") or []
    else:
        jobs = target.project.farm_var(target.farm, "cron_scheduler_jobs", [], role="cron") or []
    names = [j.get("name") for j in jobs if isinstance(j, dict)] if isinstance(jobs, list) else []
    if not names:
        where = f"farmhand_cron_jobs in group_vars/farm_{target.farm}/"
        raise FarmError(f"farm {target.farm!r} has no scheduled jobs ({where})")
    if job not in names:
        raise FarmError(f"unknown job {job!r} on farm {target.farm!r}: jobs are {', '.join(names)}")


def _runner(target: Target, host: Host, *args: str) -> None:
    """Run `sudo farmhand-cron ARGS` on the host, output passed through; exit with its status."""
    runner = str(target.var(host, "cron_scheduler_runner_path", RUNNER))
    remote = ["sudo", runner, *args]
    raise click.exceptions.Exit(ssh.run_interactive(target.env, host, remote))


@click.command("cron")
@farm_option
@json_option()
def cron_list(farm: str | None, as_json: bool) -> None:
    """List the scheduled jobs: schedule, last run, its status, next run.

    \b
    Example:
      farm cron -f staging
    """
    target = resolve(farm)
    _runner(target, cron_host(target), "list", *(["--json"] if as_json else []))


@click.command("cron:history")
@farm_option
@click.argument("job", required=False)
@click.option("-n", "count", type=click.IntRange(min=1), default=50, show_default=True, help="Runs to show.")
@json_option()
def cron_history(farm: str | None, job: str | None, count: int, as_json: bool) -> None:
    """Show past runs, newest first: start, duration, status, exit status, release.

    \b
    Example:
      farm cron:history -f staging
      farm cron:history -f staging send-digests -n 10
    """
    target = resolve(farm)
    if job is not None:
        check_job(target, job)
    args = ["history", *([job] if job else []), "-n", str(count), *(["--json"] if as_json else [])]
    _runner(target, cron_host(target), *args)


@click.command("cron:logs")
@farm_option
@click.argument("job")
@click.argument("run", required=False, type=click.IntRange(min=1))
def cron_logs(farm: str | None, job: str, run: int | None) -> None:
    """Print the output of a job's run (default: its last run).

    \b
    Example:
      farm cron:logs -f staging send-digests
      farm cron:logs -f staging send-digests 41
    """
    target = resolve(farm)
    check_job(target, job)
    _runner(target, cron_host(target), "logs", job, *([str(run)] if run else []))


@click.command("cron:run")
@farm_option
@click.argument("job")
def cron_run(farm: str | None, job: str) -> None:
    """Run a job now on the cron host, its output streamed; exits with the job's status.

    A job that does not allow overlaps and is running already is refused (exit 75).

    \b
    Example:
      farm cron:run -f staging send-digests
    """
    target = resolve(farm)
    check_job(target, job)
    _runner(target, cron_host(target), "run", job)


COMMANDS = (cron_list, cron_history, cron_logs, cron_run)
