#!/usr/bin/env python3
"""A code-only deploy of a local farm under load: Farmhand's rolling deploy against a naive one.

First a `farm deploy --force` with no load; then, side by side in one run, each under the same
HTTP load on the farm's load balancer (wrk on 127.0.0.1, 2 threads, 8 connections, stopped when
the step ends):

- farmhand: `farm deploy --force` (build on every app host, switch `current`, restart the web
  hosts one at a time, each drained out of the load balancer, by Unicorn's USR2 re-exec);
- naive: `systemctl restart` of Unicorn on every web host at once, what a deploy without
  Farmhand's restart does.

It prints the seconds each took, the requests served and the requests that failed.

    python bench/deploy.py [--farm demo] [--repeat 1]

The farm must be up, converged and deployed (`make demo`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from farmhand.core.local.farm import LocalFarm  # noqa: E402
from farmhand.core.local.load import Load, LoadResult  # noqa: E402
from farmhand.core.project import Project  # noqa: E402

FARM_BIN = str(Path(sys.executable).with_name("farm"))


def farmhand_deploy(farm: str) -> None:
    proc = subprocess.run(
        [FARM_BIN, "deploy", "-f", farm, "--force"], cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"farm deploy failed:\n{proc.stdout[-3000:]}\n{proc.stderr}")


def naive_restart(local: LocalFarm) -> Callable[[str], None]:
    containers = [h.container for h in local.hosts() if "web" in h.roles]

    def restart(_: str) -> None:
        procs = [
            subprocess.Popen(["podman", "exec", c, "systemctl", "restart", "unicorn-bookshelf"])
            for c in containers
        ]
        if any(p.wait() != 0 for p in procs):
            sys.exit("systemctl restart failed")

    return restart


def measure(url: str, action: Callable[[str], None], farm: str) -> tuple[float, LoadResult]:
    with Load(url) as load:
        start = time.perf_counter()
        action(farm)
        elapsed = time.perf_counter() - start
        time.sleep(3)  # requests that were queued or retried during the step land in the count
    assert load.result is not None
    return elapsed, load.result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--farm", default="demo")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    local = LocalFarm(Project(ROOT), args.farm)
    urls = local.app_urls()
    if not urls:
        sys.exit(f"no local farm {args.farm!r} with a load balancer here: run `make demo` first")
    os.environ.update(local.env())
    url = f"{urls[0]}/books"
    rows: list[tuple[str, float, LoadResult]] = []
    idle: list[float] = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        farmhand_deploy(args.farm)
        idle.append(time.perf_counter() - start)
        rows.append(("farmhand rolling deploy", *measure(url, farmhand_deploy, args.farm)))
        rows.append(("naive restart (all at once)", *measure(url, naive_restart(local), args.farm)))
        # Leave the farm as Farmhand would: a clean rolling restart after the naive one.
        subprocess.run([FARM_BIN, "restart", "-f", args.farm], cwd=ROOT, capture_output=True, check=True)

    print(f"Code-only deploy of local farm {args.farm!r}: {min(idle):.1f} s without load")
    print(f"Under load (wrk -t2 -c8 on {url}, sharing the machine's cores with the farm):")
    print(f"{'':<30}{'seconds':>10}{'requests':>10}{'failed':>8}{'failed %':>10}")
    for name, seconds, result in rows:
        share = 100 * result.failed / max(result.requests, 1)
        print(f"{name:<30}{seconds:>10.1f}{result.requests:>10}{result.failed:>8}{share:>9.2f}%")
    ours = [r for n, _, r in rows if n.startswith("farmhand")]
    naive = [r for n, _, r in rows if n.startswith("naive")]
    print(
        f"failed requests: farmhand {sum(r.failed for r in ours)}, naive {sum(r.failed for r in naive)} "
        f"(over {sum(r.requests for r in ours)} and {sum(r.requests for r in naive)} requests)"
    )


if __name__ == "__main__":
    main()
