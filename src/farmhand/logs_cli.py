"""`farm logs`: the farm's hosts' journals merged, each line tagged with host and program.

Like `heroku logs [--tail]`: every host's journal is read over SSH (`journalctl -o json`, as
Ansible reaches the host), the last N lines of all of them are merged by time, and with --tail
each host's journal is then followed from where its backlog ended, so no line is lost or shown
twice between the two.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

import click

from farmhand import ssh
from farmhand.errors import FarmError
from farmhand.inventory import Host
from farmhand.options import farm_option, role_option
from farmhand.target import Target, resolve


def _message(entry: dict[str, Any]) -> str:
    message = entry.get("MESSAGE", "")
    if isinstance(message, list):  # journald gives non-UTF-8 messages as byte arrays
        message = bytes(message).decode("utf-8", errors="replace")
    return str(message).rstrip("\n")


def format_line(host: str, entry: dict[str, Any]) -> str:
    """`2026-11-23T18:04:05.123456+00:00 web-1 nginx[42]: message`."""
    micros = int(entry.get("__REALTIME_TIMESTAMP", 0))
    when = dt.datetime.fromtimestamp(micros / 1e6, dt.UTC).isoformat(timespec="microseconds")
    program = entry.get("SYSLOG_IDENTIFIER") or entry.get("_COMM") or "kernel"
    pid = entry.get("SYSLOG_PID") or entry.get("_PID")
    return f"{when} {host} {program}{f'[{pid}]' if pid else ''}: {_message(entry)}"


def journal_command(lines: int, grep: str | None, follow: bool, cursor: str | None) -> list[str]:
    cmd = ["sudo", "journalctl", "--no-pager", "-o", "json"]
    if follow:
        # --lines takes an optional argument: it must be attached (--lines=N).
        cmd += ["--follow", f"--lines={'all' if cursor else 0}"]
        if cursor:
            cmd += ["--after-cursor", cursor]
    else:
        cmd.append(f"--lines={lines}")
    if grep:
        cmd += ["--grep", grep]
    return cmd


def _ssh(target: Target, host: Host, remote: Sequence[str]) -> list[str]:
    return ssh.remote_argv(ssh.host_connection(host, target.env), remote)


def _entries(proc_out: Any) -> Any:
    for raw in proc_out:
        try:
            yield json.loads(raw)
        except ValueError:
            continue


def backlog(target: Target, hosts: Sequence[Host], lines: int, grep: str | None) -> dict[str, list[dict]]:
    """The last LINES journal entries of every host (each host's read at once)."""
    procs = {
        h.name: subprocess.Popen(
            _ssh(target, h, journal_command(lines, grep, False, None)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=target.env,
        )
        for h in hosts
    }
    found: dict[str, list[dict]] = {}
    for name, proc in procs.items():
        out, err = proc.communicate()
        if proc.returncode != 0:
            last = [line for line in err.splitlines() if line.strip()]
            why = last[-1] if last else f"exit {proc.returncode}"
            click.echo(f"farm: {name}: journal not read: {why}", err=True)
        found[name] = list(_entries(out.splitlines()))
    return found


def follow(target: Target, hosts: Sequence[Host], grep: str | None, cursors: dict[str, str | None]) -> None:
    """Print every host's new journal lines as they come, until interrupted."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read(host: Host) -> None:
        cmd = _ssh(target, host, journal_command(0, grep, True, cursors.get(host.name)))
        out = subprocess.PIPE
        with subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, text=True, env=target.env) as proc:
            for entry in _entries(proc.stdout):
                lines.put(format_line(host.name, entry))
        lines.put(None)

    for host in hosts:
        threading.Thread(target=read, args=(host,), daemon=True).start()
    running = len(hosts)
    while running:
        line = lines.get()
        if line is None:
            running -= 1
            continue
        click.echo(line)
        sys.stdout.flush()


@click.command("logs")
@farm_option
@role_option("Only the hosts of this role (web, worker, cron, db...).")
@click.option("-t", "--tail", is_flag=True, help="Keep printing new lines as they come.")
@click.option(
    "-n", "--num", "lines", type=click.IntRange(min=1), default=100, show_default=True, help="Lines to show."
)
@click.option("--grep", metavar="REGEX", help="Only lines whose message matches (journalctl --grep).")
def logs(farm: str | None, role: str | None, tail: bool, lines: int, grep: str | None) -> None:
    """Show the farm's logs: every host's journal merged, each line tagged with host and program.

    \b
    Example:
      farm logs -f staging
      farm logs -f staging -r web --tail
      farm logs -f staging -n 500 --grep 'Completed 5[0-9][0-9]'
    """
    if grep is not None:
        try:
            re.compile(grep)
        except re.error as err:
            raise FarmError(f"invalid --grep pattern {grep!r}: {err}") from None
    target = resolve(farm)
    hosts = target.hosts
    if role is not None:
        target.project.validate_role(role)
        hosts = target.hosts_with_role(role)
        if not hosts:
            raise FarmError(f"farm {target.farm!r} has no hosts with role {role}")
    found = backlog(target, hosts, lines, grep)
    stamped = [(int(e.get("__REALTIME_TIMESTAMP", 0)), name, e) for name, got in found.items() for e in got]
    merged = sorted(stamped, key=lambda item: (item[0], item[1]))
    for _, name, entry in merged[-lines:]:
        click.echo(format_line(name, entry))
    if tail:
        cursors = {name: (got[-1].get("__CURSOR") if got else None) for name, got in found.items()}
        try:
            follow(target, hosts, grep, cursors)
        except KeyboardInterrupt:
            raise click.exceptions.Exit(0) from None


COMMANDS = (logs,)
