"""Releases: deploys, rollbacks and config changes. Pick the commit and the config, record the
release, give the playbook its variables, record how it ended.

The work happens in the playbooks the commands run (deploy.yml: build on every app host, write
the env file, run the release phase once, switch `current`, rolling restart of the web hosts;
config.yml: write the env file, rolling restart). This module only checks the request before anything changes,
records the numbered release in SSM (with the config version it runs with), builds the playbook's
variables and turns the outcome into one clear line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farmhand.core import app, aws, procfile, releases
from farmhand.core import config as config_vars
from farmhand.core.errors import FarmError
from farmhand.core.releases import Release
from farmhand.core.runner import PlaybookResult, describe_failures
from farmhand.core.target import Target

Say = Callable[[str], None]


# What deploy.yml's switch play hands over (set_stats): the hosts whose `current` it reached.
SWITCH_REACHED = "farmhand_switch_reached"


class DeployFailed(Exception):
    """The playbook failed: the release is recorded as failed; exit code 1. SWITCHED: the hosts the
    switch of `current` reached before it failed (none: every host still runs what it ran)."""

    exit_code = 1

    def __init__(self, message: str, where: str = "", switched: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.where = where
        self.switched = sorted(switched)


@dataclass
class Plan:
    """What a deploy or rollback will ship: checked before anything changes."""

    sha: str
    archive: Path
    description: str
    kind: str
    # Whether deploy.yml runs the release phase (the Procfile's `release`, else the migrations).
    release_phase: bool
    # The app it is of (farmhand_app_name) and its directory in the repository (core.app.Source).
    app: str
    repo: str
    # A rollback returns to its release's config too: that config version (None: leave the config).
    config_version: int | None = None


def ssm_client(target: Target) -> Any:
    return aws.client("ssm", target.project.region, target.env)


def release_history(target: Target) -> list[Release]:
    """The farm's releases, oldest first."""
    return releases.list_releases(ssm_client(target), target.farm)


def current_release(history: list[Release]) -> Release | None:
    """The release the farm runs: the newest that succeeded."""
    done = [r for r in history if r.status == "succeeded"]
    return done[-1] if done else None


def require_web_hosts(target: Target) -> None:
    if not target.hosts_with_role("web"):
        raise FarmError(f"farm {target.farm!r} has no web hosts: nothing to deploy to (see `farm ps`)")


def _commit_subject(repo: Path, sha: str) -> str:
    return app.git(repo, "log", "-1", "--format=%s", sha).stdout.strip()[:60]


def _archives(target: Target) -> Path:
    return target.project.state_dir / "archives"


def require_app_code(release: Release, source: app.Source, why: str) -> None:
    """RELEASE is of SOURCE's app (its name, when the record has one) and its commit is in SOURCE's
    repository: else a FarmError, WHY saying what to do about another app's release."""
    if release.app and release.app != source.name:
        raise FarmError(
            f"{release.label} is a release of the app {release.app!r}, "
            f"and the farm's app is now {source.name!r} (farmhand_app_name): {why}"
        )
    origin = release.repo if release.repo and release.repo != source.repo else ""
    source.require_commit(release.sha, f"{release.label}'s commit", origin=origin)


def check_contract(target: Target, source: app.Source, sha: str) -> None:
    """The app at commit SHA keeps Farmhand's contract (farmhand.core.procfile): its Procfile parses,
    its Sidekiq types' config files read, the farm's formation places its process types on hosts the
    farm has, every web or worker host runs one, and its Gemfile holds what Farmhand runs. Else a
    ProcfileError naming the commit, before anything changes."""
    try:
        contract = procfile.parse(app.read_file(source, sha, procfile.FILE))
        configs = {path: app.read_file(source, sha, path) for path in procfile.sidekiq_config_paths(contract)}
        rails_env = str(target.project.farm_var(target.farm, "farmhand_rails_env", "production"))
        contract = procfile.with_sidekiq_configs(contract, configs, rails_env)
        formation = target.project.farm_var(target.farm, "farmhand_formation", {})
        placements = procfile.formation(contract, formation)
        hosts = {role: [h.name for h in target.hosts_with_role(role)] for role in procfile.PROCESS_ROLES}
        procfile.check_hosts(placements, contract, hosts, target.farm)
        procfile.check_gemfile(contract, app.read_file(source, sha, "Gemfile"))
    except procfile.ProcfileError as exc:
        raise procfile.ProcfileError(f"{source.name} at {sha[:7]}: {exc}") from None


def plan_deploy(target: Target, ref: str, repo_override: str | None) -> Plan:
    require_web_hosts(target)
    source = app.app_source(target.project, target.farm, repo_override)
    sha = app.resolve_ref(Path(source.repo), ref)
    archive = app.archive(source, sha, _archives(target))  # checks the commit is the app's
    check_contract(target, source, sha)
    subject = _commit_subject(source.top, sha)
    description = f"Deploy {sha[:7]}" + (f": {subject}" if subject else "")
    return Plan(
        sha=sha,
        archive=archive,
        description=description,
        kind="deploy",
        release_phase=True,
        app=source.name,
        repo=source.repo,
    )


