"""Drift reports: which hosts and tasks a converge changed, or with --check would change.

The `farmhand_results` callback (farmhand/ansible_plugins/callback), which every run of the CLI
loads (farmhand.core.runner), records one JSON line per task result that changed, failed or found its
host unreachable, and each host's counts at the end. This module turns those lines into the report
`farm converge --json` prints, and maps it to the exit code: 0 no drift, 3 drift found (check
mode), 1 a failed or unreachable host.

The report never carries file contents: a diff is summarised as line counts and the names of the
attributes that differ, and a `no_log` task shows as censored (Ansible censors its result before
any callback sees it).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from farmhand.core.runner import read_results

FAILURE_MSG_MAX = 200


class Exit(IntEnum):
    """`farm converge` exit codes (2, bad input, is every command's)."""

    OK = 0
    FAILED = 1
    DRIFT = 3


@dataclass(frozen=True)
class DiffSummary:
    """What a diff says without its contents: lines added and removed, attributes that differ."""

    added: int = 0
    removed: int = 0
    attributes: tuple[str, ...] = ()

    def __str__(self) -> str:
        parts = [f"+{self.added} -{self.removed} lines"] if self.added or self.removed else []
        parts += [", ".join(self.attributes)] if self.attributes else []
        return "; ".join(parts)


@dataclass(frozen=True)
class Change:
    """A task that changed a host (or would, in check mode)."""

    play: str
    role: str | None
    task: str
    action: str
    path: str | None = None
    items: tuple[str, ...] = ()
    diff: DiffSummary | None = None
    censored: bool = False


@dataclass(frozen=True)
class Failure:
    play: str
    role: str | None
    task: str
    message: str
    unreachable: bool = False


@dataclass
class HostReport:
    changes: list[Change] = field(default_factory=list)
    # Handlers the changes notified (they run, or would, because of the changes: not drift of their own).
    handlers: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


@dataclass
class Report:
    """One converge's report: the hosts Ansible reached, and those with changes or failures."""

    farm: str
    check: bool
    checked: list[str] = field(default_factory=list)
    hosts: dict[str, HostReport] = field(default_factory=dict)
    # ansible-playbook's own exit code (non-zero: failed or unreachable hosts, or no run at all).
    returncode: int = 0
    # Whether the callback saw the playbook start (missing: Ansible never ran the playbook).
    recorded: bool = True

    @property
    def changed_hosts(self) -> list[str]:
        # A host with neither changes nor failures is here because the recap counted changes.
        return sorted(h for h, r in self.hosts.items() if r.changes or r.handlers or not r.failures)

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h for h, r in self.hosts.items() if r.failures)

    @property
    def exit_code(self) -> Exit:
        if self.returncode != 0 or self.failed_hosts or not self.recorded:
            return Exit.FAILED
        if self.check and self.changed_hosts:
            return Exit.DRIFT
        return Exit.OK

    @property
    def status(self) -> str:
        return {Exit.OK: "clean", Exit.DRIFT: "drift", Exit.FAILED: "failed"}[self.exit_code]

    def summary(self, tasks_per_host: int = 3) -> str:
        """`2 hosts drifted: ci-web-1 (Write the nginx site), ci-web-2 (...)`, or that none did."""
        verb = "drifted" if self.check else "changed"
        hosts = self.changed_hosts
        if not hosts:
            return f"no drift: {len(self.checked)} hosts match the playbooks" if self.check else "no changes"
        described = []
        for host in hosts:
            names = list(dict.fromkeys(c.task for c in self.hosts[host].changes))
            more = f", +{len(names) - tasks_per_host} more" if len(names) > tasks_per_host else ""
            described.append(f"{host} ({', '.join(names[:tasks_per_host])}{more})" if names else host)
        noun = "host" if len(hosts) == 1 else "hosts"
        return f"{len(hosts)} {noun} {verb}: {', '.join(described)}"

    def as_dict(self) -> dict[str, Any]:
        hosts = {}
        for name, host in sorted(self.hosts.items()):
            hosts[name] = {
                "changes": [_change_dict(c) for c in host.changes],
                "handlers": host.handlers,
                "failures": [asdict(f) for f in host.failures],
            }
        return {
            "farm": self.farm,
            "check": self.check,
            "status": self.status,
            "exit_code": int(self.exit_code),
            "checked": sorted(self.checked),
            "changed": self.changed_hosts,
            "failed": self.failed_hosts,
            "hosts": hosts,
        }


