"""A follower seeded over its slot streams synchronously from the primary and serves reads."""

import time

import pytest

testinfra_hosts = ["podman://molecule-pg-primary", "podman://molecule-pg-follower"]


def sql(host, query, db="postgres"):
    result = host.run(f"runuser -u postgres -- psql -X -At -d {db} -c {query!r}")
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def primary(host):
    return host.get_host("podman://molecule-pg-primary")


@pytest.fixture
def follower(host):
    return host.get_host("podman://molecule-pg-follower")


def test_the_follower_is_a_standby_and_the_primary_is_not(primary, follower):
    assert sql(primary, "select pg_is_in_recovery()") == "f"
    assert sql(follower, "select pg_is_in_recovery()") == "t"
    assert follower.file("/var/lib/postgresql/15/main/standby.signal").exists


def test_replication_streams_over_the_followers_slot_synchronously(primary):
    rows = sql(primary, "select application_name, state, sync_state from pg_stat_replication")
    assert rows == "molecule_pg_follower|streaming|quorum"
    slots = sql(primary, "select slot_name, active from pg_replication_slots")
    assert slots == "molecule_pg_follower|t"


def test_a_row_written_on_the_primary_appears_on_the_follower(primary, follower):
    marker = f"row-{time.time_ns()}"
    sql(primary, "create table if not exists probe (v text)", db="bookshelf")
    sql(primary, f"insert into probe values ('{marker}')", db="bookshelf")
    # A hang guard in seconds, not in tries: under make test's load one query over SSH can take seconds.
    deadline = time.monotonic() + 60
    while sql(follower, f"select count(*) from probe where v = '{marker}'", db="bookshelf") != "1":
        if time.monotonic() > deadline:
            pytest.fail("the row never reached the follower in 60 s")
        time.sleep(0.1)


def test_the_follower_refuses_writes(follower):
    result = follower.run("runuser -u postgres -- psql -X -d bookshelf -c 'create table nope (x int)'")
    assert result.rc != 0
    assert "read-only transaction" in result.stderr


def test_no_trust_lines_and_a_private_passfile(primary, follower):
    for host in (primary, follower):
        hba = host.file("/etc/postgresql/15/main/pg_hba.conf").content_string
        assert not [
            line for line in hba.splitlines() if line.strip() and not line.startswith("#") and "trust" in line
        ]
    passfile = follower.file("/var/lib/postgresql/.farmhand-replication.pgpass")
    assert (passfile.user, passfile.mode) == ("postgres", 0o600)
    conf = follower.file("/etc/postgresql/15/main/conf.d/60-farmhand-standby.conf").content_string
    assert "molecule-replication-password" not in conf
