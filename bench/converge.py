#!/usr/bin/env python3
"""No-op converge of a local farm: Farmhand's ansible.cfg against stock Ansible settings.

Both runs converge the same, already converged farm with the same playbook and inventory, side
by side in one run, alternating so that load on the machine hits both alike. "Stock" means what
Ansible does out of the box: no pipelining, no ControlPersist (a new SSH connection for every
task), 5 forks, facts gathered in full by every play, no fact cache.

    python bench/converge.py [--farm demo] [--repeat 2]

The farm must be up (`farm local up -f demo`); it is converged once first so both measure a no-op.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from farmhand.core.local.farm import REAL_AWS_VARS, LocalFarm  # noqa: E402
from farmhand.core.project import Project  # noqa: E402
from farmhand.core.runner import read_results, recording  # noqa: E402

STOCK_CFG = """\
[defaults]
inventory = {root}/inventory/aws_ec2.yml
roles_path = {root}/roles
interpreter_python = /usr/bin/python3
deprecation_warnings = false

[inventory]
enable_plugins = amazon.aws.aws_ec2
cache_plugin = ansible.builtin.jsonfile
cache_connection = {cache}

[ssh_connection]
pipelining = false
ssh_args = -o ControlMaster=no -o StrictHostKeyChecking=accept-new
"""


def farm_env(farm: str) -> dict[str, str]:
    """The environment `farm local env` exports for the farm."""
    env = {k: v for k, v in os.environ.items() if k not in REAL_AWS_VARS}
    env.update(LocalFarm(Project(ROOT), farm).env())
    return env


def playbook(farm: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], dict]:
    """site.yml on the farm, and each host's counts (recorded by the CLI's farmhand_results callback)."""
    cmd = ["ansible-playbook", "playbooks/site.yml", "--limit", f"farm_{farm}"]
    with recording(ROOT, env) as (run_env, results):
        proc = subprocess.run(cmd, cwd=ROOT, env=run_env, capture_output=True, text=True)
        return proc, read_results(results, proc.returncode).recap


def converge(farm: str, env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc, recap = playbook(farm, env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"converge failed:\n{proc.stdout[-3000:]}")
    changed = sum(c["changed"] for c in recap.values())
    return elapsed, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--farm", default="demo")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    base = farm_env(args.farm)
    tmp = Path(tempfile.mkdtemp(prefix="farmhand-bench-"))
    stock_cfg = tmp / "ansible.cfg"
    stock_cfg.write_text(STOCK_CFG.format(root=ROOT, cache=tmp / "inventory-cache"))
    tuned = {**base, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    stock = {**base, "ANSIBLE_CONFIG": str(stock_cfg)}

    hosts = len(playbook(args.farm, tuned)[1])
    print(f"farm {args.farm}: {hosts} hosts, converged once before measuring; {args.repeat} runs each")

    times: dict[str, list[float]] = {"farmhand": [], "stock": []}
    for n in range(args.repeat):
        for label, env in (("farmhand", tuned), ("stock", stock)):
            elapsed, changed = converge(args.farm, env)
            times[label].append(elapsed)
            print(f"  run {n + 1} {label:<9} {elapsed:7.1f} s   changed={changed}")
    tuned_s = statistics.median(times["farmhand"])
    stock_s = statistics.median(times["stock"])
    print()
    print(f"{'settings':<12}{'median no-op converge':>24}")
    print(f"{'stock':<12}{stock_s:>22.1f} s")
    print(f"{'farmhand':<12}{tuned_s:>22.1f} s")
    print(f"ratio stock/farmhand: {stock_s / tuned_s:.2f}x")


if __name__ == "__main__":
    main()
