"""The `farm` command: Heroku's verbs for farms of EC2 hosts. Commands only; the work is elsewhere."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import click
from rich.table import Table

from farmhand import (
    __version__,
    backups_cli,
    config_cli,
    cron_cli,
    deploy,
    drift,
    help_cli,
    logs_cli,
    pg_cli,
    ps_cli,
    run_cli,
    ssh_cli,
)
from farmhand.console import error, info, out, progress_on_stderr, step
from farmhand.errors import FarmError
from farmhand.local import hostfix
from farmhand.local.farm import LocalFarm
from farmhand.local.image import ensure_image
from farmhand.local.podman import require
from farmhand.local.shape import parse_args
from farmhand.options import fail, farm_option, role_option
from farmhand.project import Project, validate_farm
from farmhand.runner import (
    CALLBACK_NAME,
    PlaybookResult,
    describe_failures,
    limit_for,
    playbook_command,
    run_module,
    run_playbook,
)
from farmhand.target import Target, resolve


class HerokuGroup(click.Group):
    """Lists every command, subcommands included (`local up`), as Heroku's help does."""

    def list_all(self, ctx: click.Context) -> list[tuple[str, click.Command]]:
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is None or cmd.hidden:
                continue
            if isinstance(cmd, click.Group):
                rows += [(f"{name} {sub}", cmd.commands[sub]) for sub in cmd.list_commands(ctx)]
            else:
                rows.append((name, cmd))
        return rows

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, cmd.get_short_help_str(80)) for name, cmd in self.list_all(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=HerokuGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="farm")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
def cli(debug: bool) -> None:
    """Heroku's workflow on your own EC2 hosts, driven by Ansible.

    Hosts are EC2 instances tagged `farm` and `role`; every command takes -f FARM.
    A local farm (Podman + moto) behaves like a real one: `farm local up -f demo`.
    """


# -- info ----------------------------------------------------------------------------------------


@cli.command("info")
@farm_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info_cmd(farm: str | None, as_json: bool) -> None:
    """Show the farm: where it runs, its hosts by role, the current release, the web URL.

    \b
    Example:
      farm info -f staging
    """
    target = resolve(farm)
    current = deploy.current_release(deploy.release_history(target))
    counts = {role: len(target.hosts_with_role(role)) for role in target.project.roles}
    urls = _app_urls(target)
    if as_json:
        payload = {
            "farm": target.farm,
            "local": target.local,
            "region": target.project.region,
            "hosts": len(target.hosts),
            "roles": {r: n for r, n in counts.items() if n},
            "release": current.as_dict() if current else None,
            "web_urls": urls,
        }
        click.echo(json.dumps(payload, indent=2))
        return
    out.print(f"=== {target.farm}", markup=False)
    rows = [
        ("Location", "local farm (Podman, moto)" if target.local else f"AWS {target.project.region}"),
        ("Hosts", f"{len(target.hosts)} (" + ", ".join(f"{r} {n}" for r, n in counts.items() if n) + ")"),
        (
            "Release",
            f"{current.label} {current.sha[:7]} {current.description} ({current.user}, {current.created_at})"
            if current
            else "none yet: farm deploy",
        ),
        ("Web URL", ", ".join(urls) or "-"),
    ]
    for key, value in rows:
        out.print(f"{key + ':':<10} {value}", markup=False)


# -- converge ------------------------------------------------------------------------------------


@cli.command("converge")
@farm_option
@role_option("Only the hosts carrying this role.")
@click.option("--check", is_flag=True, help="Report what would change (drift); change nothing.")
@click.option("--diff", is_flag=True, help="Show the changes made (or, with --check, that would be).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the report (per host, the tasks that changed or would) as JSON; progress goes to stderr.",
)
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
            click.echo(json.dumps(report.as_dict(), indent=2))
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
    summary = Table(box=None, show_edge=False, pad_edge=False)
    for column in ("HOST", "OK", "CHANGED", "FAILED", "UNREACHABLE", "SKIPPED"):
        summary.add_column(column)
    for host, counts in sorted(result.recap.items()):
        summary.add_row(
            host, *(str(counts.get(k, 0)) for k in ("ok", "changed", "failed", "unreachable", "skipped"))
        )
    step("Summary")
    out.print(summary)


