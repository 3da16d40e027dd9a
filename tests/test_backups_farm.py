"""Whole-farm backup drill: a primary, a follower and a fresh host on a local farm whose S3 is moto
behind the farm's TLS front (nginx). Backups read the data files from the follower
(farmhand_backup_from_standby in group_vars/farm_bk/). Write rows, capture, write more, note the
time, write more; then restore to the noted time, to a backup's label and to the latest state on
the fresh host, and compare the rows.

Needs Podman, debootstrap (for the image) and moto, as tests/test_local_farm.py does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from farmlib import HANG_GUARD

pytestmark = pytest.mark.farm

ROOT = Path(__file__).resolve().parents[1]
FARM = "bk"
FARM_BIN = str(Path(sys.executable).with_name("farm"))
PRIMARY = "farmhand-bk-db-1"
FOLLOWER = "farmhand-bk-db-follower-1"
SPARE = "farmhand-bk-db-restore-1"
# A checksum over the ordered rows: equal checksums, equal table contents.
CHECKSUM = (
    "select count(*) || ':' || md5(coalesce(string_agg(id || '=' || v, ',' order by id), '')) from drill"
)


# The farm tests' hang guard (farmlib): the drill's stream has the least CPU weight in `make test`,
# and its first converge once waited past 30 minutes for CPU.
def run(*args: str, timeout: int = HANG_GUARD) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=timeout
    )


def farm(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = run(FARM_BIN, *args)
    if ok:
        assert proc.returncode == 0, (
            f"farm {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def sql(container: str, query: str, db: str = "bookshelf") -> str:
    proc = run("podman", "exec", container, "runuser", "-u", "postgres", "--", "psql", "-X", "-At",
               "-v", "ON_ERROR_STOP=1", "-d", db, "-c", query)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def write_rows(batch: int) -> None:
    sql(PRIMARY, f"insert into drill (v) select 'batch {batch} row ' || n from generate_series(1, 500) n")


def databases(container: str) -> str:
    return sql(container, "select string_agg(datname, ',' order by datname) from pg_database", db="postgres")


def container_ip(container: str) -> str:
    proc = run(
        "podman", "inspect", container, "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def backups() -> list[dict]:
    return json.loads(farm("pg:backups", "-f", FARM, "--json").stdout)["backups"]


@pytest.fixture(scope="module")
def drill():
    """The farm, converged, with the drill's three batches of rows and what the table held when."""
    farm("local", "down", "-f", FARM)  # leftovers of an interrupted run
    farm("local", "up", "-f", FARM)
    try:
        farm("converge", "-f", FARM)
        sql(PRIMARY, "create table drill (id serial primary key, v text not null)")
        write_rows(1)
        after_first = sql(PRIMARY, CHECKSUM)
        capture = farm("pg:backups:capture", "-f", FARM, "--type", "diff")
        write_rows(2)
        time.sleep(1.1)  # the noted time (to the second) falls after batch 2's commit...
        noted = sql(PRIMARY, "select to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00'")
        at_noted = sql(PRIMARY, CHECKSUM)
        time.sleep(1.1)  # ...and before batch 3's
        write_rows(3)
        yield {"capture": capture, "after_first": after_first, "noted": noted, "at_noted": at_noted}
    finally:
        farm("local", "down", "-f", FARM, ok=False)


def test_the_first_converge_took_a_full_backup_and_capture_took_a_diff(drill):
    assert "-----> Taking a diff backup of bk on bk-db-1" in drill["capture"].stdout
    assert "backup start archive" in drill["capture"].stdout  # pgBackRest's progress, streamed
    found = backups()
    assert [b["type"] for b in found] == ["full", "diff"]
    diff = found[1]
    assert f"-----> Backup {diff['label']} (diff," in drill["capture"].stdout
    assert diff["label"].startswith(found[0]["label"] + "_")
    assert diff["wal_start"] <= diff["wal_stop"]
    assert diff["finished_at"] >= diff["started_at"]
    table = farm("pg:backups", "-f", FARM).stdout
    assert "LABEL" in table and diff["label"] in table and found[0]["label"] in table


def test_backups_read_the_data_files_from_the_follower(drill):
    follower = container_ip(FOLLOWER)
    out = drill["capture"].stdout
    # pgBackRest waits for the follower to replay the backup's start, then copies from it.
    assert "replay on the standby" in out, out[-3000:]
    # Each data file read (copied, or checksummed against the prior backup) names its host.
    copied = [line for line in out.splitlines() if "backup file " in line or "match file " in line]
    from_follower = f" {follower}:/var/lib/postgresql/15/main/base/"
    assert any(from_follower in line for line in copied), "\n".join(copied[:20])
    # The data files (base/) come from the follower; the primary's own (local paths, no host)
    # are the few a standby does not have: pg_control and the like.
    assert not any(" /var/lib/postgresql/15/main/base/" in line for line in copied)
    # The primary's timers run the same configuration.
    conf = run("podman", "exec", PRIMARY, "cat", "/etc/pgbackrest/pgbackrest.conf").stdout
    assert "backup-standby=y" in conf and f"pg2-host={follower}" in conf
    # The TLS keys are the hosts' own, private to postgres; the CA's key is on no host.
    for container in (PRIMARY, FOLLOWER):
        mode = run("podman", "exec", container, "stat", "-c", "%U %a", "/etc/pgbackrest/tls/host.key")
        assert mode.stdout.split() == ["postgres", "600"]
        found = run("podman", "exec", container, "grep", "-rl", "PRIVATE KEY", "/etc/pgbackrest")
        assert found.stdout.split() == ["/etc/pgbackrest/tls/host.key"]


