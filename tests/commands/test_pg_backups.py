"""`farm pg:backups`, `pg:backups:capture`, `pg:backups:schedules`, `pg:backups:restore`, with an ssh
that stands in for the primary's pgBackRest and systemd, and a stand-in for ansible-playbook: what each
asks the primary, what it shows, and the restore it hands pg_restore.yml."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import (
    OK_RECAP,
    assert_ok,
    assert_one_line_error,
    calls,
    fake_playbook,
    farm,
    with_fake_ssh,
)

# The primary as the fake ssh plays it: `pgbackrest info` lists the backups in FAKE_BACKUPS (a JSON
# file), `pgbackrest backup` adds one (or fails with FAKE_BACKUP_EXIT), `systemctl show` the timers.
PRIMARY = """#!/usr/bin/env python3
import json, os, shlex, sys
args = sys.argv[1:]
words = shlex.split(args[args.index("--") + 1])
with open(os.environ["FAKE_SSH_LOG"], "a") as log:
    log.write(json.dumps([args[args.index("--") - 1], *words]) + "\\n")
state = os.environ["FAKE_BACKUPS"]
with open(state) as f:
    backups = json.load(f)
if words[0] == "systemctl":
    print(os.environ["FAKE_TIMERS"])
elif words[-1] == "info":
    stanza = next(w for w in words if w.startswith("--stanza=")).split("=", 1)[1]
    print(json.dumps([{"name": stanza, "status": {"code": 0, "message": "ok"}, "backup": backups}]))
elif words[-1] == "backup":
    code = int(os.environ.get("FAKE_BACKUP_EXIT", "0"))
    print("P00   INFO: backup command begin")
    if code:
        print("P00  ERROR: [056]: unable to find primary cluster", file=sys.stderr)
        sys.exit(code)
    kind = next(w for w in words if w.startswith("--type=")).split("=", 1)[1]
    backups.append({
        "label": "20261125-100000F_20261125-110000" + kind[0].upper(),
        "type": kind,
        "timestamp": {"start": 1_795_179_600, "stop": 1_795_179_660},
        "info": {"size": 1000, "delta": 1000, "repository": {"size": 100, "delta": 100}},
        "archive": {"start": "000000010000000000000005", "stop": "000000010000000000000005"},
    })
    with open(state, "w") as f:
        json.dump(backups, f)
    print("P00   INFO: backup command end: completed successfully")
"""


def raw_backup(label: str, kind: str, start: int) -> dict:
    """A backup as `pgbackrest --output=json info` lists it."""
    return {
        "label": label,
        "type": kind,
        "timestamp": {"start": start, "stop": start + 60},
        "info": {
            "size": 31_000_000,
            "delta": 31_000_000,
            "repository": {"size": 4_000_000, "delta": 3_500_000},
        },
        "archive": {"start": "000000010000000000000003", "stop": "000000010000000000000004"},
    }


FULL = raw_backup("20261123-100000F", "full", 1_795_000_000)
DIFF = raw_backup("20261123-100000F_20261124-100000D", "diff", 1_795_086_400)
TIMERS = (
    "Id=pgbackrest-backup-full.timer\nUnitFileState=enabled\nActiveState=active\n"
    "TimersCalendar={ OnCalendar=Sun *-*-* 03:00:00 ; next_elapse=Sun 2026-11-29 03:00:00 UTC }\n"
    "NextElapseUSecRealtime=Sun 2026-11-29 03:00:00 UTC\nLastTriggerUSec=\n\n"
    "Id=pgbackrest-backup-incr.timer\nUnitFileState=\nActiveState=inactive\nTimersCalendar=\n"
)


def primary(env: dict[str, str], tmp_path: Path, *backups: dict) -> tuple[dict[str, str], Path, Path]:
    """ENV with the fake primary's ssh; its call log and its list of backups."""
    state = tmp_path / "backups.json"
    state.write_text(json.dumps(list(backups)))
    log = tmp_path / "ssh.log"
    env = with_fake_ssh(env, tmp_path, PRIMARY)
    return {**env, "FAKE_SSH_LOG": str(log), "FAKE_BACKUPS": str(state), "FAKE_TIMERS": TIMERS}, log, state


INFO = ["sudo", "-u", "postgres", "pgbackrest", "--stanza=pgf", "--output=json", "info"]


