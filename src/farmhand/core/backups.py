"""The farm's pgBackRest backups as the CLI sees them: what the repository holds, the schedules,
and the checks a restore makes before anything changes.

The repository's stanza is the farm's name (site.yml passes it to the pgbackrest role). Every
figure comes from `pgbackrest info` on the primary, over SSH as Ansible reaches it.
"""

from __future__ import annotations

import datetime
import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from farmhand.core import ssh
from farmhand.core.errors import FarmError
from farmhand.core.inventory import Host
from farmhand.core.target import Target

TYPES = ("full", "diff", "incr")
# What --to-time accepts: 'YYYY-MM-DD HH:MM:SS+00' (an offset is required: no guessing zones).
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}(:?\d{2})?|Z)$")


@dataclass(frozen=True)
class Backup:
    """One backup of the repository."""

    label: str
    type: str
    started: int  # epoch seconds
    stopped: int
    size: int  # the database's size
    repo_size: int  # what it takes in the repository (compressed, encrypted)
    wal_start: str
    wal_stop: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "type": self.type,
            "started_at": stamp(self.started),
            "finished_at": stamp(self.stopped),
            "size": self.size,
            "repo_size": self.repo_size,
            "wal_start": self.wal_start,
            "wal_stop": self.wal_stop,
        }


def stamp(epoch: int) -> str:
    """Epoch seconds as `2026-11-23 17:56:45+00`, the form --to-time takes."""
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S+00")


def parse_info(text: str, stanza: str) -> list[Backup]:
    """The backups of STANZA in `pgbackrest --output=json info`, oldest first."""
    try:
        stanzas = json.loads(text)
    except json.JSONDecodeError:
        raise FarmError(
            "pgbackrest info did not answer JSON: is pgBackRest set up? (farm converge)"
        ) from None
    found = next((s for s in stanzas if s.get("name") == stanza), None)
    if found is None or found.get("status", {}).get("code") == 1:
        raise FarmError(f"the repository has no stanza {stanza!r} yet: run `farm converge -f {stanza}`")
    backups = []
    for b in found.get("backup", []):
        backups.append(
            Backup(
                label=b["label"],
                type=b["type"],
                started=int(b["timestamp"]["start"]),
                stopped=int(b["timestamp"]["stop"]),
                size=int(b["info"]["size"]),
                repo_size=int(b["info"]["repository"]["delta"]),
                wal_start=(b.get("archive") or {}).get("start") or "",
                wal_stop=(b.get("archive") or {}).get("stop") or "",
            )
        )
    return sorted(backups, key=lambda b: b.stopped)


def primary(target: Target) -> Host:
    hosts = target.hosts_with_role("db")
    if not hosts:
        raise FarmError(f"farm {target.farm!r} has no primary (host tagged db): it has no backups")
    return hosts[0]


