"""How to reach host X: SSH the way Ansible does, so nothing is configured twice.

A host's connection comes from its inventory variables (`ansible_host`, `ansible_user`,
`ansible_port`, `ansible_ssh_private_key_file`, `ansible_ssh_common_args`,
`ansible_ssh_extra_args`: the aws_ec2 inventory plus group_vars, with Ansible's precedence), and
where a host sets none, from the environment Ansible reads (`ANSIBLE_REMOTE_USER`,
`ANSIBLE_REMOTE_PORT`, `ANSIBLE_PRIVATE_KEY_FILE`, `ANSIBLE_SSH_COMMON_ARGS`,
`ANSIBLE_SSH_EXTRA_ARGS`: what `farm local env` exports). Jump hosts and proxies go in
`ansible_ssh_common_args` (`-o ProxyJump=bastion`), as Ansible documents: ssh and scp get them.

Every command that talks to a host (psql, cron, logs, backups, run, ssh, scp, the cutover) builds
its ssh or scp command line here.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from farmhand.core.errors import FarmError
from farmhand.core.inventory import Host
from farmhand.core.variables import render

# Options every ssh and scp call gets: quiet, and a new host's key accepted as ansible.cfg does.
BASE_OPTIONS = ("-o", "LogLevel=ERROR", "-o", "StrictHostKeyChecking=accept-new")

# (inventory variable, environment variable Ansible reads when the host sets none)
_SOURCES = {
    "user": ("ansible_user", "ANSIBLE_REMOTE_USER"),
    "port": ("ansible_port", "ANSIBLE_REMOTE_PORT"),
    "key": ("ansible_ssh_private_key_file", "ANSIBLE_PRIVATE_KEY_FILE"),
    "common_args": ("ansible_ssh_common_args", "ANSIBLE_SSH_COMMON_ARGS"),
    "extra_args": ("ansible_ssh_extra_args", "ANSIBLE_SSH_EXTRA_ARGS"),
}


@dataclass(frozen=True)
class Connection:
    """Where and how to log in to one host."""

    name: str
    address: str
    user: str = ""
    port: str = ""
    key: str = ""
    common_args: str = ""
    extra_args: str = ""

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.address}" if self.user else self.address

    def scp_path(self, path: str) -> str:
        """`user@address:path` for scp (an IPv6 address in brackets)."""
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.user + '@' if self.user else ''}{address}:{path}"


def _render(name: str, value: Any, hostvars: Mapping[str, Any], host: str) -> str:
    """A variable's value; one that is still a template (`{{ login_user }}`, in variables given as a
    plain mapping) rendered by Ansible's templar with the host's variables. A host's inventory
    variables (Host.vars) come rendered by Ansible already."""
    text = "" if value is None else str(value)
    if "{{" not in text and "{%" not in text:
        return text
    return str(render(text, dict(hostvars), name, host))


def connection(name: str, hostvars: Mapping[str, Any], env: Mapping[str, str]) -> Connection:
    """The connection Ansible would use for host NAME with these variables and this environment."""
    values = {}
    for field, (var, env_var) in _SOURCES.items():
        found = hostvars.get(var)
        if found in (None, ""):
            values[field] = env.get(env_var, "")
        else:
            values[field] = _render(var, found, hostvars, name)
    address = _render("ansible_host", hostvars.get("ansible_host") or name, hostvars, name)
    return Connection(name=name, address=address, **values)


def host_connection(host: Host, env: Mapping[str, str]) -> Connection:
    """The connection to an inventory host (its hostvars, else its private IP)."""
    hostvars = ChainMap(host.vars, {"ansible_host": host.private_ip or host.name})
    return connection(host.name, hostvars, env)


def host_var(host: Host, name: str, default: Any = None) -> Any:
    """A variable as Ansible gives it to HOST (farmhand.core.variables: inventory and group_vars with
    Ansible's precedence, rendered, vault values decrypted)."""
    value = host.vars.get(name, default)
    return _render(name, value, host.vars, host.name) if isinstance(value, str) else value


def ssh_argv(
    conn: Connection, tty: bool | None = None, batch: bool = False, control_dir: str | None = None
) -> list[str]:
    """ssh [-t|-T] [options] [-p PORT] [-i KEY] COMMON_ARGS EXTRA_ARGS DESTINATION.

    tty: True forces a terminal (-t), False none (-T), None lets ssh decide. batch: never prompt.
    control_dir: share one master connection per host there (the cutover's quick steps).
    """
    argv = ["ssh", *BASE_OPTIONS]
    if tty is not None:
        argv.append("-t" if tty else "-T")
    if batch:
        argv += ["-o", "BatchMode=yes"]
    if control_dir:
        argv += ["-o", "ControlMaster=auto", "-o", "ControlPersist=60s"]
        argv += ["-o", f"ControlPath={control_dir}/%C"]
    if conn.port:
        argv += ["-p", str(conn.port)]
    if conn.key:
        argv += ["-i", conn.key]
    argv += shlex.split(conn.common_args) + shlex.split(conn.extra_args)
    argv.append(conn.destination)
    return argv


def remote_argv(conn: Connection, remote: Sequence[str], tty: bool | None = False) -> list[str]:
    """ssh ... DESTINATION -- REMOTE, each word of REMOTE quoted for the remote shell."""
    return [*ssh_argv(conn, tty=tty), "--", shlex.join(remote)]


def scp_argv(conn: Connection, sources: Sequence[str], dest: str, recursive: bool = False) -> list[str]:
    """scp [options] [-P PORT] [-i KEY] COMMON_ARGS [-r] SOURCES DEST (paths already `host:path`)."""
    argv = ["scp", *BASE_OPTIONS]
    if conn.port:
        argv += ["-P", str(conn.port)]
    if conn.key:
        argv += ["-i", conn.key]
    argv += shlex.split(conn.common_args)
    if recursive:
        argv.append("-r")
    return [*argv, *sources, dest]


def terminal() -> bool:
    """Whether this is an interactive terminal: stdin and stdout both (`> file` gets clean bytes)."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def call(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run ssh or scp with this process's terminal and streams; its exit status."""
    try:
        return subprocess.call(list(argv), env=dict(env))
    except FileNotFoundError:
        raise FarmError(f"{argv[0]} is not installed: install openssh-client") from None
    except KeyboardInterrupt:
        return 130


def run_interactive(
    env: Mapping[str, str], host: Host, remote: Sequence[str], tty: bool | None = None
) -> int:
    """Run REMOTE on HOST with this terminal (a TTY when stdin is one, else stdin passed through)."""
    use_tty = sys.stdin.isatty() if tty is None else tty
    return call(remote_argv(host_connection(host, env), remote, tty=use_tty), env)


def capture(
    env: Mapping[str, str], host: Host, remote: Sequence[str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run REMOTE on HOST, no stdin, its output captured."""
    try:
        return subprocess.run(
            remote_argv(host_connection(host, env), remote),
            env=dict(env),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
            timeout=timeout,
        )
    except FileNotFoundError:
        raise FarmError("ssh is not installed: install openssh-client") from None