# -- deploys and releases ------------------------------------------------------------------------


def _run_release(target: Target, plan: deploy.Plan) -> None:
    hosts = {h.name for h in target.hosts if set(h.roles) & set(target.project.app_roles)}
    step(f"{plan.description} to {target.farm} ({len(hosts)} app hosts)")
    try:
        release = deploy.run(target, plan, say=info)
    except deploy.DeployFailed as exc:
        raise fail(str(exc)) from None
    step(f"Released {release.label} ({plan.sha[:7]}) to {target.farm}")
    for url in _app_urls(target):
        info(f"The app answers at {url}")


def _app_urls(target: Target) -> list[str]:
    """The local farm's load balancer URLs, or farmhand_web_url from group_vars for a farm on AWS."""
    if target.local:
        return LocalFarm(target.project, target.farm).app_urls()
    url = target.project.farm_var(target.farm, "farmhand_web_url")
    return [url] if url else []


@cli.command("deploy")
@farm_option
@click.option("--ref", default="HEAD", show_default=True, help="Branch, tag or commit of the app to deploy.")
@click.option("--repo", metavar="PATH", help="The app's git work tree. Default: farmhand_app_repo.")
@click.option("--force", is_flag=True, help="Deploy even if the farm already runs this commit.")
def deploy_cmd(farm: str | None, ref: str, repo: str | None, force: bool) -> None:
    """Deploy a commit of the app: build on every app host, migrate, switch, restart.

    Every deploy is a new numbered release (`farm releases`). Migrations run once,
    before the switch; web hosts restart one at a time without dropping a request.
    A failed build or migration leaves the running release as it was.

    \b
    Example:
      farm deploy -f staging
      farm deploy -f staging --ref v2.3.1
    """
    target = resolve(farm)
    plan = deploy.plan_deploy(target, ref, repo)
    current = deploy.current_release(deploy.release_history(target))
    if current is not None and current.sha == plan.sha and not force:
        info(f"{target.farm} already runs {plan.sha[:7]} as {current.label}: nothing to deploy")
        info("(--force deploys it again)")
        return
    _run_release(target, plan)