def plan_rollback(
    target: Target, history: list[Release], label: str | None, repo_override: str | None
) -> Plan:
    """Roll back to release LABEL (default: the one before the current one): code only, no release phase."""
    if label is not None:
        releases.parse_label(label)
    require_web_hosts(target)
    wanted = releases.find(history, label) if label is not None else None
    current = current_release(history)
    if current is None:
        raise FarmError(
            f"farm {target.farm!r} has no successful release to roll back from (see `farm releases`)"
        )
    if wanted is None:
        earlier = [r for r in history if r.status == "succeeded" and r.version < current.version]
        if not earlier:
            raise FarmError(
                f"{current.label} is the farm's first successful release: there is nothing to roll back to"
            )
        wanted = earlier[-1]
    elif wanted.status != "succeeded":
        raise FarmError(f"{wanted.label} {wanted.status}: roll back to a release that succeeded")
    elif wanted.version == current.version:
        raise FarmError(f"{wanted.label} is the current release: nothing to roll back")
    elif not wanted.sha:
        raise FarmError(f"{wanted.label} was a config change before the first deploy: it has no code")
    source = app.app_source(target.project, target.farm, repo_override)
    require_app_code(wanted, source, f"roll back to a release of {source.name!r}")
    check_contract(target, source, wanted.sha)
    if wanted.config_version is not None:  # readable before anything changes
        config_vars.load_version(ssm_client(target), target.farm, wanted.config_version)
    archive = app.archive(source, wanted.sha, _archives(target))
    return Plan(
        sha=wanted.sha,
        archive=archive,
        description=f"Rollback to {wanted.label}",
        kind="rollback",
        release_phase=False,
        app=source.name,
        repo=source.repo,
        config_version=wanted.config_version,
    )


def start(target: Target, plan: Plan, say: Say) -> tuple[Release, dict[str, Any]]:
    """Record the release and put its config in place; the release and deploy.yml's variables.
    The command runs the playbook, then `finish` records how it ended."""
    ssm = ssm_client(target)
    if plan.config_version is None:  # a deploy runs with the config as it is now
        version = config_vars.record_version(ssm, target.farm, config_vars.read(ssm, target.farm))
    else:
        version = plan.config_version
    release = releases.create(
        ssm,
        target.farm,
        plan.sha,
        plan.description,
        kind=plan.kind,
        config_version=version,
        app=plan.app,
        repo=plan.repo,
    )
    say(f"Recorded {release.label}: {plan.description}")
    if plan.config_version is not None:
        try:
            change = config_vars.restore(ssm, target.farm, plan.config_version)
        except FarmError as exc:
            releases.finish(ssm, target.farm, release, "failed", f"config not restored: {exc}")
            raise
        if not change.empty:
            say(f"Config vars as in config version {plan.config_version}: {config_vars.describe(change)}")
    extra = {
        "farmhand_release": {
            "name": release.dir_name,
            "label": release.label,
            "sha": plan.sha,
            "archive": str(plan.archive),
            "release_phase": plan.release_phase,
        }
    }
    return release, extra


def start_config_change(
    target: Target, change: config_vars.Change, say: Say
) -> tuple[Release, dict[str, Any]]:
    """Record a config release (the live config is already written); the release and config.yml's
    variables. The command runs the playbook, then `finish` records how it ended.

    The release runs the current release's code with the new config, as Heroku's does: it is of
    the app that release is of (before the first deploy: the farm's app, and no code).
    """
    ssm = ssm_client(target)
    version = config_vars.record_version(ssm, target.farm, change.after)
    current = current_release(release_history(target))
    description = config_vars.describe(change)
    if current is not None:
        sha, app_name, repo = current.sha, current.app, current.repo
    else:
        sha, app_name, repo = "", app.app_name(target.project, target.farm), ""
    release = releases.create(
        ssm,
        target.farm,
        sha,
        description,
        kind="config",
        config_version=version,
        app=app_name,
        repo=repo,
    )
    say(f"Recorded {release.label}: {description}")
    return release, {"farmhand_config_restart": current is not None}


def finish(target: Target, release: Release, result: PlaybookResult) -> Release:
    """Record how RELEASE's playbook ended: succeeded, or failed (DeployFailed, naming where)."""
    ssm = ssm_client(target)
    if result.ok:
        releases.finish(ssm, target.farm, release, "succeeded")
        return release
    where = describe_failures(result)
    releases.finish(ssm, target.farm, release, "failed", f"failed on {where}")
    raise DeployFailed(
        f"{release.label} failed on {where}; `farm releases -f {target.farm}` shows what runs",
        where,
        [str(h) for h in result.custom.get(SWITCH_REACHED) or []],
    )


# -- shipping the running release to new hosts (`farm ps:scale`) ---------------------------------


def release_archive(target: Target, release: Release, repo_override: str | None) -> Path:
    """The archive of RELEASE's commit: the one the deploy left in .farm/archives, else made again.
    Either way the release must be of the farm's app and its commit in the app's repository (--repo,
    else farmhand_app_repo). Checked before `ps:scale` changes anything."""
    source = app.app_source(target.project, target.farm, repo_override)
    require_app_code(release, source, f"`farm deploy` {source.name!r} before adding hosts")
    return app.archive(source, release.sha, _archives(target))


def ship_vars(target: Target, release: Release, repo_override: str | None) -> dict[str, Any]:
    """deploy.yml's variables to ship the running RELEASE to new hosts: build, env file, switch,
    start; no migrations, no new release recorded."""
    return {
        "farmhand_release": {
            "name": release.dir_name,
            "label": release.label,
            "sha": release.sha,
            "archive": str(release_archive(target, release, repo_override)),
            "release_phase": False,
        }
    }
