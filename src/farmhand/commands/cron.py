"""`farm cron`, `cron:history`, `cron:logs`, `cron:run`: the farm's scheduled jobs, Heroku Scheduler's way.

Each command runs the cron_scheduler role's runner (`farmhand-cron`) on the farm's active cron
host (farmhand_cron_active_host, else the first host tagged cron, as site.yml makes it) over SSH,
as `farm psql` reaches the database: same user, key and options as Ansible. A job name is
checked against the farm's `cron_scheduler_jobs` in group_vars before any host is asked.
"""

from __future__ import annotations

import re
from typing import Any

import click

from farmhand.commands._options import farm_option, json_option
from farmhand.core import ssh
from farmhand.core.errors import FarmError
from farmhand.core.inventory import Host
from farmhand.core.target import Target, resolve

JOB_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
RUNNER = "/usr/local/bin/farmhand-cron"


def _setting(target: Target, name: str, default: Any = None) -> Any:
    """A variable as the farm's cron hosts see it: group_vars farm_<farm>, then role_cron, then all."""
    project = target.project
    for group in (f"farm_{target.farm}", "role_cron", "all"):
        values = project.group_vars(group)
        if name in values:
            return values[name]
    return default


def _jobs(target: Target) -> Any:
    """The farm's jobs: farmhand_cron_jobs (or the role's cron_scheduler_jobs, set directly) from
    group_vars farm_<farm>, then role_cron, then all."""
    for group in (f"farm_{target.farm}", "role_cron", "all"):
        values = target.project.group_vars(group)
        for name in ("farmhand_cron_jobs", "cron_scheduler_jobs"):
            if name in values:
                return values[name]
    return []


def cron_host(target: Target) -> Host:
    """The active cron host, as site.yml makes it: the one farmhand_cron_active_host names (set it
    in group_vars to fail over to a standby), else the first of the farm's hosts tagged cron."""
    hosts = sorted(target.hosts_with_role("cron"), key=lambda h: h.name)
    if not hosts:
        raise FarmError(f"farm {target.farm!r} has no cron host (no host tagged cron)")
    active = _setting(target, "farmhand_cron_active_host")
    if not isinstance(active, str) or not active or "{{" in active:
        return hosts[0]  # the default template picks the first cron host by name, as here
    for host in hosts:
        if host.name == active:
            return host
    names = ", ".join(h.name for h in hosts)
    raise FarmError(
        f"farmhand_cron_active_host {active!r} is not a cron host of farm {target.farm!r}: {names}"
    )


def check_job(target: Target, job: str) -> None:
    """Refuse a job name that is malformed or not among the farm's jobs, before any host is asked."""
    if not JOB_NAME.match(job):
        raise FarmError(f"invalid job name {job!r}: jobs are named with a-z, 0-9, - and _")
    jobs = _jobs(target)
    if isinstance(jobs, str):
        return  # a template: the runner on the host says whether it knows the job
    names = [j.get("name") for j in jobs if isinstance(j, dict)]
    if not names:
        where = f"farmhand_cron_jobs in group_vars/farm_{target.farm}/"
        raise FarmError(f"farm {target.farm!r} has no scheduled jobs ({where})")
    if job not in names:
        raise FarmError(f"unknown job {job!r} on farm {target.farm!r}: jobs are {', '.join(names)}")


def _runner(target: Target, host: Host, *args: str) -> None:
    """Run `sudo farmhand-cron ARGS` on the host, output passed through; exit with its status."""
    runner = str(_setting(target, "cron_scheduler_runner_path", RUNNER))
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
