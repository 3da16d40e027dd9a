"""Deploys and rollbacks: pick the commit, record the release, run playbooks/deploy.yml.

The work happens in the playbook (build on every app host, migrate once, switch `current`,
rolling restart of the web hosts). This module only checks the request before anything
changes, records the numbered release in SSM and turns the outcome into one clear line.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farmhand import app, aws, releases
from farmhand.errors import FarmError
from farmhand.releases import Release
from farmhand.runner import PlaybookResult, describe_failures, limit_for, playbook_command, run_playbook
from farmhand.target import Target

Say = Callable[[str], None]


class DeployFailed(Exception):
    """The playbook failed: the release is recorded as failed; exit code 1."""

    exit_code = 1


@dataclass
class Plan:
    """What a deploy or rollback will ship: checked before anything changes."""

    sha: str
    archive: Path
    description: str
    kind: str
    migrate: bool


def ssm_client(target: Target) -> Any:
    return aws.client("ssm", target.project.region)


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


def plan_deploy(target: Target, ref: str, repo_override: str | None) -> Plan:
    require_web_hosts(target)
    repo = app.app_repo(target.project, target.farm, repo_override)
    sha = app.resolve_ref(repo, ref)
    archive = app.archive(repo, sha, target.project.state_dir / "archives")
    subject = _commit_subject(repo, sha)
    description = f"Deploy {sha[:7]}" + (f": {subject}" if subject else "")
    return Plan(sha=sha, archive=archive, description=description, kind="deploy", migrate=True)


def plan_rollback(
    target: Target, history: list[Release], label: str | None, repo_override: str | None
) -> Plan:
    """Roll back to release LABEL (default: the one before the current one): code only, no migrations."""
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
    repo = app.app_repo(target.project, target.farm, repo_override)
    archive = app.archive(repo, wanted.sha, target.project.state_dir / "archives")
    return Plan(
        sha=wanted.sha,
        archive=archive,
        description=f"Rollback to {wanted.label}",
        kind="rollback",
        migrate=False,
    )


def run(target: Target, plan: Plan, say: Say) -> Release:
    """Record the release, run the deploy playbook, record how it ended."""
    ssm = ssm_client(target)
    release = releases.create(ssm, target.farm, plan.sha, plan.description, kind=plan.kind)
    say(f"Recorded {release.label}: {plan.description}")
    extra = {
        "farmhand_release": {
            "name": release.dir_name,
            "label": release.label,
            "sha": plan.sha,
            "archive": str(plan.archive),
            "migrate": plan.migrate,
        }
    }
    result = _run_deploy_playbook(target, extra)
    if result.ok:
        releases.finish(ssm, target.farm, release, "succeeded")
        return release
    where = describe_failures(result)
    releases.finish(ssm, target.farm, release, "failed", f"failed on {where}")
    raise DeployFailed(f"{release.label} failed on {where}; `farm releases -f {target.farm}` shows what runs")


def _run_deploy_playbook(target: Target, extra: dict[str, Any]) -> PlaybookResult:
    state = target.project.state_dir
    state.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="release-", suffix=".json", dir=state)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(extra, handle)
        cmd = playbook_command(
            target.project, "deploy.yml", limit_for(target.farm), extra_args=["-e", f"@{path}"]
        )
        return run_playbook(target.project, cmd, target.env)
    finally:
        Path(path).unlink(missing_ok=True)
