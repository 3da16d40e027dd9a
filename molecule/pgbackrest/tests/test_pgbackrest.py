"""The primary archives its WAL to an encrypted S3 repository and has a full backup there; backups
read the data files from the follower over pgBackRest's TLS server."""

import json

import pytest
import testinfra

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


@pytest.fixture
def follower():
    return testinfra.get_host("podman://molecule-pgbackrest-follower")


def test_a_backup_reads_the_data_files_from_the_follower(host, follower):
    follower_ip = follower.check_output("hostname -I").split()[0]
    out = pgbackrest(host, "--type=incr", "--log-level-console=detail", "backup")
    assert "replay on the standby" in out
    # Each data file read (copied, or checksummed against the prior backup) names its host.
    copied = [line for line in out.splitlines() if "backup file " in line or "match file " in line]
    assert any(f" {follower_ip}:/var/lib/postgresql/15/main/base/" in line for line in copied), copied[:20]
    # The data files (base/) come from the follower; the primary's own (local paths, no host)
    # are the few a standby does not have: pg_control and the like.
    assert not any(" /var/lib/postgresql/15/main/base/" in line for line in copied)


def test_the_follower_serves_pgbackrest_over_tls_with_its_own_private_key(host, follower):
    assert follower.service("pgbackrest-server").is_running
    follower_ip = follower.check_output("hostname -I").split()[0]
    assert follower.socket(f"tcp://{follower_ip}:8432").is_listening
    # Only the primary's certificate (its CN) may run pgBackRest commands here.
    conf = follower.file("/etc/pgbackrest/pgbackrest.conf").content_string
    assert "tls-server-auth=molecule-pgbackrest-db=molecule" in conf
    for h in (host, follower):
        key = h.file("/etc/pgbackrest/tls/host.key")
        assert (key.user, key.mode) == ("postgres", 0o600)
        # The CA's key signs on the controller: no host holds a private key but its own.
        found = h.run("grep -rl 'PRIVATE KEY' /etc/pgbackrest").stdout.split()
        assert found == ["/etc/pgbackrest/tls/host.key"]
