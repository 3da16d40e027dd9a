"""What runs on the farm's app hosts, read over SSH the way Ansible reaches them: Unicorn workers
on web hosts, Sidekiq processes (busy threads, quiet or not) on worker hosts, and the farm's
queues from one worker host (the sidekiq_metrics role's `farmhand-sidekiq-stats`)."""

from __future__ import annotations

import inspect
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


def tally(titles: list[str], units: list[str], app: str, root: str) -> dict[str, Any]:
    """The app's processes among a host's process TITLES and running systemd UNITS: Unicorn
    workers of the app (their config is under its ROOT), its Sidekiq processes (tagged `<app>-...`
    by sidekiq_worker: busy threads, quiet or not) and its other process types' instances
    (app_processes' `<app>-<type>@<n>.service`). Another app's, left on the host, are not counted.
    Runs on the host too: PROBE carries its source."""
    import re

    unicorn = sum(
        1 for t in titles if re.match(r"^\S*unicorn\S* worker\[\d+\]", t) and f" {root}/shared/" in f" {t}"
    )
    sidekiq = []
    for t in titles:
        m = re.match(r"^sidekiq \S+ (\S+) \[(\d+) of (\d+) busy\](.*)$", t)
        if m and m[1].startswith(f"{app}-"):
            sidekiq.append({"busy": int(m[2]), "threads": int(m[3]), "quiet": "stopping" in m[4]})
    services: dict[str, int] = {}
    for unit in units:
        m = re.match(rf"^{re.escape(app)}-([a-z][a-z0-9_]*)@\d+\.service$", unit)
        if m:
            services[m[1]] = services.get(m[1], 0) + 1
    return {"unicorn_workers": unicorn, "sidekiq": sidekiq, "services": services}


def live_release(root: str) -> str:
    """The name (vN) of the release the app's `current` (under ROOT) points at, from the RELEASE
    file the build writes; "" if there is none. Runs on the host too: PROBE carries its source."""
    try:
        with open(f"{root}/current/RELEASE", encoding="utf-8") as release:
            return release.read().strip()
    except OSError:
        return ""


# Run by python3 on the host (as root, through sudo) with the app's name and root as arguments:
# process titles from /proc, the running units of the app's process types, the queue figures, the
# release `current` points at.
PROBE = (
    "from typing import Any\n"
    + inspect.getsource(tally)
    + inspect.getsource(live_release)
    + r"""
import json, os, subprocess, sys
STATS = "/usr/local/bin/farmhand-sidekiq-stats"
app, root = sys.argv[1], sys.argv[2]
titles = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                titles.append(f.read().replace(b"\0", b" ").decode(errors="replace").strip())
        except OSError:
            pass
listed = subprocess.run(
    ["systemctl", "list-units", "--plain", "--no-legend", "--state=running", f"{app}-*@*.service"],
    capture_output=True, text=True, timeout=20,
)
units = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
found = tally(titles, units, app, root)
stats = None
if os.access(STATS, os.X_OK):
    p = subprocess.run([STATS], capture_output=True, text=True, timeout=20)
    if p.returncode == 0:
        stats = json.loads(p.stdout)
print(json.dumps({**found, "stats": stats, "release": live_release(root)}))
"""
)


@dataclass
class HostProcesses:
    """One host's processes; `error` says why they could not be read."""

    host: Host
    unicorn_workers: int = 0
    sidekiq: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] | None = None
    error: str = ""
    # The app's other process types (Procfile): running instances per type.
    services: dict[str, int] = field(default_factory=dict)
    # The release (vN) the host's `current` points at ("" if none): after a failed deploy, which
    # host runs what.
    release: str = ""

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
        data["release"] = self.release or None
        if "web" in self.host.roles:
            data["unicorn_workers"] = self.unicorn_workers
        if "worker" in self.host.roles:
            data["sidekiq_processes"] = len(self.sidekiq)
            data["sidekiq_quiet"] = sum(1 for p in self.sidekiq if p["quiet"])
            data["sidekiq_busy"] = self.sidekiq_busy
            data["sidekiq_threads"] = self.sidekiq_threads
            data["services"] = dict(self.services)
        return data


def probe(target: Target, host: Host, app: tuple[str, str]) -> HostProcesses:
    """HOST's processes of APP (its name and root)."""
    remote = ["sudo", "-n", "python3", "-", *app]
    cmd = ssh.remote_argv(ssh.host_connection(host, target.env), remote)
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
    return HostProcesses(
        host,
        int(data["unicorn_workers"]),
        list(data["sidekiq"]),
        data.get("stats"),
        services={str(k): int(v) for k, v in data.get("services", {}).items()},
        release=str(data.get("release") or ""),
    )


def probe_all(target: Target, hosts: Sequence[Host]) -> list[HostProcesses]:
    if not hosts:
        return []
    project = target.project
    app = (
        str(project.farm_var(target.farm, "farmhand_app_name")),
        str(project.farm_var(target.farm, "farmhand_app_root")),
    )
    with ThreadPoolExecutor(max_workers=min(len(hosts), 8)) as pool:
        return list(pool.map(lambda h: probe(target, h, app), hosts))


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
            "services": _sum_services(workers),
            "queued": stats["queued"] if stats else None,
            "queued_total": stats["queued_total"] if stats else None,
            "oldest_job_age": stats["oldest_job_age"] if stats else None,
            "backlog_per_instance": stats["backlog_per_instance"] if stats else None,
        }
    return summary


def _sum_services(found: Sequence[HostProcesses]) -> dict[str, int]:
    total: dict[str, int] = {}
    for item in found:
        for name, count in item.services.items():
            total[name] = total.get(name, 0) + count
    return total
