"""farmhand.core.cutover, the write pause of pg:promote, against a stand-in `ssh` that records each call."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from farmhand.core.cutover import ssh_argv

FAKE_SSH = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
if "-O" in args:
    sys.exit(0)
remote = args[args.index("--") + 1]
host = args[args.index("--") - 1]
with open(os.environ["FAKE_SSH_LOG"], "a") as log:
    log.write(json.dumps([host, remote]) + "\\n")
if os.environ.get("FAKE_SSH_FAIL") and os.environ["FAKE_SSH_FAIL"] in remote:
    print("ERROR:  the follower is gone", file=sys.stderr)
    sys.exit(1)
if "pg_current_wal_flush_lsn" in remote:
    print("\\n\\n0/3000148")
elif "pg_promote" in remote:
    print("t")
"""

PLAN = {
    "pgbouncers": [
        {"name": "web-1", "address": "10.0.0.1", "user": "admin"},
        {"name": "web-2", "address": "10.0.0.2", "user": "admin"},
    ],
    "primary": {"name": "db-1", "address": "10.0.0.3", "user": "admin"},
    "follower": {"name": "db-2", "address": "10.0.0.4", "user": "admin", "port": 2222},
    "database": "bookshelf",
    "admin": "/usr/local/sbin/pgbouncer-admin",
    "catchup_s": 30,
}


def cutover(tmp_path: Path, plan: dict, fail: str = "") -> tuple[subprocess.CompletedProcess[str], list]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    ssh = bin_dir / "ssh"
    ssh.write_text(FAKE_SSH)
    ssh.chmod(ssh.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "ssh.log"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_SSH_LOG": str(log)}
    env["FAKE_SSH_FAIL"] = fail
    proc = subprocess.run(
        [sys.executable, "-m", "farmhand.core.cutover", json.dumps(plan)],
        env=env,
        capture_output=True,
        text=True,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls


def steps(calls: list) -> list[tuple[str, str]]:
    """(host, what) of each call but the connection checks, in order."""
    found = []
    for host, remote in calls:
        if remote == "true":
            continue
        what = next(w for w in ("PAUSE", "--switch", "RESUME", "read_only", "pg_promote") if w in remote)
        found.append((host.split("@")[-1], what))
    return found


def test_a_planned_cutover_pauses_fences_promotes_then_switches(tmp_path):
    proc, calls = cutover(tmp_path, PLAN)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["lsn"] == "0/3000148" and result["paused_s"] >= 0
    assert {host for host, remote in calls if remote == "true"} == {f"admin@10.0.0.{i}" for i in range(1, 5)}
    order = steps(calls)
    assert sorted(order[:2]) == [("10.0.0.1", "PAUSE"), ("10.0.0.2", "PAUSE")]
    assert order[2:4] == [("10.0.0.3", "read_only"), ("10.0.0.4", "pg_promote")]
    assert sorted(order[4:]) == [("10.0.0.1", "--switch"), ("10.0.0.2", "--switch")]
    promote = shlex.split(next(remote for _, remote in calls if "pg_promote" in remote))
    assert "pg_last_wal_replay_lsn(), '0/0') < '0/3000148'::pg_lsn" in " ".join(promote)  # the last write


def test_a_forced_cutover_skips_the_old_primary(tmp_path):
    proc, calls = cutover(tmp_path, {**PLAN, "primary": None})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["lsn"] == "0/0"
    assert "10.0.0.3" not in json.dumps(calls)


def test_a_failed_promotion_resumes_every_pgbouncer_and_switches_none(tmp_path):
    proc, calls = cutover(tmp_path, PLAN, fail="pg_promote")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "cutover failed: db-2: ERROR:  the follower is gone"
    order = steps(calls)
    assert sorted(order[-2:]) == [("10.0.0.1", "RESUME"), ("10.0.0.2", "RESUME")]
    assert all(what != "--switch" for _, what in order)


@pytest.mark.parametrize(
    ("host", "env", "expected_tail"),
    [
        ({"address": "10.0.0.9", "user": "admin"}, {}, ["admin@10.0.0.9"]),
        (
            {
                "address": "10.0.0.9",
                "user": "admin",
                "port": 22022,
                "key": "/k",
                "args": "-o ProxyJump=bastion",
            },
            {"ANSIBLE_PRIVATE_KEY_FILE": "/other", "ANSIBLE_SSH_COMMON_ARGS": "-o X=y"},
            ["-p", "22022", "-i", "/k", "-o", "ProxyJump=bastion", "admin@10.0.0.9"],
        ),
        (
            {"address": "10.0.0.9", "user": ""},
            {"ANSIBLE_PRIVATE_KEY_FILE": "/farm/id", "ANSIBLE_SSH_COMMON_ARGS": "-o UserKnownHostsFile=/kh"},
            ["-i", "/farm/id", "-o", "UserKnownHostsFile=/kh", "10.0.0.9"],
        ),
    ],
)
def test_ssh_reaches_hosts_as_ansible_does(host, env, expected_tail):
    argv = ssh_argv(host, env, "/cp")
    assert argv[0] == "ssh" and "ControlPath=/cp/%C" in argv and "BatchMode=yes" in argv
    assert argv[-len(expected_tail) :] == expected_tail
