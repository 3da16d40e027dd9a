"""`farm deploy`, `releases`, `rollback`: numbered releases of the app, Heroku's way."""

from __future__ import annotations

import click

from farmhand.commands import _playbooks
from farmhand.commands._options import farm_option, json_option
from farmhand.commands._output import info, out, show, step, table
from farmhand.core import app, deploy
from farmhand.core.errors import FarmError
from farmhand.core.releases import Release
from farmhand.core.runner import describe_failures, limit_for
from farmhand.core.target import Target, resolve


def _run_release(target: Target, plan: deploy.Plan, running: Release | None, repo: str | None) -> None:
    """Ship PLAN as a new release; RUNNING (the farm's current release) is what a failure after the
    switch puts back."""
    hosts = {h.name for h in target.hosts if set(h.roles) & set(target.project.app_roles)}
    step(f"{plan.description} to {target.farm} ({len(hosts)} app hosts)")
    release, extra_vars = deploy.start(target, plan, say=info)
    _playbooks.release_or_exit(
        target,
        "deploy.yml",
        release,
        extra_vars,
        recover=lambda failed: _put_back(target, release, running, failed, repo),
    )
    step(f"Released {release.label} ({plan.sha[:7]}) to {target.farm}")
    for url in app.app_urls(target):
        info(f"The app answers at {url}")


def _put_back(
    target: Target, release: Release, running: Release | None, failed: deploy.DeployFailed, repo: str | None
) -> str:
    """The failed deploy's one line, once every host is back on RUNNING if the switch of `current`
    had begun (hosts on the new release, one of them maybe out of the load balancer): deploy.yml
    again with the running release, as `ps:scale` ships it (no release phase, no new release)."""
    if not failed.switched or running is None:
        return str(failed)
    step(f"{release.label} failed after the switch began: putting every host back on {running.label}")
    try:
        extra_vars = deploy.ship_vars(target, running, repo)
    except FarmError as why:
        return f"{release.label} failed on {failed.where}, and {running.label} cannot be put back: {why}"
    back = _playbooks.run(target, "deploy.yml", limit_for(target.farm), extra_vars=extra_vars)
    if back.ok:
        return f"{release.label} failed on {failed.where}; every host is back on {running.label}"
    return (
        f"{release.label} failed on {failed.where}, and putting the hosts back on {running.label} failed on "
        f"{describe_failures(back)}: `farm ps -f {target.farm}` shows what each host runs"
    )


@click.command("deploy")
@farm_option
@click.option("--ref", default="HEAD", show_default=True, help="Branch, tag or commit of the app to deploy.")
@click.option("--repo", metavar="PATH", help="The app's git work tree. Default: farmhand_app_repo.")
@click.option("--force", is_flag=True, help="Deploy even if the farm already runs this commit.")
def deploy_cmd(farm: str | None, ref: str, repo: str | None, force: bool) -> None:
    """Deploy a commit of the app: build on every app host, release phase, switch, restart.

    Every deploy is a new numbered release (`farm releases`). The app's Procfile is
    checked first (its types against the farm's hosts and farmhand_formation). The
    release phase (the Procfile's `release`, else the migrations) runs once, before
    the switch; web hosts restart one at a time without dropping a request. A failed
    build or release phase leaves the running release as it was; a step that fails
    after the switch began puts every host back on the running release.

    \b
    Example:
      farm deploy -f staging
      farm deploy -f staging --ref v2.3.1
    """
    target = resolve(farm)
    plan = deploy.plan_deploy(target, ref, repo)
    current = deploy.current_release(deploy.release_history(target))
    same_app = current is not None and current.app in ("", plan.app)
    if current is not None and current.sha == plan.sha and same_app and not force:
        info(f"{target.farm} already runs {plan.sha[:7]} as {current.label}: nothing to deploy")
        info("(--force deploys it again)")
        return
    _run_release(target, plan, current, repo)


@click.command("releases")
@farm_option
@click.option(
    "-n", "--num", "limit", type=click.IntRange(min=1), default=15, show_default=True, help="How many."
)
@json_option("Print JSON instead of a table.")
def releases_cmd(farm: str | None, limit: int, as_json: bool) -> None:
    """List the farm's releases, newest first.

    An APP column shows which app each release is of when some are of another app than the
    farm's (farmhand_app_name was changed): those cannot be rolled back to.

    \b
    Example:
      farm releases -f staging
    """
    target = resolve(farm)
    history = deploy.release_history(target)
    current = deploy.current_release(history)
    shown = list(reversed(history))[:limit]
    rows = [{**r.as_dict(), "current": r is current} for r in shown]
    recorded = {r.app for r in shown} - {""}  # records older than the field have none
    foreign = bool(recorded - {app.app_name(target.project, target.farm)}) if recorded else False

    def text() -> None:
        out.print(f"=== {target.farm} Releases", markup=False)
        if not shown:
            info("no releases yet: `farm deploy` makes the first")
            return
        apps = ("APP",) if foreign else ()
        found = table("", "VERSION", "STATUS", "COMMIT", *apps, "DESCRIPTION", "BY", "CREATED")
        for r in shown:
            cells = (r.app or "?",) if foreign else ()
            found.add_row(
                "*" if r is current else "",
                r.label,
                r.status,
                r.sha[:7],
                *cells,
                r.description,
                r.user,
                r.created_at,
            )
        out.print(found)

    show(as_json, {"farm": target.farm, "releases": rows}, text)


@click.command("rollback")
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
    plan = deploy.plan_rollback(target, history, release, repo)
    _run_release(target, plan, deploy.current_release(history), repo)


COMMANDS = (deploy_cmd, releases_cmd, rollback_cmd)
