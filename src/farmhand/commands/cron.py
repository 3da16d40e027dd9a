"""`farm cron`, `cron:history`, `cron:logs`, `cron:run`: the farm's scheduled jobs, Heroku Scheduler's way.

Each command runs the cron_scheduler role's runner (`farmhand-cron`) on the farm's active cron
host over SSH, as `farm psql` reaches the database: same user, key and options as Ansible. Which
host that is, and whether a job name is one of the farm's jobs, is farmhand.core.cron's to say.
"""

from __future__ import annotations

import click

from farmhand.commands._options import farm_option, json_option
from farmhand.core import cron, ssh
from farmhand.core.inventory import Host
from farmhand.core.target import Target, resolve


def _runner(target: Target, host: Host, *args: str) -> None:
    """Run `sudo farmhand-cron ARGS` on the host, output passed through; exit with its status."""
    raise click.exceptions.Exit(
        ssh.run_interactive(target.env, host, cron.runner_command(target, host, *args))
    )


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
    _runner(target, cron.active_host(target), "list", *(["--json"] if as_json else []))


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
        cron.check_job(target, job)
    args = ["history", *([job] if job else []), "-n", str(count), *(["--json"] if as_json else [])]
    _runner(target, cron.active_host(target), *args)


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
    cron.check_job(target, job)
    _runner(target, cron.active_host(target), "logs", job, *([str(run)] if run else []))


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
    cron.check_job(target, job)
    _runner(target, cron.active_host(target), "run", job)


COMMANDS = (cron_list, cron_history, cron_logs, cron_run)