def test_schedules_are_the_farms(drill):
    shown = json.loads(farm("pg:backups:schedules", "-f", FARM, "--json").stdout)["schedules"]
    assert {s["type"]: s["calendar"] for s in shown} == {
        "full": "Sun *-*-* 03:00:00",
        "diff": "Mon..Sat *-*-* 03:00:00",
        "incr": "*-*-* 09,15,21:00:00",
    }
    assert all(s["next"] not in ("", "-") for s in shown)


def test_bad_restores_are_refused_and_change_nothing(drill):
    before = (
        backups(),
        sql(PRIMARY, CHECKSUM),
        databases(SPARE),
    )
    first_finished = backups()[0]["finished_at"]
    for args, expect in (
        (("20200101-000000F",), "unknown backup '20200101-000000F'"),
        (
            ("--to-time", "2020-01-01 00:00:00+00"),
            f"before the first backup of 'bk' finished ({first_finished})",
        ),
        (("--target", "bk-db-1"), "to proceed, pass --confirm bk"),
    ):
        proc = farm("pg:backups:restore", "-f", FARM, *args, ok=False)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.startswith("farm: error: ") and expect in proc.stderr, proc.stderr
        assert "PLAY" not in proc.stdout
    assert (
        backups(),
        sql(PRIMARY, CHECKSUM),
        databases(SPARE),
    ) == before


def test_point_in_time_restore_on_a_fresh_host_holds_the_rows_of_that_time(drill):
    proc = farm("pg:backups:restore", "-f", FARM, "--to-time", drill["noted"])
    assert f"holds bk's database as of the state at {drill['noted']}: consistent and reachable" in proc.stdout
    assert "1 tables and 1 indexes checked by pg_amcheck, no corruption found" in proc.stdout
    restored = sql(SPARE, CHECKSUM)
    assert restored == drill["at_noted"]
    assert restored.startswith("1000:")
    assert sql(SPARE, "select pg_is_in_recovery()") == "f"


def test_restoring_a_label_gives_the_rows_of_that_backup(drill):
    label = backups()[1]["label"]
    farm("pg:backups:restore", "-f", FARM, label)
    assert sql(SPARE, CHECKSUM) == drill["after_first"]


def test_restoring_the_latest_backup_and_wal_equals_the_primary(drill):
    farm("pg:backups:restore", "-f", FARM)
    primary = sql(PRIMARY, CHECKSUM)
    assert primary.startswith("1500:")
    assert sql(SPARE, CHECKSUM) == primary
    # The restored copy is a writable database that does not archive into the farm's repository.
    sql(SPARE, "insert into drill (v) values ('written on the copy')")
    assert sql(SPARE, "show archive_mode") == "off"
    assert sql(PRIMARY, "select failed_count from pg_stat_archiver") == "0"


def test_restoring_in_place_to_the_noted_time_rolls_the_primary_back_and_backups_go_on(drill):
    farm(
        "pg:backups:restore",
        "-f",
        FARM,
        "--to-time",
        drill["noted"],
        "--target",
        "bk-db-1",
        "--confirm",
        FARM,
    )
    assert sql(PRIMARY, CHECKSUM) == drill["at_noted"]
    assert sql(PRIMARY, "select pg_is_in_recovery()") == "f"
    # The follower is on the old timeline: re-seeded, it is the standby the next backup reads.
    farm("pg:follow", "-f", FARM, "bk-db-follower-1")
    # The primary archives on its new timeline, and the next backup builds on the old full one.
    sql(PRIMARY, "insert into drill (v) values ('after the restore')")
    capture = farm("pg:backups:capture", "-f", FARM, "--type", "incr")
    assert "(incr," in capture.stdout
    assert f" {container_ip(FOLLOWER)}:/var/lib/postgresql/15/main/base/" in capture.stdout
    latest = backups()[-1]
    assert latest["type"] == "incr" and latest["wal_start"].startswith("00000002")
    assert sql(PRIMARY, "select failed_count from pg_stat_archiver") == "0"


def test_retention_keeps_the_farms_count_of_full_backups_and_expires_the_rest(drill):
    """group_vars keep 2 full backups (farmhand_backup_retention_full): a third full one expires
    the oldest, with the differential and incremental backups that depended on it."""
    conf = run("podman", "exec", PRIMARY, "cat", "/etc/pgbackrest/pgbackrest.conf").stdout
    assert "repo1-retention-full=2" in conf and "repo1-retention-diff=7" in conf
    assert "archive-timeout=300" in conf  # a local farm's (farmhand_backup_archive_timeout)
    oldest = backups()[0]
    assert oldest["type"] == "full"
    dependents = [b["label"] for b in backups() if b["label"] != oldest["label"]]
    for _ in range(2):
        farm("pg:backups:capture", "-f", FARM, "--type", "full")
    left = backups()
    assert [b["type"] for b in left] == ["full", "full"], left
    assert not {oldest["label"], *dependents} & {b["label"] for b in left}
    # What is left restores: the latest full backup and WAL hold the primary's rows.
    farm("pg:backups:restore", "-f", FARM)
    assert sql(SPARE, CHECKSUM) == sql(PRIMARY, CHECKSUM)