@cli.command("releases")
@farm_option
@click.option(
    "-n", "--num", "limit", type=click.IntRange(min=1), default=15, show_default=True, help="How many."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def releases_cmd(farm: str | None, limit: int, as_json: bool) -> None:
    """List the farm's releases, newest first.

    \b
    Example:
      farm releases -f staging
    """
    target = resolve(farm)
    history = deploy.release_history(target)
    current = deploy.current_release(history)
    shown = list(reversed(history))[:limit]
    if as_json:
        rows = [{**r.as_dict(), "current": r is current} for r in shown]
        click.echo(json.dumps({"farm": target.farm, "releases": rows}, indent=2))
        return
    out.print(f"=== {target.farm} Releases", markup=False)
    if not shown:
        info("no releases yet: `farm deploy` makes the first")
        return
    table = Table(box=None, show_edge=False, pad_edge=False)
    for column in ("", "VERSION", "STATUS", "COMMIT", "DESCRIPTION", "BY", "CREATED"):
        table.add_column(column)
    for r in shown:
        table.add_row(
            "*" if r is current else "", r.label, r.status, r.sha[:7], r.description, r.user, r.created_at
        )
    out.print(table)


@cli.command("rollback")
@farm_option
@click.argument("release", required=False, metavar="[vN]")
@click.option("--repo", metavar="PATH", help="The app's git work tree. Default: farmhand_app_repo.")
def rollback_cmd(farm: str | None, release: str | None, repo: str | None) -> None:
    """Go back to an earlier release's code, as a new release (no migrations run).

    Without vN, goes back to the release before the current one.

    \b
    Example:
      farm rollback -f staging
      farm rollback -f staging v41
    """
    target = resolve(farm)
    history = deploy.release_history(target)
    _run_release(target, deploy.plan_rollback(target, history, release, repo))


# -- restart and maintenance ---------------------------------------------------------------------

RESTARTABLE = {"web": "restart.yml"}


@cli.command("restart")
@farm_option
@role_option("The role whose processes to restart.", default="web", show_default=True)
def restart_cmd(farm: str | None, role: str) -> None:
    """Restart the farm's processes onto the current release, one host at a time.

    Web hosts leave the load balancer, restart without dropping a request, and come back.

    \b
    Example:
      farm restart -f staging
    """
    target = resolve(farm)
    target.project.validate_role(role)
    if role not in RESTARTABLE:
        raise FarmError(
            f"role {role!r} has no processes to restart: restartable roles are {', '.join(RESTARTABLE)}"
        )
    hosts = target.hosts_with_role(role)
    if not hosts:
        raise FarmError(f"farm {target.farm!r} has no hosts with role {role!r}")
    step(f"Restarting {len(hosts)} {role} hosts of {target.farm}, one at a time")
    _playbook_or_exit(target, RESTARTABLE[role], limit_for(target.farm, role))
    step(f"Restarted {', '.join(h.name for h in hosts)}")


def _playbook_or_exit(target: Target, playbook: str, limit: str, *extra: str) -> None:
    result = run_playbook(
        target.project, playbook_command(target.project, playbook, limit, extra_args=extra), target.env
    )
    if not result.ok:
        raise fail(f"{playbook} failed on {describe_failures(result)}")


def _web_hosts(target: Target) -> list[str]:
    hosts = [h.name for h in target.hosts_with_role("web")]
    if not hosts:
        raise FarmError(f"farm {target.farm!r} has no web hosts: maintenance mode is served by them")
    return hosts


def _set_maintenance(farm: str | None, on: bool) -> None:
    target = resolve(farm)
    hosts = _web_hosts(target)
    word = "on" if on else "off"
    step(f"Turning maintenance mode {word} for {target.farm} ({len(hosts)} web hosts)")
    _playbook_or_exit(
        target, "maintenance.yml", limit_for(target.farm, "web"), "-e", f"farmhand_maintenance={on}"
    )
    step(f"Maintenance mode is {word}")


@cli.command("maintenance:on")
@farm_option
def maintenance_on(farm: str | None) -> None:
    """Answer 503 (with Retry-After) to every request but the health check.

    \b
    Example:
      farm maintenance:on -f staging
    """
    _set_maintenance(farm, True)


@cli.command("maintenance:off")
@farm_option
def maintenance_off(farm: str | None) -> None:
    """Serve the app again.

    \b
    Example:
      farm maintenance:off -f staging
    """
    _set_maintenance(farm, False)


@cli.command("maintenance")
@farm_option
def maintenance_status(farm: str | None) -> None:
    """Show whether maintenance mode is on.

    \b
    Example:
      farm maintenance -f staging
    """
    target = resolve(farm)
    hosts = _web_hosts(target)
    found = run_module(
        target.project,
        target.env,
        limit_for(target.farm, "web"),
        "ansible.builtin.stat",
        "path={{ rails_unicorn_maintenance_file }} get_checksum=false",
    )
    states = {h: ("on" if found.get(h, {}).get("stat", {}).get("exists") else "off") for h in hosts}
    missing = [h for h in hosts if h not in found]
    if missing:
        raise fail(f"could not read maintenance mode on {', '.join(missing)}")
    if len(set(states.values())) == 1:
        click.echo(next(iter(states.values())))
    else:
        for host, state in sorted(states.items()):
            click.echo(f"{host}: {state}")


# -- config vars, PostgreSQL, backups, scheduled jobs, logs, run, ssh, help (farmhand.*_cli) -----

for _command in (
    *ps_cli.COMMANDS,
    *config_cli.COMMANDS,
    *pg_cli.COMMANDS,
    *backups_cli.COMMANDS,
    *cron_cli.COMMANDS,
    *logs_cli.COMMANDS,
    *run_cli.COMMANDS,
    *ssh_cli.COMMANDS,
    *help_cli.COMMANDS,
):
    cli.add_command(_command)


# -- local ---------------------------------------------------------------------------------------


@cli.group("local", cls=HerokuGroup)
def local() -> None:
    """The local farm: Podman containers as EC2 hosts, moto as the AWS API."""


@local.command("up")
@farm_option
@click.option(
    "--shape",
    "shapes",
    multiple=True,
    metavar="ROLE[,ROLE]=N",
    help="Hosts per role (repeatable). Default: farmhand_local_shape in group_vars.",
)
def local_up(farm: str | None, shapes: Sequence[str]) -> None:
    """Bring up a local farm (again: a no-op).

    \b
    Example:
      farm local up -f demo
      farm local up -f tiny --shape web=1 --shape worker,cron=1
    """
    project = Project.locate()
    name = validate_farm(farm)
    shape = parse_args(shapes) if shapes else project.farm_var(name, "farmhand_local_shape")
    step(f"Bringing up local farm {name}")
    # --shape starts over; without it the counts `farm ps:scale` set are kept.
    hosts = LocalFarm(project, name).up(shape, say=info, scaled={} if shapes else None)
    step(f"Local farm {name} is up: {len(hosts)} hosts")
    for host in hosts:
        info(f"{host.name:<28} {','.join(host.roles):<20} {host.ip}")
    for url in LocalFarm(project, name).app_urls():
        info(f"Load balancer at {url} (the app answers there once deployed: farm deploy -f {name})")
    info(f'Use it: farm ps -f {name}   (or for ansible: eval "$(farm local env -f {name})")')


@local.command("image")
def local_image() -> None:
    """Build the local farm's Debian image (once; cached) and apply the host fixes.

    \b
    Example:
      farm local image
    """
    project = Project.locate()
    require("podman")
    hostfix.ensure_host_ready()
    step(f"Image {ensure_image(project.state_dir / 'image')} is ready")


@local.command("down")
@farm_option
def local_down(farm: str | None) -> None:
    """Remove a local farm: containers, network, moto records, keys.

    \b
    Example:
      farm local down -f demo
    """
    project = Project.locate()
    name = validate_farm(farm)
    step(f"Removing local farm {name}")
    if LocalFarm(project, name).down(say=info):
        step(f"Local farm {name} is gone")
    else:
        info(f"no local farm {name!r} here: nothing to remove")


@local.command("env")
@farm_option
def local_env(farm: str | None) -> None:
    """Print `export` lines that point AWS and Ansible at a local farm.

    \b
    Example:
      eval "$(farm local env -f demo)"
      ansible-inventory --graph
    """
    project = Project.locate()
    click.echo(LocalFarm(project, validate_farm(farm)).shell_env(), nl=False)


# -- entry point ---------------------------------------------------------------------------------


def _find_ansible_beside_farm() -> None:
    """Ansible's commands are installed beside `farm` (the same venv): find them there even when
    the venv is not on PATH (`.venv/bin/farm ps`)."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", os.defpath).split(os.pathsep)
    if bin_dir not in path:
        os.environ["PATH"] = os.pathsep.join([*path, bin_dir])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI: user errors are one line on stderr with exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    _find_ansible_beside_farm()
    try:
        result = cli.main(args=args, prog_name="farm", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except FarmError as exc:
        error(str(exc))
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `farm`: the help itself
        exc.show()
        return exc.exit_code
    except click.UsageError as exc:  # one line too, naming the command's help
        where = exc.ctx.command_path if exc.ctx else "farm"
        error(f"{exc.format_message().rstrip('.')} (see `{where} --help`)")
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        error("aborted")
        return 130
    except KeyboardInterrupt:
        error("interrupted")
        return 130
    except Exception as exc:  # an unexpected bug: keep the traceback behind --debug
        if "--debug" in args:
            traceback.print_exc()
        else:
            error(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return 1
