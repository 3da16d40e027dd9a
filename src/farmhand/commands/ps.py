"""`farm ps`, `ps:scale`, `ps:autoscale`: the farm's hosts and processes, and how many there are.

Heroku scales dynos; Farmhand scales the hosts of a process type (`web`: Unicorn, `worker`:
Sidekiq), through the role's Auto Scaling group on AWS, tagged instances where there is none, or
the local farm's containers. The logic is in farmhand.core.scaling: the request's checks (plan),
where hosts come from (instances), the steps around the playbooks this module picks (steps), the
backlog policy and drain hook (autoscale).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from farmhand.commands import _playbooks
from farmhand.commands._options import fail, farm_option, json_option
from farmhand.commands._output import info, out, show, step, table
from farmhand.core import aws, deploy, processes
from farmhand.core.errors import FarmError
from farmhand.core.hosts import in_role_order
from farmhand.core.project import Project
from farmhand.core.releases import Release
from farmhand.core.runner import describe_failures
from farmhand.core.scaling import autoscale, steps
from farmhand.core.scaling.instances import fleet_for
from farmhand.core.scaling.plan import parse_requests
from farmhand.core.target import Target, resolve


@click.command("ps")
@farm_option
@json_option("Print JSON instead of a table.")
@click.option("--refresh", is_flag=True, help="Flush the inventory cache first.")
@click.option("--no-processes", is_flag=True, help="List the hosts only; do not log in to count processes.")
def ps(farm: str | None, as_json: bool, refresh: bool, no_processes: bool) -> None:
    """List the farm's hosts by role, and its processes: Unicorn workers, Sidekiq busy/queued.

    The processes are read over SSH from the web and worker hosts, as Ansible reaches them.

    \b
    Example:
      farm ps -f staging
      farm ps -f staging --json
    """
    target = resolve(farm, refresh=refresh)
    hosts = in_role_order(target)
    app_hosts = [h for h in hosts if {"web", "worker"} & set(h.roles) and h.state == "running"]
    found = [] if no_processes else processes.probe_all(target, app_hosts)
    payload: dict[str, Any] = {
        "farm": target.farm,
        "local": target.local,
        "hosts": [h.as_dict() for h in hosts],
    }
    if not no_processes:
        payload["processes"] = {
            "by_type": processes.summary_by_type(found),
            "by_host": [f.as_dict() for f in found],
        }

    def text() -> None:
        where = "local farm" if target.local else f"AWS {target.project.region}"
        out.print(f"=== {target.farm} ({where}): {len(hosts)} hosts", markup=False)
        if found:
            _print_processes(found)
        rows = table("ROLE", "HOST", "INSTANCE", "PRIVATE IP", "STATE", "TYPE")
        for host in hosts:
            rows.add_row(
                ",".join(host.roles),
                host.name,
                host.instance_id,
                host.private_ip,
                host.state,
                host.instance_type,
            )
        out.print(rows)

    show(as_json, payload, text)


def _print_processes(found: Sequence[processes.HostProcesses]) -> None:
    summary = processes.summary_by_type(found)
    if "web" in summary:
        web = summary["web"]
        out.print(f"web: {web['unicorn_workers']} Unicorn workers on {web['hosts']} hosts", markup=False)
    if "worker" in summary:
        w = summary["worker"]
        queued = (
            "queued: unknown"
            if w["queued_total"] is None
            else (
                f"{w['queued_total']} queued"
                + (" (" + ", ".join(f"{q} {n}" for q, n in w["queued"].items()) + ")" if w["queued"] else "")
                + f", oldest {w['oldest_job_age']:.0f}s"
            )
        )
        out.print(
            f"worker: {w['sidekiq_processes']} Sidekiq processes on {w['hosts']} hosts, "
            f"{w['busy']} of {w['threads']} threads busy; {queued}",
            markup=False,
        )
        for name, count in w["services"].items():
            out.print(f"{name}: {count} processes on {w['hosts']} hosts", markup=False)
    for item in found:
        if item.error:
            out.print(f"  {item.host.name}: processes unknown ({item.error})", markup=False)
            continue
        parts = [item.release or "no release"]
        if "web" in item.host.roles:
            parts.append(f"{item.unicorn_workers} Unicorn workers")
        if "worker" in item.host.roles:
            quiet = sum(1 for p in item.sidekiq if p["quiet"])
            parts.append(f"{len(item.sidekiq)} Sidekiq processes" + (f" ({quiet} quiet)" if quiet else ""))
            parts.append(f"{item.sidekiq_busy} of {item.sidekiq_threads} busy")
            parts += [f"{count} {name}" for name, count in item.services.items()]
        out.print(f"  {item.host.name}: {', '.join(parts)}", markup=False)
    out.print("", markup=False)


@click.command("ps:scale")
@farm_option
@click.argument("counts", nargs=-1, metavar="TYPE=COUNT...")
@click.option("--repo", metavar="PATH", help="The app's git work tree. Default: farmhand_app_repo.")
def ps_scale(farm: str | None, counts: Sequence[str], repo: str | None) -> None:
    """Scale a process type to COUNT hosts: worker=N, web=M.

    New hosts are converged and get the current release before they take work. Hosts leaving
    are taken out of work first: workers are quieted and their running jobs finish; web hosts
    leave the load balancer. On AWS through the role's Auto Scaling group (tags farm, role), or
    by launching tagged instances like the existing ones; on a local farm, containers.

    \b
    Example:
      farm ps:scale -f staging worker=3
      farm ps:scale -f staging worker=1 web=2
    """
    wanted = parse_requests(counts, Project.locate().roles)  # before any AWS call
    target = resolve(farm)
    fleets = fleet_for(target)
    changes = steps.plan(target, wanted, fleets)
    if any(c.adds for c in changes):
        current = deploy.current_release(deploy.release_history(target))
        if current is not None and current.sha:
            deploy.release_archive(target, current, repo)  # checked before anything changes
    how = fleets(changes[0].role).description
    step(f"Scaling {target.farm}: {', '.join(c.describe() for c in changes)} ({how})")
    target = steps.run(target, changes, fleets, _ScalePlaybooks(repo), say=info)
    now = ", ".join(f"{c.role}={len(target.hosts_with_role(c.role))}" for c in changes)
    step(f"{target.farm} runs {now}")


class _ScalePlaybooks:
    """ps:scale's runs: site.yml converges, deploy.yml ships the running release, scale_in.yml drains."""

    def __init__(self, repo: str | None) -> None:
        self.repo = repo

    def converge(self, target: Target, hosts: Sequence[str], hint: str = "") -> None:
        _playbooks.playbook_or_exit(target, "site.yml", _playbooks.hosts_limit(hosts), hint=hint)

    def ship(self, target: Target, release: Release, hosts: Sequence[str], hint: str) -> None:
        extra_vars = deploy.ship_vars(target, release, self.repo)
        result = _playbooks.run(target, "deploy.yml", _playbooks.hosts_limit(hosts), extra_vars=extra_vars)
        if not result.ok:
            raise fail(f"deploying {release.label} failed on {describe_failures(result)}{hint}")

    def drain(self, target: Target, hosts: Sequence[str]) -> None:
        _playbooks.playbook_or_exit(target, "scale_in.yml", _playbooks.hosts_limit(hosts))


