"""The write pause of a PostgreSQL cutover, kept under a second.

playbooks/pg_promote.yml runs this on the controller as one task (`python -m farmhand.core.cutover PLAN`):
an Ansible task costs a second or more per step, and a cutover has four steps that must follow each
other while the app's writes wait. Here the SSH connections to every host are opened first
(multiplexed, before anything is paused); then, each step on its hosts in parallel:

1. PAUSE every PgBouncer (new transactions wait, running ones finish);
2. make the old primary read-only and read its last WAL position (skipped when forced);
3. on the follower, wait until it has replayed that position, then pg_promote();
4. switch every PgBouncer to its staged configuration, RELOAD, RECONNECT and RESUME.

If a step fails, what was paused is resumed (on the old primary: nothing was promoted) and the
exit code is 1; the CLI then runs pg_recover.yml, which finishes or undoes the cutover. The result
is one JSON line on stdout: `{"paused_s": 0.41, "lsn": "0/3000148"}`.

PLAN (JSON): {"pgbouncers": [HOST...], "primary": HOST|null, "follower": HOST, "database": NAME,
"admin": PATH, "catchup_s": N}, where HOST is {"name", "address", "user", "port", "key", "args"}
(the connection Ansible uses: ansible_host, ansible_user, ansible_port, the private key file and
ansible_ssh_common_args). The environment's ANSIBLE_PRIVATE_KEY_FILE and ANSIBLE_SSH_COMMON_ARGS
apply where a host gives none, as they do for Ansible.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from farmhand.core import ssh
from farmhand.core.ssh import connection


class StepFailed(Exception):
    """A cutover step failed on a host: `name: what it said`."""


def ssh_argv(host: Mapping[str, Any], env: Mapping[str, str], control_dir: str) -> list[str]:
    """ssh to HOST as Ansible does (farmhand.core.ssh), through a master connection kept in CONTROL_DIR."""
    hostvars = {
        "ansible_host": host["address"],
        "ansible_user": host.get("user"),
        "ansible_port": host.get("port"),
        "ansible_ssh_private_key_file": host.get("key"),
        "ansible_ssh_common_args": host.get("args"),
    }
    conn = connection(str(host.get("name") or host["address"]), hostvars, env)
    return ssh.ssh_argv(conn, batch=True, control_dir=control_dir)


class Cutover:
    def __init__(self, plan: Mapping[str, Any], env: Mapping[str, str], control_dir: str) -> None:
        self.plan = plan
        self.env = env
        self.control_dir = control_dir
        self.bouncers: list[Mapping[str, Any]] = list(plan["pgbouncers"])

    def run(self, host: Mapping[str, Any], *remote: str) -> str:
        argv = [*ssh_argv(host, self.env, self.control_dir), "--", shlex.join(remote)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            said = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            raise StepFailed(f"{host['name']}: {said[-1] if said else 'exit ' + str(proc.returncode)}")
        return proc.stdout

    def on_each(self, hosts: Sequence[Mapping[str, Any]], *remote: str) -> list[str]:
        """REMOTE on every host at once; every one runs, the first failure is raised after."""
        if not hosts:
            return []
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            futures = [pool.submit(self.run, host, *remote) for host in hosts]
        errors = [f.exception() for f in futures if f.exception()]
        if errors:
            raise StepFailed("; ".join(str(e) for e in errors))
        return [f.result() for f in futures]

    def psql(self, host: Mapping[str, Any], *commands: str) -> str:
        argv = ["sudo", "-n", "-u", "postgres", "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1"]
        for command in commands:
            argv += ["-c", command]
        return self.run(host, *argv)

    def admin(self, *commands: str) -> list[str]:
        return self.on_each(self.bouncers, "sudo", "-n", self.plan["admin"], *commands)

    def resume_after_failure(self) -> None:
        try:
            self.admin("--keep-going", "RESUME")
        except StepFailed as error:
            print(f"resuming PgBouncer failed too: {error}", file=sys.stderr)

    def execute(self) -> dict[str, Any]:
        primary, follower = self.plan.get("primary"), self.plan["follower"]
        # Connect before pausing: the pause then costs only the commands themselves.
        self.on_each([*self.bouncers, *([primary] if primary else []), follower], "true")
        started = time.monotonic()
        try:
            self.admin("PAUSE")
        except StepFailed:
            self.resume_after_failure()
            raise
        lsn = "0/0"
        try:
            if primary:
                lsn = self.psql(
                    primary,
                    "ALTER SYSTEM SET default_transaction_read_only = on",
                    "SELECT pg_reload_conf()",
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
                    "SELECT pg_current_wal_flush_lsn()",
                ).split()[-1]
            promoted = self.psql(
                follower,
                "DO $$ DECLARE deadline timestamptz := clock_timestamp()"
                f" + interval '{int(self.plan['catchup_s'])} s';"
                f" BEGIN WHILE coalesce(pg_last_wal_replay_lsn(), '0/0') < '{lsn}'::pg_lsn LOOP"
                " IF clock_timestamp() > deadline THEN"
                f" RAISE EXCEPTION 'follower did not replay up to {lsn} in time'; END IF;"
                " PERFORM pg_sleep(0.002); END LOOP; END $$",
                "SELECT pg_promote(true, 60)",
            ).split()
            if not promoted or promoted[-1] != "t":
                raise StepFailed(f"{follower['name']}: pg_promote() did not finish")
        except StepFailed:
            # Nothing was promoted: leave the fencing to pg_recover.yml, but let no client wait longer.
            self.resume_after_failure()
            raise
        self.admin("--switch", "RELOAD", f"RECONNECT {self.plan['database']}", "RESUME")
        return {"paused_s": round(time.monotonic() - started, 3), "lsn": lsn}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m farmhand.core.cutover PLAN_JSON", file=sys.stderr)
        return 2
    plan = json.loads(args[0])
    with tempfile.TemporaryDirectory(prefix="farmhand-cp-") as control_dir:
        cutover = Cutover(plan, os.environ, control_dir)
        try:
            result = cutover.execute()
        except StepFailed as error:
            print(f"cutover failed: {error}", file=sys.stderr)
            return 1
        finally:
            # Close the master connections this run opened.
            for host in [*plan["pgbouncers"], plan.get("primary"), plan["follower"]]:
                if host:
                    argv = ssh_argv(host, os.environ, control_dir)
                    subprocess.run(
                        [*argv[:-1], "-O", "exit", argv[-1]],
                        capture_output=True,
                        timeout=10,
                        check=False,
                    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