def _change_dict(change: Change) -> dict[str, Any]:
    found = asdict(change)
    found["items"] = list(change.items)
    if change.diff is not None:
        found["diff"] = {**asdict(change.diff), "attributes": list(change.diff.attributes)}
    return found


# -- building the report -------------------------------------------------------------------------


def read_events(path: Path) -> list[dict[str, Any]]:
    """The callback's JSON lines (none when the file was never written)."""
    return read_results(path, 0).events


def build_report(
    farm: str,
    check: bool,
    events: Sequence[Mapping[str, Any]],
    recap: Mapping[str, Mapping[str, int]],
    returncode: int,
) -> Report:
    """The report from the callback's events and the PLAY RECAP (which hosts Ansible reached)."""
    report = Report(
        farm=farm,
        check=check,
        checked=sorted(recap),
        returncode=returncode,
        recorded=any(e.get("event") == "start" for e in events),
    )
    for event in events:
        kind = event.get("event")
        if kind not in ("changed", "failed", "unreachable"):
            continue
        host = report.hosts.setdefault(str(event["host"]), HostReport())
        if kind == "changed" and event.get("handler"):
            if event["task"] not in host.handlers:
                host.handlers.append(str(event["task"]))
        elif kind == "changed":
            host.changes.append(_change(event))
        else:
            host.failures.append(_failure(event))
    for name, counts in recap.items():
        host = report.hosts.get(name)
        if host and not (counts.get("failed", 0) or counts.get("unreachable", 0)):
            host.failures.clear()  # rescued by a block: the recap counts no failure
        if counts.get("changed", 0) and name not in report.hosts:  # counted changed: in the report
            report.hosts[name] = HostReport()
    report.hosts = {
        n: h for n, h in report.hosts.items() if h.changes or h.failures or recap.get(n, {}).get("changed", 0)
    }
    return report


def _change(event: Mapping[str, Any]) -> Change:
    censored = bool(event.get("censored"))
    diff = None if censored else summarize_diff(event.get("diff") or [])
    path = None if censored else (_host_path(event.get("path")) or _diff_path(event.get("diff") or []))
    return Change(
        play=str(event.get("play", "")),
        role=event.get("role"),
        task=str(event["task"]),
        action=str(event.get("action", "")),
        path=str(path) if path else None,
        items=tuple(str(i) for i in event.get("items") or [] if i is not None),
        diff=diff,
        censored=censored,
    )


def _failure(event: Mapping[str, Any]) -> Failure:
    lines = str(event.get("msg") or "").strip().splitlines()
    message = "censored (no_log)" if event.get("censored") else (lines[0] if lines else "")
    return Failure(
        play=str(event.get("play", "")),
        role=event.get("role"),
        task=str(event["task"]),
        message=message[:FAILURE_MSG_MAX],
        unreachable=event.get("event") == "unreachable",
    )


def summarize_diff(diffs: Sequence[Mapping[str, Any]]) -> DiffSummary | None:
    """Lines added and removed, and the attributes (mode, owner, state...) that differ, over DIFFS."""
    added = removed = 0
    attributes: list[str] = []
    for diff in diffs:
        before, after = diff.get("before"), diff.get("after")
        if isinstance(before, dict) or isinstance(after, dict):
            old, new = before or {}, after or {}
            attributes += [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        elif isinstance(before, str) or isinstance(after, str):
            a, r = _count_lines(before or "", after or "")
            added, removed = added + a, removed + r
        if isinstance(diff.get("prepared"), str):
            for line in diff["prepared"].splitlines():
                if line.startswith("+") and not line.startswith("+++"):
                    added += 1
                elif line.startswith("-") and not line.startswith("---"):
                    removed += 1
    if not (added or removed or attributes):
        return None
    return DiffSummary(added=added, removed=removed, attributes=tuple(dict.fromkeys(attributes)))


def _count_lines(before: str, after: str) -> tuple[int, int]:
    added = removed = 0
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return added, removed


def _host_path(path: Any) -> str | None:
    """PATH if it names a file on the host: not the controller's temporary copy of a template."""
    if isinstance(path, str) and path.startswith("/") and "/.ansible/tmp/" not in path:
        return path
    return None


def _diff_path(diffs: Sequence[Mapping[str, Any]]) -> str | None:
    """The managed file a diff is about: its before header (copy and template name the file on the
    host there, and the controller's rendered temporary file in the after header)."""
    for diff in diffs:
        for header in (diff.get("before_header"), diff.get("after_header")):
            if found := _host_path(header):
                return found
    return None