def test_pg_backups_lists_the_primarys_backups(aws_env, farms, tmp_path):
    env, log, _ = primary(aws_env, tmp_path, FULL, DIFF)
    listed = farm("pg:backups", "-f", "pgf", "--json", env=env)
    assert_ok(listed)
    data = json.loads(listed.stdout)
    assert data["farm"] == "pgf"
    assert [(b["label"], b["type"]) for b in data["backups"]] == [
        ("20261123-100000F", "full"),
        ("20261123-100000F_20261124-100000D", "diff"),
    ]
    table = farm("pg:backups", "-f", "pgf", env=env)
    assert_ok(table)
    lines = table.stdout.splitlines()
    assert lines[0] == "=== pgf Backups"
    rows = [line.split()[:2] for line in lines if line.startswith("20261123")]
    assert rows == [
        ["20261123-100000F_20261124-100000D", "diff"],
        ["20261123-100000F", "full"],
    ]  # newest first
    assert calls(log) == [[f"admin@{farms['pgf-db-1']['ip']}", *INFO]] * 2


def test_pg_backups_without_backups_says_how_to_take_one(aws_env, farms, tmp_path):
    env, _, _ = primary(aws_env, tmp_path)
    proc = farm("pg:backups", "-f", "pgf", env=env)
    assert_ok(proc)
    assert "no backups yet: farm pg:backups:capture -f pgf" in proc.stdout + proc.stderr


def test_capture_takes_a_backup_of_the_type_asked_and_names_it(aws_env, farms, tmp_path):
    env, log, state = primary(aws_env, tmp_path, FULL)
    proc = farm("pg:backups:capture", "-f", "pgf", "--type", "diff", env=env)
    assert_ok(proc)
    assert "Taking a diff backup of pgf on pgf-db-1" in proc.stdout
    assert "backup command end: completed successfully" in proc.stdout
    assert "Backup 20261125-100000F_20261125-110000D (diff, 1000 B) of pgf is done" in proc.stdout
    backup = [
        "sudo",
        "-u",
        "postgres",
        "pgbackrest",
        "--stanza=pgf",
        "--type=diff",
        "--log-level-console=detail",
    ]
    assert [call[1:] for call in calls(log)] == [INFO, [*backup, "backup"], INFO]
    assert len(json.loads(state.read_text())) == 2


def test_a_failed_capture_is_one_line_with_pgbackrests_exit(aws_env, farms, tmp_path):
    env, _, state = primary(aws_env, tmp_path, FULL)
    proc = farm("pg:backups:capture", "-f", "pgf", env={**env, "FAKE_BACKUP_EXIT": "56"})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "farm: error: the full backup of pgf failed on pgf-db-1 (pgbackrest exit 56)"
    )
    assert len(json.loads(state.read_text())) == 1


def test_schedules_are_the_primarys_active_timers(aws_env, farms, tmp_path):
    env, log, _ = primary(aws_env, tmp_path)
    proc = farm("pg:backups:schedules", "-f", "pgf", "--json", env=env)
    assert_ok(proc)
    assert json.loads(proc.stdout) == {
        "farm": "pgf",
        "schedules": [
            {
                "type": "full",
                "calendar": "Sun *-*-* 03:00:00",
                "next": "Sun 2026-11-29 03:00:00 UTC",
                "last": "never",
            }
        ],
    }
    ((_, *words),) = calls(log)
    assert words[:2] == ["systemctl", "show"]
    assert "pgbackrest-backup-full.timer" in words


def test_restore_hands_pg_restore_yml_the_backup_and_the_fresh_host(aws_env, farms, fleet, tmp_path):
    fleet.add("pgf", "db_restore", "pgf-db-restore-1")
    path, played = fake_playbook(tmp_path, OK_RECAP)
    env, _, _ = primary({**aws_env, "PATH": path}, tmp_path, FULL, DIFF)
    proc = farm("pg:backups:restore", "-f", "pgf", FULL["label"], env=env)
    assert_ok(proc)
    assert "Restoring backup 20261123-100000F of pgf into pgf-db-restore-1" in proc.stdout
    restore = {"host": "pgf-db-restore-1", "in_place": False, "set": FULL["label"], "time": ""}
    assert played.read_text().splitlines() == [
        f"playbooks/pg_restore.yml --limit farm_pgf -e {json.dumps({'farmhand_restore': restore})}"
    ]


def test_restore_of_an_unknown_backup_runs_no_playbook(aws_env, farms, fleet, tmp_path):
    fleet.add("pgf", "db_restore", "pgf-db-restore-1")
    path, played = fake_playbook(tmp_path, OK_RECAP)
    env, _, _ = primary({**aws_env, "PATH": path}, tmp_path, FULL)
    proc = farm("pg:backups:restore", "-f", "pgf", "20261101-000000F", env=env)
    assert_one_line_error(
        proc, "unknown backup '20261101-000000F': the backups of 'pgf' are 20261123-100000F"
    )
    assert not played.exists()
