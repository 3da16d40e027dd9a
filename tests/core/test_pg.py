"""The checks `farm pg:promote` makes before anything changes, from what the hosts answered."""

from __future__ import annotations

from pathlib import Path

import pytest

from farmhand.core.errors import FarmError
from farmhand.core.inventory import Host
from farmhand.core.pg import DbHost, lsn_value, plan_promote, psql_remote
from farmhand.core.project import Project
from farmhand.core.ssh import host_connection, remote_argv
from farmhand.core.target import Target

ROOT = Path(__file__).resolve().parents[2]


def target(*roles: tuple[str, str]) -> Target:
    hosts = [
        Host(name, (role,), f"i-{n}", f"10.0.0.{n}", "running", "t3.small")
        for n, (name, role) in enumerate(roles)
    ]
    return Target(project=Project(ROOT), farm="f", local=False, hosts=hosts)


PRIMARY = DbHost("db1", "db", True, {"standby": False, "lsn": "0/5000000"})


def follower(name: str, lsn: str, receiver: str = "streaming", receive: str | None = None) -> DbHost:
    status = {"standby": True, "lsn": lsn, "receive_lsn": receive or lsn, "receiver": receiver}
    return DbHost(name, "db_follower", True, status)


FARM = target(("db1", "db"), ("f1", "db_follower"), ("f2", "db_follower"))


def test_lsn_values_compare_as_wal_positions():
    assert lsn_value("0/0") == 0
    assert lsn_value("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert lsn_value("1/0") > lsn_value("0/FFFFFFFF")
    assert lsn_value(None) == 0


def test_a_planned_promotion_picks_the_most_advanced_streaming_follower():
    hosts = [PRIMARY, follower("f1", "0/4000000"), follower("f2", "0/4FFFFFF")]
    chosen = plan_promote(FARM, hosts, None, force=False, max_lag=16 * 1024 * 1024)
    assert (chosen.follower, chosen.primary, chosen.force, chosen.others) == ("f2", "db1", False, ["f1"])
    assert chosen.lag_bytes == 1
    assert chosen.extra_vars() == {
        "farmhand_promote": {"follower": "f2", "primary": "db1", "force": False, "others": ["f1"]}
    }


def test_a_follower_beyond_the_lag_bound_is_refused():
    hosts = [PRIMARY, follower("f1", "0/4000000"), follower("f2", "0/4000000")]
    with pytest.raises(
        FarmError, match=r"f1 lags 16777216 bytes behind the primary \(more than --max-lag 1000\)"
    ):
        plan_promote(FARM, hosts, "f1", force=False, max_lag=1000)


def test_a_follower_that_does_not_stream_is_refused():
    hosts = [PRIMARY, follower("f1", "0/5000000", receiver="stopping"), follower("f2", "0/5000000")]
    with pytest.raises(FarmError, match="f1 is not streaming from the primary"):
        plan_promote(FARM, hosts, "f1", force=False, max_lag=0)


def test_a_planned_promotion_needs_a_primary_that_answers():
    silent = DbHost("db1", "db", False, {})
    with pytest.raises(FarmError, match=r"does not answer as a primary: if it is gone, use --force"):
        plan_promote(
            FARM, [silent, follower("f1", "0/1"), follower("f2", "0/1")], None, force=False, max_lag=0
        )


def test_a_forced_promotion_picks_the_follower_that_received_most():
    hosts = [
        DbHost("db1", "db", False, {}),
        follower("f1", "0/3000000", receive="0/4000000"),
        follower("f2", "0/3500000", receive="0/3800000"),
    ]
    chosen = plan_promote(FARM, hosts, None, force=True, max_lag=0)
    assert (chosen.follower, chosen.primary, chosen.force, chosen.others) == ("f1", "db1", True, ["f2"])


def test_a_forced_promotion_needs_a_live_standby():
    hosts = [DbHost("db1", "db", False, {}), DbHost("f1", "db_follower"), DbHost("f2", "db_follower")]
    with pytest.raises(FarmError, match="answers as a standby"):
        plan_promote(FARM, hosts, None, force=True, max_lag=0)


def test_ssh_reaches_a_host_as_ansible_does():
    host = Host("web1", ("web",), "i-1", "10.0.0.7", "running", "t3.small", {"ansible_user": "admin"})
    env = {"ANSIBLE_PRIVATE_KEY_FILE": "/k/id", "ANSIBLE_SSH_COMMON_ARGS": "-o UserKnownHostsFile=/k/known"}
    remote = ["sudo", "-u", "postgres", "psql", "-c", "select 'a b'"]
    cmd = remote_argv(host_connection(host, env), remote, tty=False)
    assert cmd == [
        "ssh", "-o", "LogLevel=ERROR", "-o", "StrictHostKeyChecking=accept-new", "-T", "-i", "/k/id",
        "-o", "UserKnownHostsFile=/k/known",
        "admin@10.0.0.7", "--", "sudo -u postgres psql -c 'select '\"'\"'a b'\"'\"''",
    ]  # fmt: skip
    assert "-t" in remote_argv(host_connection(host, {}), ["psql"], tty=True)


def test_psql_runs_in_the_apps_role_with_its_connection_bounded():
    """psql as postgres on the host's own socket, in the app's role; a server that does not answer
    within PGCONNECT_TIMEOUT is one line (`... failed: timeout expired`), not a wait for ever."""
    assert psql_remote("bookshelf", interactive=True) == [
        "sudo", "-u", "postgres", "env", "PGCONNECT_TIMEOUT=15", "PGOPTIONS=-c role=bookshelf",
        "psql", "-X", "-d", "bookshelf",
    ]  # fmt: skip
    assert psql_remote("bookshelf", interactive=False)[-4:] == ["-v", "ON_ERROR_STOP=1", "-d", "bookshelf"]
