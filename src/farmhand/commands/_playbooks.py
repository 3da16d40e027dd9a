"""How a command starts a playbook: the command picks it, a failure is one line (exit 1)."""

from __future__ import annotations

from farmhand.commands._options import fail
from farmhand.core.runner import describe_failures, playbook_command, run_playbook
from farmhand.core.target import Target


def playbook_or_exit(target: Target, playbook: str, limit: str, *extra: str) -> None:
    result = run_playbook(
        target.project, playbook_command(target.project, playbook, limit, extra_args=extra), target.env
    )
    if not result.ok:
        raise fail(f"{playbook} failed on {describe_failures(result)}")
