"""`farm psql`, against moto's fake hosts with a stand-in `ssh` that records how it was called."""

from __future__ import annotations

import shlex
import subprocess

from conftest import FARM_BIN, REPO_ROOT, with_fake_ssh

from farmhand.core.pg import psql_remote

RECORDING_SSH = """#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_SSH_LOG"
"""


def test_psql_reaches_the_primary_the_tags_name_now_not_the_cached_one(aws_env, farms, ec2, tmp_path):
    """Right after a cutover swapped the role tags, `farm psql` goes to the new primary, though the
    inventory cache (60 s, which any other command may have written) still names the old one."""
    log = tmp_path / "ssh.log"
    env = {**with_fake_ssh(aws_env, tmp_path, RECORDING_SSH), "FAKE_SSH_LOG": str(log)}

    def psql() -> str:
        proc = subprocess.run(
            [str(FARM_BIN), "psql", "-f", "pgf"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return log.read_text().splitlines()[-1]

    old, new = farms["pgf-db-1"], farms["pgf-db-follower-1"]
    assert f"admin@{old['ip']} -- " in psql()  # the inventory, cached from here on
    ec2.create_tags(Resources=[old["id"]], Tags=[{"Key": "role", "Value": "db_follower"}])
    ec2.create_tags(Resources=[new["id"]], Tags=[{"Key": "role", "Value": "db"}])
    destination, _, remote = psql().partition(" -- ")
    assert destination.endswith(f"admin@{new['ip']}")
    assert shlex.split(remote) == psql_remote("bookshelf", interactive=False)
    assert len(log.read_text().splitlines()) == 2  # one ssh per psql, nothing else
