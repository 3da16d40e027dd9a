"""`farm ssh` and `farm scp`: a shell, a command or a copy on the farm's hosts, logged in as Ansible is."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import click

from farmhand.commands._options import farm_option, role_option
from farmhand.commands._output import err, error
from farmhand.core import fanout, hosts, ssh
from farmhand.core.completion import complete_host, complete_scp_path
from farmhand.core.errors import FarmError
from farmhand.core.inventory import Host
from farmhand.core.target import Target, resolve

# `HOST:path`: a host name before the first colon, no slash in it (`./a:b` is a local file, as scp has it).
_REMOTE = re.compile(r"^(?P<host>[^/:]+):(?P<path>.*)\Z", re.S)


class _CommandAfterDashes(click.Command):
    """Words after `--` are the command, never HOST: `farm ssh -f F -- uptime` runs uptime."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["farmhand.after_dashes"] = args[args.index("--") + 1 :] if "--" in args else []
        return super().parse_args(ctx, args[: args.index("--")] if "--" in args else args)


@click.command(
    "ssh",
    cls=_CommandAfterDashes,
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@farm_option
@role_option("The first host of this role (with --all: every one).")
@click.option("--all", "every", is_flag=True, help="Run COMMAND on every host (of -r ROLE) at once.")
@click.argument("host", required=False, shell_complete=complete_host)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def ssh_cmd(
    farm: str | None, role: str | None, every: bool, host: str | None, command: tuple[str, ...]
) -> None:
    """Open a shell on a host, or run a command there, logged in as Ansible logs in.

    HOST is a name as `farm ps` shows it; -r ROLE picks the role's first host; with neither,
    the host `farm run` uses (console, else worker, else web). A command line is run by the
    host's shell, as ssh runs it. --all runs it on every host of the farm (or of -r ROLE) at
    once, each output line prefixed with the host's name; it exits non-zero if any failed.

    \b
    Example:
      farm ssh -f staging
      farm ssh -f staging staging-web-1
      farm ssh -f staging -r db -- sudo systemctl status postgresql
      farm ssh -f staging --all -- uptime
      farm ssh -f staging -r web --all -- 'df -h / | tail -1'
    """
    command = (*command, *click.get_current_context().meta["farmhand.after_dashes"])
    if host is not None and role is not None:
        raise FarmError("give a HOST or -r ROLE, not both")
    if every and host is not None:
        raise FarmError("--all runs on every host of the farm (or of -r ROLE): give no HOST")
    if every and not command:
        raise FarmError("--all needs a command: farm ssh -f FARM --all -- COMMAND")
    target = resolve(farm)
    if every:
        every_host = hosts.with_role(target, role) if role else target.hosts
        raise click.exceptions.Exit(_on_every_host(target, every_host, " ".join(command)))
    if host is not None:
        chosen = hosts.by_name(target, host)
    elif role is not None:
        chosen = hosts.with_role(target, role)[0]
    else:
        choice = hosts.oneoff(target)
        if choice.note:
            err.print(f"farm: {choice.note}", markup=False, soft_wrap=True)
        chosen = choice.host
    conn = ssh.host_connection(chosen, target.env)
    if command:
        argv = [*ssh.ssh_argv(conn, tty=ssh.terminal()), "--", " ".join(command)]
    else:
        argv = ssh.ssh_argv(conn)
    raise click.exceptions.Exit(ssh.call(argv, target.env))


def _on_every_host(target: Target, chosen: list[Host], line: str) -> int:
    """LINE on every chosen host at once: 0, or the highest exit status (the failures named)."""
    conns = [ssh.host_connection(h, target.env) for h in chosen]
    codes = fanout.run_on_each(conns, line, target.env, sys.stdout.buffer, sys.stderr.buffer)
    failed = {name: code for name, code in codes.items() if code != 0}
    if failed:
        error("failed on " + ", ".join(f"{name} (exit {code})" for name, code in failed.items()))
    return max(failed.values(), default=0)


@dataclass(frozen=True)
class _Side:
    host: Host | None
    path: str


def _side(target: Target, arg: str) -> _Side:
    match = _REMOTE.match(arg)
    if not match:
        return _Side(None, arg)
    return _Side(hosts.by_name(target, match["host"]), match["path"] or ".")


@click.command("scp")
@farm_option
@click.option("-r", "recursive", is_flag=True, help="Copy directories, recursively.")
@click.argument("source", shell_complete=complete_scp_path)
@click.argument("dest", shell_complete=complete_scp_path)
def scp_cmd(farm: str | None, recursive: bool, source: str, dest: str) -> None:
    """Copy a file to or from a host: HOST:path on one side, as `farm ps` names the host.

    Files land as the login user (Ansible's), a relative path in its home directory.

    \b
    Example:
      farm scp -f staging staging-web-1:/var/log/nginx/error.log .
      farm scp -f staging ./seed.sql staging-db-1:/tmp/
      farm scp -f staging -r staging-web-1:/srv/bookshelf/current/log ./logs
    """
    if not (_REMOTE.match(source) or _REMOTE.match(dest)):
        raise FarmError(f"neither {source!r} nor {dest!r} names a host: write HOST:path on one side")
    if _REMOTE.match(source) and _REMOTE.match(dest):
        raise FarmError("both sides name a host: copy through this machine, one side at a time")
    target = resolve(farm)
    src, dst = _side(target, source), _side(target, dest)
    remote = src.host or dst.host
    assert remote is not None
    conn = ssh.host_connection(remote, target.env)
    paths = [conn.scp_path(s.path) if s.host else s.path for s in (src, dst)]
    raise click.exceptions.Exit(ssh.call(ssh.scp_argv(conn, paths[:1], paths[1], recursive), target.env))


COMMANDS = (ssh_cmd, scp_cmd)
