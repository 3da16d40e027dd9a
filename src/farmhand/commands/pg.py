"""`farm pg:info`, `pg:promote`, `pg:follow` and `psql`: the farm's PostgreSQL, Heroku's way."""

from __future__ import annotations

import json
import re

import click

from farmhand.commands import _playbooks
from farmhand.commands._options import fail, farm_option, json_option
from farmhand.commands._output import info, out, show, size, step, table
from farmhand.core import pg, ssh
from farmhand.core.completion import complete_host
from farmhand.core.errors import FarmError
from farmhand.core.runner import describe_failures, limit_for
from farmhand.core.target import Target, resolve

DEFAULT_MAX_LAG = 16 * 1024 * 1024


@click.command("pg:info")
@farm_option
@json_option()
def pg_info(farm: str | None, as_json: bool) -> None:
    """Show the primary and its followers: lag in bytes and seconds, sync state, connections, size.

    \b
    Example:
      farm pg:info -f staging
    """
    target = resolve(farm)
    hosts = pg.db_hosts(target)
    if not hosts:
        raise FarmError(f"farm {target.farm!r} has no database hosts (role db or db_follower)")
    show(
        as_json,
        {"farm": target.farm, "hosts": [h.as_dict() for h in hosts]},
        lambda: _print_info(target, hosts),
    )


def _print_info(target: Target, hosts: list[pg.DbHost]) -> None:
    primary = next((h for h in hosts if h.tagged == "db"), None)
    replication = {r["name"]: r for r in (primary.status.get("replication") or [])} if primary else {}
    out.print(f"=== {target.farm} PostgreSQL", markup=False)
    rows = table("HOST", "ROLE", "STATE", "LAG", "LAG (S)", "SYNC", "CONNECTIONS", "SIZE")
    for host in hosts:
        row = replication.get(re.sub(r"[^A-Za-z0-9_]", "_", host.name).lower(), {})
        if not host.answered:
            state = "not answering"
        elif host.tagged == "db":
            state = "primary" if not host.standby else "standby (tagged db!)"
        else:
            state = host.status.get("receiver") or ("standby" if host.standby else "not a standby")
        lag_s = row.get("lag_s")
        if lag_s is None and host.tagged == "db_follower":  # idle primary: replay_lag is NULL
            lag_s = 0.0 if row.get("lag_bytes") == 0 else host.status.get("replay_delay_s")
        rows.add_row(
            host.name,
            "primary" if host.tagged == "db" else "follower",
            state,
            size(row.get("lag_bytes")) if host.tagged == "db_follower" else "-",
            f"{float(lag_s):.2f}" if lag_s is not None and host.tagged == "db_follower" else "-",
            row.get("sync_state", "-") if host.tagged == "db_follower" else "-",
            str(host.status.get("connections", "-")),
            size(host.status.get("size_bytes")),
        )
    out.print(rows)


def _promote_playbook(target: Target, playbook: str, promotion: pg.Promotion, *extra: str) -> bool:
    args = ["-e", json.dumps(promotion.extra_vars()), *extra]
    result = _playbooks.run(target, playbook, limit_for(target.farm), *args)
    if result.ok:
        paused = result.custom.get("farmhand_writes_paused_s")  # set_stats of pg_promote.yml
        if paused is not None:
            info(f"Writes were paused for {float(paused):.3f} s")
    else:
        info(f"{playbook} failed on {describe_failures(result)}")
    return result.ok


