"""The remote command of `farm run`: COMMAND in the app's current release, as the app's user, with
the app's environment (`app-env`, the env file every process of the app reads), as a shell runs it
(a single argument is a command line; several are words, each kept as it was given).

The release is the one `current` points at when the command starts (resolved once, so a deploy
switching `current` meanwhile does not move it); FARMHAND_RELEASE is its name (vN), as the web
processes have it.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from farmhand.core.inventory import Host
from farmhand.core.ssh import host_var

# Runs as the app's user: $1 is the app root, the rest the command (app-env, then the shell).
IN_RELEASE = (
    'root=$1; shift; cd -P "$root/current" 2>/dev/null'
    ' || { echo "farm run: no release is deployed on $(hostname) (no $root/current): farm deploy" >&2;'
    " exit 1; }; "
    'FARMHAND_RELEASE=$(cat RELEASE 2>/dev/null || basename "$PWD"); HOME=$root; '
    'export FARMHAND_RELEASE HOME; exec "$@"'
)


def shell_line(command: Sequence[str]) -> str:
    """The command line a shell on the host runs. One argument is a command line of its own, run as
    given, as Heroku's `run` does (`farm run -- 'echo $GREETING'` expands on the host). Several are
    the command's words: each one is quoted, so it reaches the command as it was given
    (`farm run -- bin/rails runner 'puts User.count'`: a shell that split it again would run
    `puts` alone and print an empty line)."""
    if len(command) == 1:
        return command[0]
    return shlex.join(command)


def release_command(host: Host, command: Sequence[str]) -> list[str]:
    """sudo -u APP sh -c IN_RELEASE ROOT app-env /bin/sh -c COMMAND."""
    user = str(host_var(host, "farmhand_app_user", "app"))
    root = str(host_var(host, "farmhand_app_root", "/srv/app"))
    env_exec = str(host_var(host, "farmhand_env_exec", "/usr/local/bin/app-env"))
    return [
        "sudo", "-n", "-u", user, "--", "/bin/sh", "-c", IN_RELEASE, "farm-run", root,
        env_exec, "/bin/sh", "-c", shell_line(command),
    ]  # fmt: skip
