"""SSH to a farm host the way Ansible reaches it: same user, key and options (from the environment
`farm local env` or the user's ~/.ssh/config set), so `farm psql` works wherever Ansible does."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence

from farmhand.errors import FarmError
from farmhand.inventory import Host
from farmhand.project import Project


def ssh_command(env: Mapping[str, str], user: str, host: Host, remote: Sequence[str], tty: bool) -> list[str]:
    """ssh -t|-T [-i KEY] [ANSIBLE_SSH_COMMON_ARGS] USER@ADDRESS -- REMOTE (quoted for the remote shell)."""
    cmd = ["ssh", "-o", "LogLevel=ERROR"]
    cmd.append("-t" if tty else "-T")
    key = env.get("ANSIBLE_PRIVATE_KEY_FILE")
    if key:
        cmd += ["-i", key]
    cmd += shlex.split(env.get("ANSIBLE_SSH_COMMON_ARGS", ""))
    cmd += [f"{user}@{host.private_ip}", "--", shlex.join(remote)]
    return cmd


def run_interactive(
    project: Project, farm: str, env: Mapping[str, str], host: Host, remote: Sequence[str]
) -> int:
    """Run REMOTE on HOST with this terminal (a TTY when stdin is one, else stdin passed through)."""
    user = str(project.farm_var(farm, "ansible_user", "admin"))
    try:
        return subprocess.call(ssh_command(env, user, host, remote, sys.stdin.isatty()), env=dict(env))
    except FileNotFoundError:
        raise FarmError("ssh is not installed: install openssh-client") from None
    except KeyboardInterrupt:
        return 130
