"""The hosts' journals, read and merged: every host's journal is read over SSH (`journalctl -o json`,
as Ansible reaches the host), the last N lines of all of them are merged by time, and each host's
journal can then be followed from where its backlog ended, so no line is lost or shown twice
between the two.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from farmhand.core import ssh
from farmhand.core.inventory import Host
from farmhand.core.target import Target


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


# How long the main thread sleeps at most while it waits for lines. Python runs a signal's handler
# (Ctrl-C's KeyboardInterrupt) in the main thread only, between two bytecodes: a wait without a
# timeout misses a SIGINT whose C-level handler ran in a reader thread, or in the main thread just
# before it went to sleep, until the next line comes, and quiet hosts may send none for hours.
_POLL_S = 0.2
# How long the ssh processes get to end on SIGTERM before they are killed.
_STOP_GRACE_S = 2.0


def _ssh(target: Target, host: Host, remote: Sequence[str]) -> list[str]:
    return ssh.remote_argv(ssh.host_connection(host, target.env), remote)


def _start(target: Target, host: Host, remote: Sequence[str], stderr: int) -> subprocess.Popen[str]:
    """ssh to HOST running REMOTE, its output piped, no stdin (it must not read the user's terminal)."""
    return subprocess.Popen(
        _ssh(target, host, remote),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=target.env,
    )


def _stop(procs: Sequence[subprocess.Popen[str]], grace: float = _STOP_GRACE_S) -> None:
    """End the ssh processes still running (SIGTERM, SIGKILL after GRACE s) and reap them.

    Their pipes are not read to the end: a process an ssh left behind (a ControlPersist master)
    may hold one open for minutes."""
    alive = [p for p in procs if p.poll() is None]
    for proc in alive:
        proc.terminate()
    deadline = time.monotonic() + grace
    for proc in alive:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def own_read(entry: dict[str, Any]) -> bool:
    """Whether ENTRY is sudo's record of a read of the journal by `farm logs` itself: its command
    line holds the --grep pattern, so a grep would find its own reads."""
    return entry.get(
        "SYSLOG_IDENTIFIER"
    ) == "sudo" and "COMMAND=/usr/bin/journalctl --no-pager -o json" in _message(entry)


def _entries(proc_out: Any) -> Any:
    for raw in proc_out:
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if not own_read(entry):
            yield entry


def backlog(
    target: Target, hosts: Sequence[Host], lines: int, grep: str | None, warn: Callable[[str], None]
) -> dict[str, list[dict]]:
    """The last LINES journal entries of every host (each host's read at once); WARN is told of a
    journal that could not be read."""
    procs: dict[str, subprocess.Popen[str]] = {}
    found: dict[str, list[dict]] = {}
    try:
        for h in hosts:
            procs[h.name] = _start(target, h, journal_command(lines, grep, False, None), subprocess.PIPE)
        for name, proc in procs.items():
            out, err = proc.communicate()
            if proc.returncode != 0:
                last = [line for line in err.splitlines() if line.strip()]
                why = last[-1] if last else f"exit {proc.returncode}"
                warn(f"farm: {name}: journal not read: {why}")
            found[name] = list(_entries(out.splitlines()))
    finally:
        _stop(list(procs.values()))  # interrupted: the hosts not read yet
    return found


def follow(
    target: Target,
    hosts: Sequence[Host],
    grep: str | None,
    cursors: dict[str, str | None],
    emit: Callable[[str], None],
) -> None:
    """Give EMIT every host's new journal lines as they come, until interrupted.

    The ssh processes start here, in the main thread, so that every one is known when Ctrl-C
    comes; each one's output is read by a daemon thread, and they are all ended on the way out.
    """
    lines: queue.Queue[str | None] = queue.Queue()
    procs: list[subprocess.Popen[str]] = []

    def read(host: Host, out: Any) -> None:
        for entry in _entries(out):
            lines.put(format_line(host.name, entry))
        lines.put(None)

    try:
        for host in hosts:
            remote = journal_command(0, grep, True, cursors.get(host.name))
            procs.append(_start(target, host, remote, subprocess.DEVNULL))
            threading.Thread(target=read, args=(host, procs[-1].stdout), daemon=True).start()
        running = len(hosts)
        while running:
            try:
                line = lines.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if line is None:
                running -= 1
                continue
            emit(line)
    finally:
        _stop(procs)


def merged(found: dict[str, list[dict]], lines: int) -> list[str]:
    """The last LINES of every host's entries, merged by time (then host), formatted."""
    stamped = [(int(e.get("__REALTIME_TIMESTAMP", 0)), n, e) for n, got in found.items() for e in got]
    ordered = sorted(stamped, key=lambda item: (item[0], item[1]))
    return [format_line(name, entry) for _, name, entry in ordered[-lines:]]


def last_cursors(found: dict[str, list[dict]]) -> dict[str, str | None]:
    """Where each host's backlog ended (its last entry's cursor), for the follow to start after."""
    return {name: (got[-1].get("__CURSOR") if got else None) for name, got in found.items()}