@click.command("pg:promote")
@farm_option
@click.argument("follower", required=False, shell_complete=complete_host)
@click.option("--force", is_flag=True, help="The primary is gone: promote the most advanced follower.")
@click.option(
    "--max-lag",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_LAG,
    show_default=True,
    help="Refuse a follower more than this many bytes behind.",
)
@click.option("--reseed", is_flag=True, help="Then re-seed the old primary as a follower without asking.")
def pg_promote(farm: str | None, follower: str | None, force: bool, max_lag: int, reseed: bool) -> None:
    """Make a follower the primary, with the app running (a brief pause of writes, nothing lost).

    PgBouncer on every app host pauses, the old primary stops taking writes, the follower
    catches up and is promoted, PgBouncer resumes on it. The old primary is then stopped and
    tagged db_follower: `farm pg:follow` re-seeds it.

    \b
    Example:
      farm pg:promote -f staging
      farm pg:promote -f staging staging-db-follower-2
      farm pg:promote -f staging --force       (the primary is gone)
    """
    target = resolve(farm, refresh=True)  # the role tags change with cutovers: never a cached inventory
    pg.check_follower(target, follower)
    promotion = pg.plan_promote(target, pg.db_hosts(target), follower, force, max_lag)
    kind = "Forced promotion" if force else "Switchover"
    step(f"{kind}: {promotion.follower} becomes the primary of {target.farm}")
    if not _promote_playbook(target, "pg_promote.yml", promotion):
        step("Finishing or undoing the interrupted cutover")
        _promote_playbook(target, "pg_recover.yml", promotion)
        raise fail(f"pg:promote of {promotion.follower} failed; see `farm pg:info -f {target.farm}`")
    # The role tags changed: refresh the inventory cache so the next command sees them.
    target = resolve(target.farm, refresh=True)
    old = promotion.primary
    step(f"{promotion.follower} is the primary of {target.farm}")
    if not old:
        return
    info(f"The old primary {old} is stopped and tagged db_follower")
    if not reseed and click.get_text_stream("stdin").isatty():
        reseed = click.confirm(f"Re-seed {old} as a follower now (erases its data)?", default=False)
    if reseed:
        _follow(target, old)
    else:
        info(f"Re-seed it as a follower: farm pg:follow -f {target.farm} {old}")


def _follow(target: Target, host: str) -> None:
    step(f"Re-seeding {host} as a follower of {target.farm}'s primary")
    # The primary too: it creates the follower's slot and, in synchronous mode, waits for it again.
    primary = target.hosts_with_role("db")[0].name
    extra = ["-e", '{"postgres_replica_reseed": true}']
    result = _playbooks.run(target, "site.yml", f"{host}:{primary}", *extra)
    if not result.ok:
        raise fail(f"re-seeding {host} failed on {describe_failures(result)}")
    step(f"{host} follows the primary")


@click.command("pg:follow")
@farm_option
@click.argument("host", shell_complete=complete_host)
def pg_follow(farm: str | None, host: str) -> None:
    """Re-seed a host tagged db_follower from the primary (erases its data), e.g. a former primary.

    \b
    Example:
      farm pg:follow -f staging staging-db-1
    """
    target = resolve(farm, refresh=True)  # the role tags change with cutovers: never a cached inventory
    followers = [h.name for h in target.hosts_with_role("db_follower")]
    if host not in followers:
        raise FarmError(
            f"{host!r} is not a follower of {target.farm!r}: followers are {', '.join(followers) or 'none'}"
        )
    if not target.hosts_with_role("db"):
        raise FarmError(f"farm {target.farm!r} has no primary (host tagged db) to follow")
    _follow(target, host)


@click.command("psql")
@farm_option
@click.option("--follower", is_flag=True, help="Connect to a follower (read-only) instead of the primary.")
def psql_cmd(farm: str | None, follower: bool) -> None:
    """Open psql on the primary as the app's user (stdin not a terminal: run what it gives).

    \b
    Example:
      farm psql -f staging
      echo 'select count(*) from books' | farm psql -f staging
    """
    # Which host is the primary changes with cutovers: never from a cached inventory (the cache is
    # shared by every farm and command of the checkout, any of which may write back an older copy).
    target = resolve(farm, refresh=True)
    host = pg.psql_host(target, follower)
    db = target.project.farm_var(target.farm, "farmhand_app_name", "app")
    remote = pg.psql_remote(db, interactive=click.get_text_stream("stdin").isatty())
    raise click.exceptions.Exit(ssh.run_interactive(target.env, host, remote))


COMMANDS = (pg_info, pg_promote, pg_follow, psql_cmd)
