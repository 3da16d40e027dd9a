"""The primary archives its WAL to an encrypted S3 repository and has a full backup there."""

import json

import pytest

testinfra_hosts = ["podman://molecule-pgbackrest-db"]
STANZA = "molecule"


def pgbackrest(host, *args):
    result = host.run(f"runuser -u postgres -- pgbackrest --stanza={STANZA} {' '.join(args)}")
    assert result.rc == 0, result.stdout + result.stderr
    return result.stdout


def sql(host, query):
    result = host.run(f"runuser -u postgres -- psql -X -At -d bookshelf -c {query!r}")
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def info(host):
    return json.loads(pgbackrest(host, "--output=json", "info"))[0]


def test_the_stanza_exists_on_an_encrypted_repository(info):
    assert info["name"] == STANZA
    assert info["status"]["code"] == 0, info["status"]
    assert info["cipher"] == "aes-256-cbc"


def test_pgbackrest_check_passes(host):
    pgbackrest(host, "check")


def test_a_full_backup_exists_with_its_wal(info):
    full = [b for b in info["backup"] if b["type"] == "full"]
    assert full, info["backup"]
    assert full[0]["archive"]["start"] and full[0]["archive"]["stop"]
    assert full[0]["info"]["size"] > 0


def test_a_switched_wal_segment_is_archived(host):
    sql(host, "create table if not exists probe (v text)")
    sql(host, "insert into probe values ('archived')")
    segment = sql(host, "select pg_walfile_name(pg_switch_wal())")
    # archive-push is asynchronous: `check` waits until the segment it switches to is archived.
    pgbackrest(host, "check")
    info = json.loads(pgbackrest(host, "--output=json", "info"))[0]
    assert info["archive"][0]["max"] >= segment
    failed = sql(host, "select failed_count from pg_stat_archiver")
    assert failed == "0"


def test_the_config_holding_the_cipher_pass_is_private(host):
    conf = host.file("/etc/pgbackrest/pgbackrest.conf")
    assert (conf.user, conf.group, conf.mode) == ("root", "postgres", 0o640)
    assert host.file("/etc/postgresql/15/main/conf.d/55-farmhand-archive.conf").contains("archive-push")


def test_full_and_diff_backups_are_scheduled(host):
    for kind, calendar in (("full", "Sun *-*-* 03:00:00"), ("diff", "Mon..Sat *-*-* 03:00:00")):
        timer = f"pgbackrest-backup-{kind}.timer"
        assert host.service(timer).is_enabled
        assert host.run(f"systemctl is-active {timer}").stdout.strip() == "active"
        assert f"OnCalendar={calendar}" in host.file(f"/etc/systemd/system/{timer}").content_string
    assert not host.file("/etc/systemd/system/pgbackrest-backup-incr.timer").exists
