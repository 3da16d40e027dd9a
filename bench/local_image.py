#!/usr/bin/env python3
"""A local farm's first converge from the bare image against one with the roles' packages baked in.

Two farms of the same shape (the `jobs` farm's: web, lb+logs, db+worker+cron) are brought up one
after the other, one from the bare farm image (`farm local image`), one from the image named by
--image (`farmhand_local_image`; default molecule's, `make image-molecule`), and each is converged
once from nothing. Printed side by side: wall time, the controller's CPU (the `farm converge`
process and its children) and the hosts' CPU (their containers' cgroups), and the ratios.

    python bench/local_image.py [--image localhost/farmhand/bookworm-molecule:latest]

Each farm lives in a project of its own under .farm/bench-image-*/ (this checkout's playbooks,
roles and inventory, its group_vars plus the farm's shape and image), and is torn down after.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FARM_BIN = Path(sys.executable).with_name("farm")
SHAPE = "farmhand_local_shape:\n  web: 1\n  lb,logs: 1\n  db,worker,cron: 1\n"
CGROUP_CPU = Path("/sys/fs/cgroup/cpuacct")


def project(base: Path, farm: str, image: str) -> Path:
    """A project laid out as this checkout, whose farm FARM has the bench's shape and IMAGE."""
    root = base / farm
    root.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in {"group_vars", "inventory", "playbooks", ".farm", ".git", ".venv"}:
            (root / entry.name).symlink_to(entry)
    # A copy: the playbooks reach the project's files as playbook_dir/.. (through a symlink, `..`
    # would be this checkout).
    shutil.copytree(ROOT / "playbooks", root / "playbooks")
    (root / "inventory").mkdir()
    (root / "inventory" / "aws_ec2.yml").symlink_to(ROOT / "inventory" / "aws_ec2.yml")
    (root / "inventory" / "group_vars").symlink_to("../group_vars")
    shutil.copytree(ROOT / "group_vars", root / "group_vars", symlinks=True)
    (root / "group_vars" / f"farm_{farm}").mkdir()
    (root / "group_vars" / f"farm_{farm}" / "local.yml").write_text(
        f"---\n{SHAPE}farmhand_local_image: {image!r}\n"
    )
    return root


def farm(root: Path, *args: str) -> None:
    proc = subprocess.run([str(FARM_BIN), *args], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"farm {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def containers_cpu(farm_name: str) -> float:
    """CPU seconds the farm's containers have used (their cgroups, cgroup v1 cpuacct)."""
    ids = subprocess.run(
        ["podman", "ps", "--filter", f"label=farmhand.farm={farm_name}", "--format", "{{.ID}}", "--no-trunc"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    total = 0.0
    for cid in ids:
        found = next(CGROUP_CPU.rglob(f"libpod-{cid}*/cpuacct.usage"), None)
        if found is None:
            sys.exit(f"no cpuacct cgroup for container {cid[:12]} (cgroup v1 expected)")
        total += int(found.read_text()) / 1e9
    return total


def measure(base: Path, name: str, image: str) -> dict[str, float]:
    root = project(base, name, image)
    try:
        farm(root, "local", "up", "-f", name)
        before_hosts = containers_cpu(name)
        before_ctl = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        farm(root, "converge", "-f", name)
        wall = time.perf_counter() - start
        after_ctl = resource.getrusage(resource.RUSAGE_CHILDREN)
        hosts = containers_cpu(name) - before_hosts
    finally:
        subprocess.run([str(FARM_BIN), "local", "down", "-f", name], cwd=root, capture_output=True)
    controller = (after_ctl.ru_utime + after_ctl.ru_stime) - (before_ctl.ru_utime + before_ctl.ru_stime)
    return {"wall": wall, "controller": controller, "hosts": hosts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="localhost/farmhand/bookworm-molecule:latest")
    args = parser.parse_args()
    (ROOT / ".farm").mkdir(exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="bench-image-", dir=ROOT / ".farm"))
    runs = {
        "bare": measure(base, "benchbare", ""),
        "baked": measure(base, "benchbaked", args.image),
    }
    print(f"first converge of a 3-host farm (web; lb,logs; db,worker,cron), image baked: {args.image}")
    print(f"{'image':<8}{'wall s':>10}{'controller CPU s':>20}{'hosts CPU s':>15}{'total CPU s':>15}")
    for label, r in runs.items():
        total = r["controller"] + r["hosts"]
        print(f"{label:<8}{r['wall']:>10.1f}{r['controller']:>20.1f}{r['hosts']:>15.1f}{total:>15.1f}")
    bare, baked = runs["bare"], runs["baked"]
    ratio = (bare["controller"] + bare["hosts"]) / (baked["controller"] + baked["hosts"])
    print(f"ratio bare/baked: wall {bare['wall'] / baked['wall']:.2f}x, CPU {ratio:.2f}x")


if __name__ == "__main__":
    main()
