"""The farm's scheduled jobs, as the CLI reaches them: which host is the active cron host, whether a
job name is one of the farm's jobs, and the command that runs the cron_scheduler role's runner
(`farmhand-cron`) there.

The active cron host is farmhand_cron_active_host as Ansible computes it (group_vars/all/cron.yml
picks the first host tagged cron); a job name is checked against `cron_scheduler_jobs` as Ansible
gives it to that host (farmhand.core.variables) before the host is asked.
"""

from __future__ import annotations

import re

from farmhand.core.errors import FarmError
from farmhand.core.inventory import Host
from farmhand.core.target import Target

JOB_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
RUNNER = "/usr/local/bin/farmhand-cron"


def active_host(target: Target) -> Host:
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
        jobs = target.var(active_host(target), "cron_scheduler_jobs") or []
    else:
        jobs = target.project.farm_var(target.farm, "cron_scheduler_jobs", [], role="cron") or []
    names = [j.get("name") for j in jobs if isinstance(j, dict)] if isinstance(jobs, list) else []
    if not names:
        where = f"farmhand_cron_jobs in group_vars/farm_{target.farm}/"
        raise FarmError(f"farm {target.farm!r} has no scheduled jobs ({where})")
    if job not in names:
        raise FarmError(f"unknown job {job!r} on farm {target.farm!r}: jobs are {', '.join(names)}")


def runner_command(target: Target, host: Host, *args: str) -> list[str]:
    """`sudo farmhand-cron ARGS`, the runner where Ansible put it on HOST (cron_scheduler_runner_path)."""
    runner = str(target.var(host, "cron_scheduler_runner_path", RUNNER))
    return ["sudo", runner, *args]
