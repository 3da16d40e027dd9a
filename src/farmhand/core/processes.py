"""What runs on the farm's app hosts, read over SSH the way Ansible reaches them: Unicorn workers
on web hosts, Sidekiq processes (busy threads, quiet or not) on worker hosts, and the farm's
queues from one worker host (the sidekiq_metrics role's `farmhand-sidekiq-stats`)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from farmhand.core import ssh
from farmhand.core.inventory import Host
from farmhand.core.target import Target

STATS = "/usr/local/bin/farmhand-sidekiq-stats"
TIMEOUT = 30
# Run by python3 on the host (as root, through sudo): process titles from /proc, the queue figures.
PROBE = r"""
import json, os, re, subprocess
STATS = "/usr/local/bin/farmhand-sidekiq-stats"
titles = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                titles.append(f.read().replace(b"\0", b" ").decode(errors="replace").strip())
        except OSError:
            pass
unicorn = sum(1 for t in titles if re.match(r"^\S*unicorn\S* worker\[\d+\]", t))
sidekiq = []
for t in titles:
    m = re.match(r"^sidekiq \S+ .*\[(\d+) of (\d+) busy\](.*)$", t)
    if m:
        sidekiq.append({"busy": int(m[1]), "threads": int(m[2]), "quiet": "stopping" in m[3]})
stats = None
if os.access(STATS, os.X_OK):
    p = subprocess.run([STATS], capture_output=True, text=True, timeout=20)
    if p.returncode == 0:
        stats = json.loads(p.stdout)
print(json.dumps({"unicorn_workers": unicorn, "sidekiq": sidekiq, "stats": stats}))
"""


@dataclass
class HostProcesses:
    """One host's processes; `error` says why they could not be read."""

    host: Host
    unicorn_workers: int = 0
    sidekiq: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] | None = None
    error: str = ""

    @property
    def sidekiq_busy(self) -> int:
        return sum(int(p["busy"]) for p in self.sidekiq)

    @property
    def sidekiq_threads(self) -> int:
        return sum(int(p["threads"]) for p in self.sidekiq)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"host": self.host.name, "roles": list(self.host.roles)}
        if self.error:
            data["error"] = self.error
            return data
        if "web" in self.host.roles:
            data["unicorn_workers"] = self.unicorn_workers
        if "worker" in self.host.roles:
            data["sidekiq_processes"] = len(self.sidekiq)
            data["sidekiq_quiet"] = sum(1 for p in self.sidekiq if p["quiet"])
            data["sidekiq_busy"] = self.sidekiq_busy
            data["sidekiq_threads"] = self.sidekiq_threads
        return data


def probe(target: Target, host: Host) -> HostProcesses:
    cmd = ssh.remote_argv(ssh.host_connection(host, target.env), ["sudo", "-n", "python3", "-"])
    cmd[1:1] = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]
    try:
        proc = subprocess.run(
            cmd,
            input=PROBE,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=dict(target.env),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return HostProcesses(host, error=f"no answer within {TIMEOUT}s")
    except FileNotFoundError:
        return HostProcesses(host, error="ssh is not installed")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        why = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        return HostProcesses(host, error=why[-1] if why else f"exit {proc.returncode}")
    data = json.loads(lines[-1])
    return HostProcesses(host, int(data["unicorn_workers"]), list(data["sidekiq"]), data.get("stats"))


def probe_all(target: Target, hosts: Sequence[Host]) -> list[HostProcesses]:
    if not hosts:
        return []
    with ThreadPoolExecutor(max_workers=min(len(hosts), 8)) as pool:
        return list(pool.map(lambda h: probe(target, h), hosts))


def queue_stats(found: Sequence[HostProcesses]) -> dict[str, Any] | None:
    """The farm's queue figures, from the first worker host that answered them."""
    for item in found:
        if item.stats:
            return item.stats
    return None


def summary_by_type(found: Sequence[HostProcesses]) -> dict[str, Any]:
    """Process counts per type: web (Unicorn workers), worker (Sidekiq processes, busy, queued)."""
    web = [f for f in found if "web" in f.host.roles and not f.error]
    workers = [f for f in found if "worker" in f.host.roles and not f.error]
    stats = queue_stats(workers)
    summary: dict[str, Any] = {}
    if any("web" in f.host.roles for f in found):
        summary["web"] = {"hosts": len(web), "unicorn_workers": sum(f.unicorn_workers for f in web)}
    if any("worker" in f.host.roles for f in found):
        summary["worker"] = {
            "hosts": len(workers),
            "sidekiq_processes": sum(len(f.sidekiq) for f in workers),
            "busy": sum(f.sidekiq_busy for f in workers),
            "threads": sum(f.sidekiq_threads for f in workers),
            "queued": stats["queued"] if stats else None,
            "queued_total": stats["queued_total"] if stats else None,
            "oldest_job_age": stats["oldest_job_age"] if stats else None,
            "backlog_per_instance": stats["backlog_per_instance"] if stats else None,
        }
    return summary
