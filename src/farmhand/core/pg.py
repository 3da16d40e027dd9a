"""The farm's PostgreSQL as the CLI sees it: who is primary, who follows, how far behind.

Every figure comes from the hosts themselves (one query on each database host, through Ansible),
so `farm pg:info` and the checks before `farm pg:promote` read the same thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from farmhand.core.errors import FarmError
from farmhand.core.inventory import Host
from farmhand.core.runner import run_module
from farmhand.core.target import Target

# One query that answers on a primary and on a standby alike.
STATUS_SQL = """
SELECT json_build_object(
  'standby', pg_is_in_recovery(),
  'lsn', CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END,
  'receive_lsn', pg_last_wal_receive_lsn(),
  'replay_delay_s', CASE WHEN pg_is_in_recovery()
    THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END,
  'receiver', (SELECT status FROM pg_stat_wal_receiver LIMIT 1),
  'connections', (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
  'size_bytes', (SELECT pg_database_size(datname) FROM pg_database WHERE datname = %(db)s),
  'sync_names', current_setting('synchronous_standby_names'),
  'replication', (SELECT coalesce(json_agg(json_build_object(
      'name', application_name, 'address', host(client_addr), 'state', state, 'sync_state', sync_state,
      'lag_bytes', pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn),
      'lag_s', extract(epoch FROM replay_lag)) ORDER BY application_name), '[]'::json)
    FROM pg_stat_replication)
) AS status
"""


def lsn_value(lsn: str | None) -> int:
    """A WAL position (`16/B374D848`) as a number of bytes."""
    if not lsn:
        return 0
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


@dataclass
class DbHost:
    """One database host: its tag role and, if it answered, its state."""

    name: str
    tagged: str  # db or db_follower
    answered: bool = False
    status: dict[str, Any] = field(default_factory=dict)

    @property
    def standby(self) -> bool:
        return bool(self.status.get("standby"))

    @property
    def lsn(self) -> int:
        return lsn_value(self.status.get("lsn"))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tagged": self.tagged, "answered": self.answered, **self.status}


def db_hosts(target: Target) -> list[DbHost]:
    """The farm's database hosts (primary first), each with what it answered."""
    tagged = [DbHost(h.name, "db") for h in target.hosts_with_role("db")]
    tagged += [DbHost(h.name, "db_follower") for h in target.hosts_with_role("db_follower")]
    if not tagged:
        return []
    pattern = f"role_db:role_db_follower:&farm_{target.farm}"
    # Ansible templates the arguments with each host's variables.
    args = {"query": STATUS_SQL, "named_args": {"db": "{{ farmhand_database_name }}"}}
    found = run_module(
        target.project,
        target.env,
        pattern,
        "community.postgresql.postgresql_query",
        args,
        become_user="postgres",
    )
    for host in tagged:
        result = found.get(host.name)
        if result and result.get("query_result"):
            status = result["query_result"][0]["status"]
            host.status = json.loads(status) if isinstance(status, str) else status
            host.answered = True
    return tagged


@dataclass
class Promotion:
    """A checked promotion: what pg_promote.yml gets."""

    follower: str
    primary: str
    force: bool
    lag_bytes: int
    others: list[str] = field(default_factory=list)  # the other followers, which then follow it

    def extra_vars(self) -> dict[str, Any]:
        return {
            "farmhand_promote": {
                "follower": self.follower,
                "primary": self.primary,
                "force": self.force,
                "others": self.others,
            }
        }


def check_follower(target: Target, follower: str | None) -> None:
    """Refuse a farm without followers or an unknown follower, before asking any host."""
    names = [h.name for h in target.hosts_with_role("db_follower")]
    if not names:
        raise FarmError(
            f"farm {target.farm!r} has no followers (hosts tagged db_follower): nothing to promote"
        )
    if follower is not None and follower not in names:
        raise FarmError(f"unknown follower {follower!r}: the farm's followers are {', '.join(names)}")


def plan_promote(
    target: Target, hosts: list[DbHost], follower: str | None, force: bool, max_lag: int
) -> Promotion:
    """Check a promotion before anything changes; every refusal is one clear FarmError."""
    check_follower(target, follower)
    followers = [h for h in hosts if h.tagged == "db_follower"]
    primaries = [h for h in hosts if h.tagged == "db"]
    names = [h.name for h in followers]
    primary = primaries[0] if primaries else None
    if force:
        live = [h for h in followers if h.answered and h.standby and (follower is None or h.name == follower)]
        if not live:
            which = follower or "no follower"
            raise FarmError(f"{which} answers as a standby: there is nothing that can be promoted")
        chosen = max(live, key=lambda h: (lsn_value(h.status.get("receive_lsn")), h.lsn))
        others = [n for n in names if n != chosen.name]
        return Promotion(chosen.name, primary.name if primary else "", True, 0, others)
    if primary is None or not primary.answered or primary.standby:
        where = primary.name if primary else "no host tagged db"
        raise FarmError(f"the primary ({where}) does not answer as a primary: if it is gone, use --force")
    chosen = next((h for h in followers if h.name == follower), None) if follower else None
    if chosen is None:
        streaming = [h for h in followers if h.answered and h.status.get("receiver") == "streaming"]
        if not streaming:
            raise FarmError(
                f"no follower of {target.farm!r} is streaming from the primary (see `farm pg:info`)"
            )
        chosen = max(streaming, key=lambda h: h.lsn)
    if not chosen.answered or not chosen.standby or chosen.status.get("receiver") != "streaming":
        raise FarmError(f"{chosen.name} is not streaming from the primary (see `farm pg:info`)")
    lag = max(primary.lsn - chosen.lsn, 0)
    if lag > max_lag:
        raise FarmError(
            f"{chosen.name} lags {lag} bytes behind the primary (more than --max-lag {max_lag}): "
            "wait for it to catch up"
        )
    return Promotion(chosen.name, primary.name, False, lag, [n for n in names if n != chosen.name])


# How long psql may take to reach the database (connect, authenticate, start the session) before it
# stops with one line (`... failed: timeout expired`): libpq waits for ever without it.
PSQL_CONNECT_TIMEOUT_S = 15


def psql_host(target: Target, follower: bool) -> Host:
    """The host `farm psql` opens: the primary (tagged db), or with FOLLOWER the first follower."""
    role = "db_follower" if follower else "db"
    hosts = target.hosts_with_role(role)
    if not hosts:
        what = "followers (hosts tagged db_follower)" if follower else "primary (host tagged db)"
        raise FarmError(f"farm {target.farm!r} has no {what}")
    return hosts[0]


def psql_remote(db: str, interactive: bool) -> list[str]:
    """What `farm psql` runs on the database host: psql as the postgres user over the host's own
    socket (not through PgBouncer), in the app's role, its connection bounded; a script (stdin not a
    terminal) stops at its first error."""
    remote = ["sudo", "-u", "postgres", "env", f"PGCONNECT_TIMEOUT={PSQL_CONNECT_TIMEOUT_S}"]
    remote += [f"PGOPTIONS=-c role={db}", "psql", "-X"]
    if not interactive:
        remote += ["-v", "ON_ERROR_STOP=1"]
    return [*remote, "-d", db]