def remote(target: Target, host: Host, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run ARGV on HOST over SSH, as Ansible logs in; its output captured."""
    return ssh.capture(target.env, host, argv)


def pgbackrest_argv(stanza: str, *args: str) -> list[str]:
    return ["sudo", "-u", "postgres", "pgbackrest", f"--stanza={stanza}", *args]


def list_backups(target: Target) -> list[Backup]:
    host = primary(target)
    proc = remote(target, host, pgbackrest_argv(target.farm, "--output=json", "info"))
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise FarmError(f"pgbackrest info failed on {host.name}: {why}")
    return parse_info(proc.stdout, target.farm)


# -- schedules -----------------------------------------------------------------------------------

_SHOW = ("Id", "UnitFileState", "ActiveState", "TimersCalendar", "NextElapseUSecRealtime", "LastTriggerUSec")


@dataclass(frozen=True)
class Schedule:
    type: str
    calendar: str
    next_run: str
    last_run: str

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "calendar": self.calendar, "next": self.next_run, "last": self.last_run}


def parse_timers(text: str) -> list[Schedule]:
    """`systemctl show -p ... pgbackrest-backup-*.timer` blocks: the active timers' schedules."""
    found = []
    for block in text.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        unit = props.get("Id", "")
        match = re.fullmatch(r"pgbackrest-backup-(\w+)\.timer", unit)
        if not match or props.get("ActiveState") != "active":
            continue
        calendar = re.search(r"OnCalendar=(.*?) ;", props.get("TimersCalendar", ""))
        found.append(
            Schedule(
                type=match[1],
                calendar=calendar[1] if calendar else props.get("TimersCalendar", ""),
                next_run=props.get("NextElapseUSecRealtime") or "-",
                last_run=props.get("LastTriggerUSec") or "never",
            )
        )
    order = {t: n for n, t in enumerate(TYPES)}
    return sorted(found, key=lambda s: order.get(s.type, 99))


def schedules(target: Target) -> list[Schedule]:
    host = primary(target)
    units = [f"pgbackrest-backup-{t}.timer" for t in TYPES]
    proc = remote(target, host, ["systemctl", "show", *(f"--property={p}" for p in _SHOW), *units])
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise FarmError(f"could not read the backup timers on {host.name}: {why}")
    return parse_timers(proc.stdout)


# -- restore -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Restore:
    """A checked restore: what playbooks/pg_restore.yml gets."""

    host: str
    in_place: bool
    label: str | None = None
    to_time: str | None = None

    def extra_vars(self) -> dict[str, Any]:
        return {
            "farmhand_restore": {
                "host": self.host,
                "in_place": self.in_place,
                "set": self.label or "",
                "time": self.to_time or "",
            }
        }

    def describe(self) -> str:
        if self.label:
            return f"backup {self.label}"
        if self.to_time:
            return f"the state at {self.to_time}"
        return "the latest backup and all archived WAL"


def parse_time(value: str) -> datetime.datetime:
    """--to-time: 'YYYY-MM-DD HH:MM:SS+00' (an offset is required)."""
    if not _TIME.match(value.strip()):
        raise FarmError(f"invalid --to-time {value!r}: give 'YYYY-MM-DD HH:MM:SS+00' (with a UTC offset)")
    text = value.strip().replace("Z", "+00:00")
    text = re.sub(r"([+-]\d{2})$", r"\1:00", text)
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        raise FarmError(f"invalid --to-time {value!r}: not a date and time") from None


def check_request(
    target: Target, label: str | None, to_time: str | None, host_name: str | None, confirm: str | None
) -> Restore:
    """Check what can be checked without asking a host: where to restore, --confirm, the time's form."""
    if label and to_time:
        raise FarmError("give a backup LABEL or --to-time, not both")
    if to_time is not None:
        parse_time(to_time)
    the_primary = primary(target)
    spare = target.hosts_with_role("db_restore")
    if host_name is None:
        if not spare:
            raise FarmError(
                f"farm {target.farm!r} has no fresh host to restore into (a host tagged db_restore): "
                f"add one, or restore in place with --target {the_primary.name} --confirm {target.farm}"
            )
        host_name = spare[0].name
    restorable = {the_primary.name, *(h.name for h in spare)}
    if host_name not in restorable:
        raise FarmError(
            f"cannot restore into {host_name!r}: restore into a host tagged db_restore "
            f"({', '.join(h.name for h in spare) or 'none'}) or the primary {the_primary.name} (in place)"
        )
    in_place = host_name == the_primary.name
    if in_place and confirm != target.farm:
        raise FarmError(
            f"restoring in place replaces the database of {target.farm!r} on {host_name}: "
            f"to proceed, pass --confirm {target.farm}"
        )
    return Restore(host=host_name, in_place=in_place, label=label, to_time=to_time)


def plan_restore(target: Target, request: Restore, backups: Sequence[Backup]) -> Restore:
    """Check the request against the repository's backups; every refusal is one clear FarmError."""
    if not backups:
        raise FarmError(f"farm {target.farm!r} has no backups yet: farm pg:backups:capture -f {target.farm}")
    if request.label is not None and request.label not in {b.label for b in backups}:
        raise FarmError(
            f"unknown backup {request.label!r}: the backups of {target.farm!r} are "
            + ", ".join(b.label for b in backups)
        )
    if request.to_time is not None:
        first = backups[0]
        if parse_time(request.to_time).timestamp() < first.stopped:
            raise FarmError(
                f"--to-time {request.to_time!r} is before the first backup of {target.farm!r} finished "
                f"({stamp(first.stopped)}): nothing to restore from"
            )
    return request


def summary(backups: Sequence[Backup]) -> Mapping[str, int]:
    return {t: sum(1 for b in backups if b.type == t) for t in TYPES}
