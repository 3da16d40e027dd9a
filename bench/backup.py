#!/usr/bin/env python3
"""Backup and restore throughput of a local farm's pgBackRest repository (moto behind the TLS front).

On the farm's primary, a database `benchdata` is generated with pgbench's tables (--scale 200 is
about 3 GB; 15 MB per unit); then, one after the other:

- backup: `farm pg:backups:capture --type full` (pgBackRest, lz4, encrypted, to S3);
- restore: `farm pg:backups:restore` of the latest backup and WAL into the farm's db_restore host,
  the database checked consistent and reachable.

It prints the cluster's size, each step's seconds and its throughput in MB/s (cluster size over
the step's wall time, everything included: SSH, Ansible, S3 through moto), and what the backup
takes in the repository. `benchdata` is dropped at the end (its backups stay in the repository).

    python bench/backup.py [--farm bk] [--scale 200]

The farm must be up and converged with a db and a db_restore host:
`farm local up -f bk && farm converge -f bk`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FARM_BIN = str(Path(sys.executable).with_name("farm"))
MB = 1024 * 1024


def sh(container: str, command: str) -> str:
    proc = subprocess.run(
        ["podman", "exec", container, "runuser", "-u", "postgres", "--", "bash", "-c", command],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"failed on {container}: {command}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout.strip()


def farm(*args: str) -> str:
    proc = subprocess.run([FARM_BIN, *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"farm {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr}")
    return proc.stdout


def timed(*args: str) -> float:
    start = time.perf_counter()
    farm(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--farm", default="bk")
    parser.add_argument("--scale", type=int, default=200, help="pgbench scale (15 MB each)")
    args = parser.parse_args()
    primary = f"farmhand-{args.farm}-db-1"

    print(f"Generating benchdata (pgbench scale {args.scale}) on {primary}...", flush=True)
    sh(primary, "dropdb --if-exists benchdata && createdb benchdata")
    sh(primary, f"pgbench -i -q -s {args.scale} benchdata")
    size = int(sh(primary, "psql -XAtc 'select sum(pg_database_size(datname)) from pg_database'"))

    backup_s = timed("pg:backups:capture", "-f", args.farm, "--type", "full")
    latest = json.loads(farm("pg:backups", "-f", args.farm, "--json"))["backups"][-1]
    restore_s = timed("pg:backups:restore", "-f", args.farm)
    sh(primary, "dropdb benchdata")

    stored = latest["repo_size"] / MB
    print(
        f"Cluster: {size / MB:.0f} MB; full backup {latest['label']} takes {stored:.0f} MB in the repository"
    )
    print(f"{'':<10}{'seconds':>10}{'MB/s':>10}")
    for name, seconds in (("backup", backup_s), ("restore", restore_s)):
        print(f"{name:<10}{seconds:>10.1f}{size / MB / seconds:>10.1f}")


if __name__ == "__main__":
    main()
