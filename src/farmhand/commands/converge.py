"""`farm converge`: apply playbooks/site.yml to the farm, or report its drift (--check)."""

from __future__ import annotations

import sys

import click

from farmhand.commands._options import fail, farm_option, json_option, role_option
from farmhand.commands._output import info, out, print_json, progress_on_stderr, step, table
from farmhand.core import drift
from farmhand.core.errors import FarmError
from farmhand.core.runner import (
    CALLBACK_NAME,
    PlaybookResult,
    describe_failures,
    limit_for,
    playbook_command,
    run_playbook,
)
from farmhand.core.target import resolve


@click.command("converge")
@farm_option
@role_option("Only the hosts carrying this role.")
@click.option("--check", is_flag=True, help="Report what would change (drift); change nothing.")
@click.option("--diff", is_flag=True, help="Show the changes made (or, with --check, that would be).")
@json_option("Print the report (per host, the tasks that changed or would) as JSON; progress goes to stderr.")
def converge(farm: str | None, role: str | None, check: bool, diff: bool, as_json: bool) -> None:
    """Apply playbooks/site.yml to the farm (or one role of it).

    With --check, nothing changes and the exit code tells the drift: 0 none,
    3 some host would change, 1 a host failed or was unreachable.

    \b
    Example:
      farm converge -f staging
      farm converge -f staging --role web --check --diff
      farm converge -f staging --check --json > drift-staging.json
    """
    target = resolve(farm)
    if role is not None:
        target.project.validate_role(role)
        if not target.hosts_with_role(role):
            raise FarmError(f"farm {target.farm!r} has no hosts with role {role!r}")
    hosts = target.hosts_with_role(role) if role else target.hosts
    mode = " (check mode)" if check else ""
    with progress_on_stderr(as_json):
        step(f"Converging {len(hosts)} hosts of {target.farm}{' role ' + role if role else ''}{mode}")
        limit = limit_for(target.farm, role)
        cmd = playbook_command(target.project, "site.yml", limit, check=check, diff=diff)
        result = run_playbook(target.project, cmd, target.env, stream=sys.stderr if as_json else None)
        report = drift.build_report(target.farm, check, result.events, result.recap, result.returncode)
        _print_recap(result)
        if as_json:
            print_json(report.as_dict())
        if not result.ok:
            raise fail(f"{'check' if check else 'converge'} failed on {describe_failures(result)}")
        if (check or as_json) and not report.recorded:
            raise fail(f"no report: Ansible's {CALLBACK_NAME} callback recorded nothing")
        info(f"{len(result.recap)} hosts, {result.changed} changes{mode}")
        if check:
            info(report.summary())
    if report.exit_code == drift.Exit.DRIFT:
        raise click.exceptions.Exit(int(drift.Exit.DRIFT))


def _print_recap(result: PlaybookResult) -> None:
    summary = table("HOST", "OK", "CHANGED", "FAILED", "UNREACHABLE", "SKIPPED")
    for host, counts in sorted(result.recap.items()):
        summary.add_row(
            host, *(str(counts.get(k, 0)) for k in ("ok", "changed", "failed", "unreachable", "skipped"))
        )
    step("Summary")
    out.print(summary)


COMMANDS = (converge,)
