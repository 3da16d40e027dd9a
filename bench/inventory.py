#!/usr/bin/env python3
"""How long `ansible-inventory --list` takes on a large account, with and without the inventory cache.

Starts its own moto server on a free 127.0.0.1 port, registers N EC2 instances spread across three
farms and the roles web/worker/db/cron (some hosts carry `worker,cron`), then times
`ansible-inventory -i inventory/aws_ec2.yml --list` in this checkout:

- uncached: with --flush-cache, so the aws_ec2 plugin describes every instance;
- cached: the run right after, served from the jsonfile cache the first one wrote.

Each is repeated R times; the medians are printed side by side with their ratio. The cache lives in a
temp dir (ANSIBLE_INVENTORY_CACHE_CONNECTION), never the checkout's `.farm/cache`. Every run's host
count must equal N. Only 127.0.0.1 is contacted.

    .venv/bin/python bench/inventory.py [--instances 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

from farmhand.core.local.moto import MotoServer

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REGION = "us-east-1"
FARMS = ("bench_a", "bench_b", "bench_c")
# The role tags and their share of a farm's hosts.
ROLE_MIX = (("web", 0.40), ("worker", 0.20), ("worker,cron", 0.15), ("db", 0.15), ("cron", 0.10))
BATCH = 100  # instances per run_instances call


@contextmanager
def moto_server(state: Path) -> Iterator[str]:
    """moto's server on 127.0.0.1 (the local farm's launcher); yields its endpoint, stops it after."""
    server = MotoServer(state)
    try:
        yield server.ensure()
    finally:
        server.stop()


def plan(total: int) -> list[tuple[str, str, int]]:
    """(farm, role tag, count) rows adding up to exactly `total` hosts."""
    rows: list[tuple[str, str, int]] = []
    per_farm = [total // len(FARMS) + (1 if i < total % len(FARMS) else 0) for i in range(len(FARMS))]
    for farm, hosts in zip(FARMS, per_farm, strict=True):
        counts = [int(hosts * share) for _, share in ROLE_MIX]
        counts[0] += hosts - sum(counts)  # rounding leftovers go to web
        rows += [(farm, role, n) for (role, _), n in zip(ROLE_MIX, counts, strict=True) if n]
    return rows


def register(endpoint: str, total: int) -> dict[str, int]:
    """Create the instances in batches; returns how many hosts each role tag got."""
    ec2 = boto3.session.Session(
        aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION
    ).client("ec2", endpoint_url=endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.0.0/16")["Subnet"]["SubnetId"]
    by_role: dict[str, int] = {}
    for farm, role, count in plan(total):
        stem = f"{farm}-{role.replace(',', '-')}".replace("_", "-")
        number = 0
        for start in range(0, count, BATCH):
            size = min(BATCH, count - start)
            tags = [{"Key": "farm", "Value": farm}, {"Key": "role", "Value": role}]
            reply = ec2.run_instances(
                ImageId="ami-12c6146b",
                InstanceType="t3.small",
                MinCount=size,
                MaxCount=size,
                SubnetId=subnet,
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
            )
            for instance in reply["Instances"]:  # Name (the inventory hostname) is per host
                number += 1
                ec2.create_tags(
                    Resources=[instance["InstanceId"]], Tags=[{"Key": "Name", "Value": f"{stem}-{number}"}]
                )
        by_role[role] = by_role.get(role, 0) + count
    return by_role


def inventory_env(endpoint: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ANSIBLE_", "FARMHAND_"))}
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "ANSIBLE_INVENTORY_CACHE_CONNECTION": str(tmp / "inventory-cache"),
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp / "facts-cache"),
            "ANSIBLE_LOCAL_TEMP": str(tmp / "ansible-tmp"),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        }
    )
    return env


def timed_list(env: dict[str, str], flush: bool) -> tuple[float, dict[str, Any]]:
    cmd = [str(BIN / "ansible-inventory"), "-i", "inventory/aws_ec2.yml", "--list"]
    if flush:
        cmd.append("--flush-cache")
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"ansible-inventory failed ({proc.returncode}):\n{proc.stderr}")
    return elapsed, json.loads(proc.stdout)


def check_hosts(inventory: dict[str, Any], expected: int, what: str) -> None:
    hosts = len(inventory.get("_meta", {}).get("hostvars", {}))
    if hosts != expected:
        raise SystemExit(f"{what}: the inventory has {hosts} hosts, expected {expected}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--instances", type=int, default=1000, help="EC2 instances to register (default 1000)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind (default 3)")
    args = parser.parse_args()
    if args.instances < 1 or args.repeat < 1:
        parser.error("--instances and --repeat must be at least 1")

    with tempfile.TemporaryDirectory(prefix="farmhand-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with moto_server(tmp) as endpoint:
            print(f"moto at {endpoint}")
            start = time.perf_counter()
            by_role = register(endpoint, args.instances)
            print(
                f"registered {args.instances} instances in {time.perf_counter() - start:.1f}s "
                f"across {len(FARMS)} farms: " + ", ".join(f"{r}={n}" for r, n in by_role.items())
            )
            env = inventory_env(endpoint, tmp)
            uncached: list[float] = []
            cached: list[float] = []
            for n in range(1, args.repeat + 1):
                seconds, inventory = timed_list(env, flush=True)
                check_hosts(inventory, args.instances, f"uncached run {n}")
                if not any((tmp / "inventory-cache").iterdir()):
                    raise SystemExit("the uncached run wrote no inventory cache: nothing to compare")
                uncached.append(seconds)
                seconds, inventory = timed_list(env, flush=False)
                check_hosts(inventory, args.instances, f"cached run {n}")
                cached.append(seconds)
                print(f"run {n}: uncached {uncached[-1]:.2f}s, cached {cached[-1]:.2f}s")

    u, c = statistics.median(uncached), statistics.median(cached)
    print()
    print(f"ansible-inventory --list, {args.instances} instances, median of {args.repeat}:")
    print(f"  {'uncached (--flush-cache)':<26}{'cached':<12}uncached/cached")
    print(f"  {u:<26.2f}{c:<12.2f}{u / c:.2f}")
    print(f"host count checked: {args.instances} in every run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
