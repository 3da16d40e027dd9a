"""How the commands start playbooks: the command picks the playbook and its hosts; farmhand.core
builds the variables and reads the result. Nothing in farmhand.core starts `ansible-playbook`.
A failed run is one line naming the hosts and tasks that failed (exit 1)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from farmhand.commands._options import fail
from farmhand.core import deploy
from farmhand.core.releases import Release
from farmhand.core.runner import PlaybookResult, describe_failures, limit_for, playbook_command, run_playbook
from farmhand.core.target import Target


def run(
    target: Target, playbook: str, limit: str, *extra: str, extra_vars: dict[str, Any] | None = None
) -> PlaybookResult:
    """Run PLAYBOOK on LIMIT, its progress streamed. EXTRA_VARS go through a file only the user reads
    (they may name paths and releases the command line need not show)."""
    if extra_vars is None:
        cmd = playbook_command(target.project, playbook, limit, extra_args=extra)
        return run_playbook(target.project, cmd, target.env)
    state = target.project.state_dir
    state.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="release-", suffix=".json", dir=state)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(extra_vars, handle)
        cmd = playbook_command(target.project, playbook, limit, extra_args=[*extra, "-e", f"@{path}"])
        return run_playbook(target.project, cmd, target.env)
    finally:
        Path(path).unlink(missing_ok=True)


def playbook_or_exit(target: Target, playbook: str, limit: str, *extra: str, hint: str = "") -> None:
    """Run PLAYBOOK on LIMIT; if it fails, stop with `PLAYBOOK failed on HOST (TASK)HINT` (exit 1)."""
    result = run(target, playbook, limit, *extra)
    if not result.ok:
        raise fail(f"{playbook} failed on {describe_failures(result)}{hint}")


def release_or_exit(
    target: Target,
    playbook: str,
    release: Release,
    extra_vars: dict[str, Any],
    hint: str = "",
    recover: Callable[[deploy.DeployFailed], str] | None = None,
) -> None:
    """Run PLAYBOOK on the farm with the variables `deploy.start*` gave for RELEASE, and record how
    it ended; if it failed, stop with the release's failure and HINT (exit 1), or with the line
    RECOVER gives once it has done what it does about the failure."""
    result = run(target, playbook, limit_for(target.farm), extra_vars=extra_vars)
    try:
        deploy.finish(target, release, result)
    except deploy.DeployFailed as exc:
        raise fail(recover(exc) if recover is not None else f"{exc}{hint}") from None


def hosts_limit(names: Sequence[str]) -> str:
    """An Ansible --limit naming these hosts."""
    return ",".join(sorted(names))