@click.command("ps:autoscale")
@farm_option
@click.argument("process_type", required=False, metavar="[TYPE]")
@click.option("--min", "minimum", type=int, help="Fewest hosts.")
@click.option("--max", "maximum", type=int, help="Most hosts.")
@click.option("--target", "target_value", type=float, help="Queued jobs per worker host to aim at.")
@click.option(
    "--off", is_flag=True, help="Remove the policy and the drain hook (the hosts stay as they are)."
)
@json_option()
def ps_autoscale(
    farm: str | None,
    process_type: str | None,
    minimum: int | None,
    maximum: int | None,
    target_value: float | None,
    off: bool,
    as_json: bool,
) -> None:
    """Scale workers on the queue's backlog: a target-tracking policy on the worker group.

    The workers put the backlog per instance (queued jobs / worker hosts) into CloudWatch every
    minute (role sidekiq_metrics); the policy keeps it near --target between --min and --max.
    A lifecycle hook (farmhand-drain) makes the group wait, on a scale-in, until the leaving
    host's Sidekiq jobs have finished (up to their shutdown timeout). --off removes both.
    Without options, shows the policy. A local farm gets a group in moto standing for its workers.

    \b
    Example:
      farm ps:autoscale -f staging worker --min 1 --max 10 --target 5
      farm ps:autoscale -f staging
      farm ps:autoscale -f staging worker --off
    """
    role = process_type or "worker"
    setting = any(v is not None for v in (minimum, maximum, target_value))
    autoscale.check_request(role, off, setting, minimum, maximum, target_value)
    target = resolve(farm)
    asg = aws.client("autoscaling", target.project.region, target.env)
    group = autoscale.find_group(asg, target.farm, role)
    if off:
        _off(target, asg, group, role)
    elif not setting:
        _show(target, asg, group, role, as_json)
    else:
        assert minimum is not None and maximum is not None and target_value is not None
        _enable(target, asg, group, role, minimum, maximum, target_value)


