#!/usr/bin/env python3
"""PostgreSQL with stock settings against postgres_tuned's, side by side in one run.

On the local farm's primary (its container), a scratch cluster `bench` (port 5499, its own data
directory, removed at the end) is created with Debian's stock settings, loaded with pgbench's
tables, and measured; then the farm's tuning file (conf.d/50-farmhand-tuning.conf, exactly what
postgres_tuned wrote for the primary) is put in its conf.d, the cluster restarted, and the same
workloads measured again:

- oltp: pgbench's TPC-B-like transactions, 8 clients, for --seconds;
- analytics: a sort/aggregate-heavy mix (GROUP BY over every account, a wide ORDER BY, a
  window function), 4 clients, for --seconds.

It alternates stock and tuned rounds (--rounds) and prints the median of each side: pgbench's
transactions per second, analytics scripts per minute, and the tuned/stock ratio.

    python bench/pgtune.py [--farm demo] [--scale 50] [--seconds 30]

The farm must be up and converged (`make demo`). Nothing of the farm's own cluster is touched.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from farmhand.core.local.farm import LocalFarm  # noqa: E402
from farmhand.core.project import Project  # noqa: E402

FARM_BIN = str(Path(sys.executable).with_name("farm"))
PORT = 5499
ANALYTICS = """\
SELECT bid, count(*), avg(abalance), percentile_cont(0.9) WITHIN GROUP (ORDER BY abalance)
  FROM pgbench_accounts GROUP BY bid;
SELECT aid, abalance, filler FROM pgbench_accounts ORDER BY abalance DESC, filler LIMIT 50 OFFSET 5000;
SELECT aid, rank() OVER (PARTITION BY bid ORDER BY abalance DESC) FROM pgbench_accounts
  ORDER BY 2, 1 LIMIT 20;
"""


def sh(container: str, script: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["podman", "exec", "-i", container, "bash", "-c", script], capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        sys.exit(f"failed on {container}: {script[:200]}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def as_postgres(command: str) -> str:
    return f"runuser -u postgres -- {command}"


def tps(output: str) -> float:
    match = re.search(r"tps = ([0-9.]+)", output)
    if not match:
        sys.exit(f"no tps in pgbench output:\n{output[-2000:]}")
    return float(match.group(1))


def measure(container: str, seconds: int) -> dict[str, float]:
    oltp = sh(container, as_postgres(f"pgbench -p {PORT} -c 8 -j 2 -T {seconds} -n bench"))
    analytics = sh(
        container,
        f"cat > /tmp/farmhand-analytics.sql <<'EOF'\n{ANALYTICS}EOF\n"
        + as_postgres(f"pgbench -p {PORT} -c 4 -j 2 -T {seconds} -n -f /tmp/farmhand-analytics.sql bench"),
    )
    return {"oltp": tps(oltp), "analytics": tps(analytics)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--farm", default="demo")
    parser.add_argument(
        "--scale", type=int, default=50, help="pgbench scale (50: 5 million accounts, 750 MB)"
    )
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2, help="alternating stock/tuned rounds")
    args = parser.parse_args()
    local = LocalFarm(Project.locate(ROOT), args.farm)
    info = subprocess.run(
        [FARM_BIN, "pg:info", "-f", args.farm, "--json"], capture_output=True, text=True, cwd=ROOT
    )
    if info.returncode != 0:
        sys.exit(f"farm pg:info failed (is the farm up? make demo): {info.stderr.strip()}")
    tagged = [h["name"] for h in json.loads(info.stdout)["hosts"] if h["tagged"] == "db"]
    primary = next((h for h in local.hosts() if h.name in tagged), None)  # the tags follow cutovers
    if primary is None:
        sys.exit(f"local farm {args.farm!r} has no primary (host tagged db)")
    box = primary.container
    tuning = "/etc/postgresql/15/main/conf.d/50-farmhand-tuning.conf"
    sh(box, f"test -f {tuning}")
    sh(box, "pg_dropcluster --stop 15 bench 2>/dev/null || true", check=False)
    try:
        sh(box, f"pg_createcluster 15 bench -p {PORT} >/dev/null && pg_ctlcluster 15 bench start")
        sh(box, as_postgres(f"createdb -p {PORT} bench"))
        sh(box, as_postgres(f"pgbench -p {PORT} -i -q -s {args.scale} bench") + " 2>&1")
        sh(box, as_postgres(f"vacuumdb -p {PORT} --analyze bench"))
        print(
            f"Local farm {args.farm}, primary {primary.name}: scale {args.scale}, {args.seconds} s each,"
            f" {args.rounds} rounds of stock then tuned (medians)"
        )
        # The farm's tuning, minus what would clash with the farm's own cluster (its port).
        bench_conf = "/etc/postgresql/15/bench/conf.d/50-farmhand-tuning.conf"
        use_tuned = f"grep -vE '^(port|listen_addresses) ' {tuning} > {bench_conf}"
        use_stock = f"rm -f {bench_conf}"
        query = (
            "select string_agg(name || '=' || setting || coalesce(unit, ''), ' ') from pg_settings"
            " where name in ('shared_buffers', 'work_mem', 'effective_cache_size',"
            " 'max_parallel_workers_per_gather', 'jit')"
        )
        runs: dict[str, list[dict[str, float]]] = {"stock": [], "tuned": []}
        settings = ""
        # Alternating rounds: what the machine does meanwhile weighs on both sides alike.
        for _ in range(args.rounds):
            for side, switch in (("stock", use_stock), ("tuned", use_tuned)):
                sh(box, f"{switch} && pg_ctlcluster 15 bench restart")
                if side == "tuned":
                    settings = sh(box, as_postgres(f'psql -p {PORT} -At -d bench -c "{query}"')).strip()
                runs[side].append(measure(box, args.seconds))
    finally:
        sh(box, "pg_dropcluster --stop 15 bench", check=False)
    print(f"tuned settings: {settings}")
    print(f"{'workload':<10} {'unit':<12} {'stock':>10} {'tuned':>10} {'tuned/stock':>12}")
    # pgbench counts the analytics script (three queries) as one transaction: per minute reads better.
    for name, unit, scale in (("oltp", "tps", 1.0), ("analytics", "scripts/min", 60.0)):
        stock = statistics.median(r[name] for r in runs["stock"]) * scale
        tuned = statistics.median(r[name] for r in runs["tuned"]) * scale
        print(f"{name:<10} {unit:<12} {stock:>10.2f} {tuned:>10.2f} {tuned / stock:>11.2f}x")


if __name__ == "__main__":
    main()
