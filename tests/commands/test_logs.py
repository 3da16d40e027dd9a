"""`farm logs --tail` ends at Ctrl-C, at once and with status 0, however the signal arrives, and
leaves none of its ssh processes running: against moto's fake hosts, with a stand-in `ssh` whose
follow is the hard case (it ignores SIGINT and leaves a child holding its output open, as a
ControlPersist master would)."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FARM_BIN, REPO_ROOT, with_fake_ssh
from farmlib import start_job

BACKLOG = '{"__REALTIME_TIMESTAMP": "1763920000000000", "SYSLOG_IDENTIFIER": "probe", "MESSAGE": "backlog"}'
FOLLOWED = '{"__REALTIME_TIMESTAMP": "1763920001000000", "SYSLOG_IDENTIFIER": "probe", "MESSAGE": "followed"}'

FAKE_SSH = f"""#!/bin/sh
# The remote command is the last argument: the backlog read prints one entry and ends; the follow
# prints one, ignores SIGINT, leaves a child holding its output open and stays.
for remote; do :; done
case "$remote" in
*--follow*)
    echo $$ >> "$FAKE_SSH_PIDS"
    trap '' INT
    sleep 300 &
    echo $! >> "$FAKE_SSH_ORPHANS"
    echo '{FOLLOWED}'
    exec sleep 300 ;;
*)
    echo '{BACKLOG}' ;;
esac
"""


def _pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _running(pid: int) -> bool:
    """Whether PID is a live process (not gone, not a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _sigint_a_thread_other_than_main(pid: int) -> None:
    """SIGINT to one of PID's threads that is not its main thread (tgkill): Python's C-level handler
    runs there and only sets a flag; the main thread, asleep, is not woken. That is where a loaded
    machine leaves it now and then (the handler runs just before the main thread goes back to sleep);
    here it happens every time."""
    tgkill = ctypes.CDLL(None, use_errno=True).tgkill  # glibc 2.30 and newer (Debian 12 has 2.36)
    others = [int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid]
    assert others, "farm logs --tail runs no reader thread"
    assert tgkill(pid, others[0], signal.SIGINT) == 0, os.strerror(ctypes.get_errno())


@pytest.mark.parametrize("interrupt", ["reader-thread", "terminal"])
def test_ctrl_c_ends_a_tail_at_once_with_status_0_and_stops_its_ssh(aws_env, farms, tmp_path, interrupt):
    pids, orphans = tmp_path / "ssh.pids", tmp_path / "orphans.pids"
    env = {
        **with_fake_ssh(aws_env, tmp_path, FAKE_SSH),
        "FAKE_SSH_PIDS": str(pids),
        "FAKE_SSH_ORPHANS": str(orphans),
    }
    # A job of its own, as a shell runs one in the foreground: a terminal's Ctrl-C goes to the group.
    job = start_job([str(FARM_BIN), "logs", "-f", "demo", "-r", "web", "--tail"], env=env, cwd=REPO_ROOT)
    tail, lines, errors = job.proc, job.lines, job.errors
    try:
        followed: set[str] = set()
        deadline = time.monotonic() + 120  # hang guard: farm's start (moto, the inventory) on a busy machine
        while followed != {"demo-web-1", "demo-web-2"}:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"farm logs --tail did not follow both web hosts within 120 s: {followed}")
            if line.rstrip().endswith("probe: followed"):
                followed.add(line.split()[1])
        time.sleep(0.5)  # the main thread waits for lines again
        if interrupt == "reader-thread":
            _sigint_a_thread_other_than_main(tail.pid)
        else:
            os.killpg(tail.pid, signal.SIGINT)
        try:
            tail.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("farm logs --tail still runs 20 s after Ctrl-C")
        assert job.said is not None
        job.said.join(timeout=10)
        assert tail.returncode == 0, "".join(errors)
        assert "Traceback" not in "".join(errors)
        assert len(_pids(pids)) == 2
        assert [p for p in _pids(pids) if _running(p)] == []  # its ssh processes ended with it
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(tail.pid, signal.SIGKILL)
        tail.wait()
        for pid in _pids(pids) + _pids(orphans):  # the stand-ins this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_job_gets_ctrl_c_even_when_the_test_run_ignores_it():
    """A run started in the background by a shell without job control (`make test &`, a CI runner's
    script) ignores SIGINT, and an ignored signal stays ignored across exec: the `farm logs --tail`
    the tests start must still receive a Ctrl-C, as a terminal's foreground job does."""
    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        job = start_job([sys.executable, "-c", probe])
    finally:
        signal.signal(signal.SIGINT, before)
    assert job.proc.wait(timeout=60) == 0
    assert job.lines.get(timeout=10).strip() == "True"


def test_a_grep_does_not_find_the_reads_of_the_journal_it_made():
    """sudo records each `journalctl --grep PATTERN` farm logs runs, pattern and all: those records
    are not the farm's log lines (the README's `farm logs --grep 'Completed 5'` would find itself)."""
    from farmhand.core import journal

    own = {
        "SYSLOG_IDENTIFIER": "sudo",
        "MESSAGE": "   admin : PWD=/home/admin ; USER=root ; COMMAND=/usr/bin/journalctl --no-pager -o json "
        "--lines=200 --grep 'Completed 5'",
    }
    other_sudo = {
        "SYSLOG_IDENTIFIER": "sudo",
        "MESSAGE": "admin : USER=root ; COMMAND=/usr/bin/systemctl restart x",
    }
    app = {"SYSLOG_IDENTIFIER": "unicorn-bookshelf", "MESSAGE": "Completed 500 Internal Server Error in 3ms"}
    assert [journal.own_read(e) for e in (own, other_sudo, app)] == [True, False, False]
    assert list(journal._entries([json.dumps(e) for e in (own, other_sudo, app)])) == [other_sudo, app]