def _enable(
    target: Target,
    asg: Any,
    group: dict[str, Any] | None,
    role: str,
    minimum: int,
    maximum: int,
    target_value: float,
) -> None:
    """Put the drain hook, then the backlog policy, on ROLE's group (a local farm's made in moto)."""
    timeout = autoscale.hook_timeout(target.project, target.farm)  # read before anything changes
    group = _autoscaled_group(target, asg, group, role, minimum, maximum)
    # The hook first: the policy never scales in without it.
    hooked = autoscale.put_drain_hook(asg, group, timeout)
    autoscale.put_backlog_policy(asg, group, target.farm, role, minimum, maximum, target_value)
    step(
        f"Autoscaling {role} of {target.farm} between {minimum} and {maximum} hosts, "
        f"{target_value:g} queued jobs per host ({group['AutoScalingGroupName']})"
    )
    info(
        f"Scale-in drains first: lifecycle hook {autoscale.HOOK_NAME}, heartbeat timeout {timeout}s"
        + ("" if hooked else " (unchanged)")
    )


def _autoscaled_group(
    target: Target, asg: Any, group: dict[str, Any] | None, role: str, minimum: int, maximum: int
) -> dict[str, Any]:
    """ROLE's group: the one found on AWS; on a local farm, made in moto for its hosts if none is.
    A local farm's hosts must already number between MINIMUM and MAXIMUM."""
    hosts = target.hosts_with_role(role)
    if group is None:
        if not target.local:
            raise FarmError(
                f"farm {target.farm!r} has no Auto Scaling group tagged farm={target.farm}, role={role}: "
                "create one with a launch template carrying those tags"
            )
        if not minimum <= len(hosts) <= maximum:
            raise FarmError(
                f"the local farm runs {len(hosts)} {role} hosts, outside --min {minimum} --max {maximum}: "
                f"farm ps:scale -f {target.farm} {role}=N first"
            )
        ec2 = aws.client("ec2", target.project.region, target.env)
        group = autoscale.create_local_group(
            asg, ec2, target.farm, role, [h.instance_id for h in hosts], minimum, maximum
        )
        info(
            f"Created {group['AutoScalingGroupName']} in moto for the local farm's {len(hosts)} {role} hosts"
        )
    elif target.local and not minimum <= len(hosts) <= maximum:
        raise FarmError(
            f"the local farm runs {len(hosts)} {role} hosts, outside --min {minimum} --max {maximum}"
        )
    return group


def _off(target: Target, asg: Any, group: dict[str, Any] | None, role: str) -> None:
    """Remove the policy and the drain hook; an error if the group had neither."""
    policy = group is not None and autoscale.delete_backlog_policy(asg, group)
    hook = group is not None and autoscale.delete_drain_hook(asg, group)
    if group is None or not (policy or hook):
        raise FarmError(f"farm {target.farm!r} has no autoscaling policy on {role}: nothing to remove")
    step(f"Autoscaling of {role} is off ({group['AutoScalingGroupName']} keeps its hosts)")
    if hook:
        info(f"Removed the lifecycle hook {autoscale.HOOK_NAME}: the group no longer waits for a drain")


def _show(target: Target, asg: Any, group: dict[str, Any] | None, role: str, as_json: bool) -> None:
    policy = autoscale.describe(asg, group, role) if group else None

    def text() -> None:
        out.print(f"=== {target.farm} autoscaling", markup=False)
        if policy is None or policy.target is None:
            where = f" ({policy.group}: min {policy.minimum}, max {policy.maximum})" if policy else ""
            info(f"{role}: off{where}; farm ps:autoscale -f {target.farm} {role} --min 1 --max 10 --target 5")
        else:
            out.print(
                f"{role}: {policy.minimum}..{policy.maximum} hosts (now {policy.desired}), "
                f"target {policy.target:g} on {policy.metric} ({policy.group})",
                markup=False,
            )
        if policy is not None:
            out.print(f"  {_hook_line(policy)}", markup=False)

    show(as_json, {"farm": target.farm, role: policy.as_dict() if policy else None}, text)


def _hook_line(policy: autoscale.Policy) -> str:
    if policy.hook_timeout is None:
        return f"scale-in by the group does not wait for jobs: no lifecycle hook {autoscale.HOOK_NAME}"
    return (
        f"scale-in drains first: lifecycle hook {autoscale.HOOK_NAME} "
        f"(heartbeat timeout {policy.hook_timeout}s, then {autoscale.HOOK_RESULT})"
    )


COMMANDS = (ps, ps_scale, ps_autoscale)
