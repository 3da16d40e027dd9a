"""The `farm` command as a user runs it (the real entry point, as a subprocess) against moto on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import (
    ANSIBLE_BIN,
    OK_RECAP,
    REPO_ROOT,
    ansible_inventory,
    assert_ok,
    counts,
    failed_task,
    fake_playbook,
    farm,
    inventory_list,
    make_project,
    parameters,
    ran,
    snapshot,
    ssm_client,
)

from farmhand.core.local.moto import MotoServer

# `unknown farm` lists the farms it knows: group_vars/farm_* (ci, demo...) and the tagged ones.
CONFIGURED_FARMS = {
    p.name.removeprefix("farm_").removesuffix(".yml") for p in (REPO_ROOT / "group_vars").glob("farm_*")
}
KNOWN_FARMS = ", ".join(sorted(CONFIGURED_FARMS | {"demo", "staging", "halted", "dbonly", "pgf"}))


def demo_hosts(farms: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {name: h for name, h in farms.items() if h["farm"] == "demo"}


# -- help ----------------------------------------------------------------------------------------


def test_help_lists_every_command(aws_env):
    proc = farm("--help", env=aws_env)
    assert_ok(proc)
    commands = proc.stdout.split("Commands:", 1)[1]
    listed = {line.strip().split("  ")[0] for line in commands.splitlines() if line.strip()}
    assert {"converge", "ps", "local up", "local down", "local env"} <= listed


# -- ps ------------------------------------------------------------------------------------------


def table_rows(stdout: str) -> dict[str, list[str]]:
    """`farm ps` table rows by host name (the HOST column)."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["ROLE", "HOST"])
    rows = [line.split() for line in lines[header + 1 :] if line.strip()]
    return {row[1]: row for row in rows}


def test_ps_prints_a_table_of_the_farm_only(aws_env, farms):
    proc = farm("ps", "-f", "demo", env=aws_env)
    assert_ok(proc)
    assert "=== demo (AWS us-east-1): 4 hosts" in proc.stdout
    rows = table_rows(proc.stdout)
    assert set(rows) == set(demo_hosts(farms))
    for name, host in demo_hosts(farms).items():
        role, _, instance_id, ip, state, instance_type = rows[name]
        assert (role, instance_id, ip, state, instance_type) == (
            host["role"],
            host["id"],
            host["ip"],
            "running",
            "t3.small",
        )
    assert "staging" not in proc.stdout
    assert "halted" not in proc.stdout


def test_ps_json_gives_roles_ids_ips_and_states(aws_env, farms):
    proc = farm("ps", "-f", "demo", "--json", env=aws_env)
    assert_ok(proc)
    data = json.loads(proc.stdout)
    assert data["farm"] == "demo"
    assert data["local"] is False
    hosts = {h["name"]: h for h in data["hosts"]}
    assert set(hosts) == set(demo_hosts(farms))
    for name, host in demo_hosts(farms).items():
        assert hosts[name] == {
            "name": name,
            "roles": host["role"].split(","),
            "instance_id": host["id"],
            "private_ip": host["ip"],
            "state": "running",
            "instance_type": "t3.small",
        }
    assert hosts["demo-worker-cron-1"]["roles"] == ["worker", "cron"]
    # Ordered by role (farmhand_roles: web, worker, db, ...), then by name.
    assert [h["name"] for h in data["hosts"]] == [
        "demo-web-1",
        "demo-web-2",
        "demo-worker-cron-1",
        "demo-db-1",
    ]


def test_ps_takes_the_farm_from_farmhand_farm(aws_env, farms):
    proc = farm("ps", "--json", env={**aws_env, "FARMHAND_FARM": "staging"})
    assert_ok(proc)
    data = json.loads(proc.stdout)
    assert data["farm"] == "staging"
    assert {h["name"] for h in data["hosts"]} == {"staging-web-1", "staging-worker-1"}


def test_ps_option_wins_over_farmhand_farm(aws_env, farms):
    proc = farm("ps", "-f", "demo", "--json", env={**aws_env, "FARMHAND_FARM": "staging"})
    assert_ok(proc)
    assert json.loads(proc.stdout)["farm"] == "demo"


def test_ps_finds_the_project_from_a_subdirectory(aws_env, fleet, tmp_path):
    """No FARMHAND_HOME: the checkout is found upwards from the working directory."""
    farm_name = "cwd_probe"  # no local farm by this name may exist in the checkout
    assert not (REPO_ROOT / ".farm" / "local" / farm_name).exists()
    fleet.add(farm_name, "web", "cwd-probe-web-1")
    env = {k: v for k, v in aws_env.items() if k != "FARMHAND_HOME"}
    proc = farm("ps", "-f", farm_name, "--json", env=env, cwd=REPO_ROOT / "group_vars")
    assert_ok(proc)
    assert [h["name"] for h in json.loads(proc.stdout)["hosts"]] == ["cwd-probe-web-1"]


def test_ps_refresh_sees_new_hosts_despite_the_cache(aws_env, fleet):
    fleet.add("demo", "web", "demo-web-1")
    first = farm("ps", "-f", "demo", "--json", env=aws_env)
    assert_ok(first)
    fleet.add("demo", "web", "demo-web-2")
    refreshed = farm("ps", "-f", "demo", "--json", "--refresh", env=aws_env)
    assert_ok(refreshed)
    assert [h["name"] for h in json.loads(refreshed.stdout)["hosts"]] == ["demo-web-1", "demo-web-2"]


def test_a_cache_older_than_the_farms_instances_is_read_afresh(aws_env, fleet):
    """The inventory's cache is one for the account: filled before another farm's instances ran
    (two farms brought up side by side), it must not hide them, nor a farm's added host."""
    fleet.add("demo", "web", "demo-web-1")
    assert_ok(farm("ps", "-f", "demo", "--json", env=aws_env))  # the cache holds demo alone
    fleet.add("other", "web", "other-web-1")
    other = farm("ps", "-f", "other", "--json", env=aws_env)
    assert_ok(other)
    assert [h["name"] for h in json.loads(other.stdout)["hosts"]] == ["other-web-1"]
    fleet.add("demo", "web", "demo-web-2")
    demo = farm("ps", "-f", "demo", "--json", env=aws_env)
    assert_ok(demo)
    assert [h["name"] for h in json.loads(demo.stdout)["hosts"]] == ["demo-web-1", "demo-web-2"]
    # ...and ansible-playbook, which reads the same cache after the CLI, finds them too.
    groups = inventory_list(aws_env)
    assert sorted(groups["farm_demo"]["hosts"]) == ["demo-web-1", "demo-web-2"]


# -- the inventory, as ansible sees it -----------------------------------------------------------


def graph_groups(text: str) -> dict[str, set[str]]:
    """`ansible-inventory --graph` as {group: hosts directly in it}."""
    groups: dict[str, set[str]] = {}
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        depth = line.find("--") if "|--" in line else 0
        name = line.split("--", 1)[1] if "|--" in line else line
        name = name.strip()
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if name.startswith("@"):
            group = name[1:].rstrip(":")
            groups.setdefault(group, set())
            stack.append((depth, group))
        else:
            groups[stack[-1][1]].add(name)
    return groups


def test_inventory_graph_groups_by_farm_and_role(aws_env, farms):
    proc = ansible_inventory("--graph", env=aws_env)
    assert proc.returncode == 0, proc.stderr
    groups = graph_groups(proc.stdout)
    assert groups["farm_demo"] == {"demo-web-1", "demo-web-2", "demo-worker-cron-1", "demo-db-1"}
    assert groups["farm_staging"] == {"staging-web-1", "staging-worker-1"}
    assert groups["role_web"] == {"demo-web-1", "demo-web-2", "staging-web-1"}
    assert groups["role_worker"] == {"demo-worker-cron-1", "staging-worker-1"}
    assert groups["role_cron"] == {"demo-worker-cron-1"}
    assert groups["role_db"] == {"demo-db-1", "dbonly-db-1", "pgf-db-1"}
    assert groups["role_db_follower"] == {"pgf-db-follower-1"}
    assert groups["farm_dbonly"] == {"dbonly-db-1"}
    # No group for a comma-joined tag: the host is in each of its roles.
    assert not [g for g in groups if "," in g]


def test_inventory_hostnames_are_name_tags_and_ansible_host_the_private_ip(aws_env, farms):
    inventory = inventory_list(aws_env)
    hostvars = inventory["_meta"]["hostvars"]
    # The plugin's own host variables carry the inventory file's hostvars_prefix (if it sets one).
    config = yaml.safe_load((REPO_ROOT / "inventory" / "aws_ec2.yml").read_text(encoding="utf-8"))
    prefix = config.get("hostvars_prefix", "")
    running = {name: h for name, h in farms.items() if h["farm"] != "halted"}
    assert set(hostvars) == set(running)
    for name, host in running.items():
        assert hostvars[name]["ansible_host"] == host["ip"]
        assert hostvars[name][f"{prefix}instance_id"] == host["id"]
        assert hostvars[name][f"{prefix}tags"]["Name"] == name
        assert hostvars[name][f"{prefix}tags"]["farm"] == host["farm"]
    assert hostvars["demo-worker-cron-1"][f"{prefix}tags"]["role"] == "worker,cron"
    assert set(inventory["role_cron"]["hosts"]) == {"demo-worker-cron-1"}
    assert "demo-worker-cron-1" in inventory["role_worker"]["hosts"]


def test_inventory_excludes_stopped_instances(aws_env, farms, fleet):
    stopped = fleet.add("demo", "web", "demo-web-3")
    fleet.stop(stopped["id"])
    inventory = inventory_list(aws_env)
    hostvars = inventory["_meta"]["hostvars"]
    assert "demo-web-3" not in hostvars
    assert not {"halted-web-1", "halted-worker-1"} & set(hostvars)
    assert "farm_halted" not in inventory
    assert "demo-web-3" not in inventory["farm_demo"]["hosts"]
    assert stopped["ip"] not in json.dumps(inventory)


# -- bad input: exit 2, one line on stderr, nothing changed --------------------------------------

GUARDED = ("ansible-playbook", "podman", "ssh", "ssh-keygen", "debootstrap")


@dataclass(frozen=True)
class Bad:
    """A bad invocation and the words its one-line error must contain."""

    args: tuple[str, ...]
    expect: str
    env: dict[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()
    setup: Callable[[dict[str, str], Path], Path | None] | None = None  # may return the cwd


def _no_credentials(env: dict[str, str], tmp: Path) -> None:
    empty = tmp / "empty-aws"
    empty.mkdir()
    (empty / "config").write_text("")
    (empty / "credentials").write_text("")
    env["AWS_CONFIG_FILE"] = str(empty / "config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(empty / "credentials")


def _outside_project(env: dict[str, str], tmp: Path) -> Path:
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return elsewhere


def _home_not_a_project(env: dict[str, str], tmp: Path) -> None:
    home = tmp / "not-a-project"
    (home / "inventory").mkdir(parents=True)  # half a project: no ansible.cfg, no aws_ec2.yml
    env["FARMHAND_HOME"] = str(home)


INVALID = "invalid farm name"
SHAPE = ("local", "up", "-f", "shape_probe")

BAD_INPUT: dict[str, Bad] = {
    # farm names
    "farm-uppercase": Bad(("ps", "-f", "Demo"), f"{INVALID} 'Demo'"),
    "farm-space": Bad(("ps", "-f", "my farm"), f"{INVALID} 'my farm'"),
    "farm-leading-digit": Bad(("ps", "-f", "1demo"), f"{INVALID} '1demo'"),
    "farm-too-long": Bad(("ps", "-f", "a" * 32), f"{INVALID} '{'a' * 32}'"),
    "farm-empty": Bad(("ps", "-f", ""), f"{INVALID} ''"),
    "farm-semicolon": Bad(("ps", "-f", "demo;rm -rf /"), f"{INVALID} 'demo;rm -rf /'"),
    "farm-subshell": Bad(("ps", "-f", "$(id)"), INVALID),
    "farm-pipe": Bad(("converge", "-f", "demo|cat"), INVALID),
    "farm-path": Bad(("converge", "-f", "../demo"), INVALID),
    "farm-trailing-newline": Bad(("ps", "-f", "demo\n"), f"{INVALID} 'demo\\n'"),
    "farm-hyphen": Bad(("ps", "-f", "demo-2"), INVALID),
    "farm-missing-ps": Bad(("ps",), "no farm given: use -f FARM or set FARMHAND_FARM"),
    "farm-missing-converge": Bad(("converge",), "no farm given"),
    "farmhand-farm-invalid": Bad(("ps",), f"{INVALID} 'Bad Farm'", env={"FARMHAND_FARM": "Bad Farm"}),
    # farms that are not there, or not running
    "unknown-farm-ps": Bad(("ps", "-f", "nope"), f"unknown farm 'nope': known farms are {KNOWN_FARMS}"),
    "unknown-farm-converge": Bad(("converge", "-f", "nope"), "unknown farm 'nope'"),
    "configured-farm-no-hosts-ps": Bad(("ps", "-f", "ci"), "farm 'ci' has no hosts"),
    "configured-farm-no-hosts-converge": Bad(("converge", "-f", "ci"), "farm 'ci' has no hosts"),
    "all-stopped-ps": Bad(("ps", "-f", "halted"), "farm 'halted' has no running hosts (2 stopped"),
    "all-stopped-converge": Bad(("converge", "-f", "halted", "--check"), "has no running hosts"),
    # roles
    "converge-unknown-role": Bad(
        ("converge", "-f", "demo", "--role", "unknownrole"), "unknown role 'unknownrole'"
    ),
    "converge-empty-role": Bad(("converge", "-f", "demo", "--role", ""), "unknown role ''"),
    "converge-role-without-hosts": Bad(
        ("converge", "-f", "demo", "--role", "console"), "farm 'demo' has no hosts with role 'console'"
    ),
    # AWS access
    "no-credentials": Bad(
        ("ps", "-f", "demo"),
        "no AWS credentials found",
        unset=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        setup=_no_credentials,
    ),
    "partial-credentials": Bad(
        ("ps", "-f", "demo"),
        "incomplete AWS credentials: AWS_SECRET_ACCESS_KEY is missing",
        unset=("AWS_SECRET_ACCESS_KEY",),
    ),
    "unknown-aws-profile": Bad(
        ("ps", "-f", "demo"),
        "AWS profile 'no_such_profile' is not configured",
        env={"AWS_PROFILE": "no_such_profile"},
    ),
    "unreachable-endpoint": Bad(
        ("ps", "-f", "demo"),
        "cannot reach http://127.0.0.1:1",
        env={"AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
    ),
    "malformed-endpoint": Bad(
        ("ps", "-f", "demo"), "invalid AWS endpoint 'not a url'", env={"AWS_ENDPOINT_URL": "not a url"}
    ),
    "endpoint-port-out-of-range": Bad(
        ("converge", "-f", "demo"),
        "invalid AWS endpoint 'http://127.0.0.1:99999'",
        env={"AWS_ENDPOINT_URL": "http://127.0.0.1:99999"},
    ),
    # the project
    "outside-a-project": Bad(
        ("ps", "-f", "demo"), "no Farmhand project at", unset=("FARMHAND_HOME",), setup=_outside_project
    ),
    "farmhand-home-not-a-project": Bad(
        ("ps", "-f", "demo"), "no Farmhand project at", setup=_home_not_a_project
    ),
    # the command line
    "unknown-command": Bad(("frobnicate",), "No such command 'frobnicate'"),
    "unknown-option": Bad(("ps", "-f", "demo", "--bogus"), "No such option '--bogus'"),
    "unknown-local-command": Bad(("local", "frobnicate"), "No such command 'frobnicate'"),
    # local farm shapes: rejected before podman is looked for
    "shape-not-a-number": Bad((*SHAPE, "--shape", "web=x"), "invalid shape 'web=x'"),
    "shape-negative": Bad((*SHAPE, "--shape", "web=-1"), "invalid count -1 for 'web'"),
    "shape-unknown-role": Bad((*SHAPE, "--shape", "bogus=1"), "unknown role 'bogus' in shape"),
    "shape-same-key-twice": Bad((*SHAPE, "--shape", "web=1", "--shape", "web=2"), "shape names 'web' twice"),
    "shape-role-twice": Bad(
        (*SHAPE, "--shape", "web=1", "--shape", "worker,web=1"), "role 'web' appears twice in the shape"
    ),
    "shape-too-many-hosts": Bad(
        (*SHAPE, "--shape", "web=20", "--shape", "worker=5"), "at most 24 hosts; this shape asks for 25"
    ),
    "shape-no-hosts": Bad((*SHAPE, "--shape", "web=0"), "the farm's shape has no hosts"),
    "local-up-invalid-farm": Bad(("local", "up", "-f", "Demo", "--shape", "web=1"), f"{INVALID} 'Demo'"),
    "local-up-cgroup-parent-relative": Bad(
        (*SHAPE, "--shape", "web=1"),
        "FARMHAND_LOCAL_CGROUP_PARENT must be an absolute cgroup path (/farmhand-test/ci), not 'ci'",
        env={"FARMHAND_LOCAL_CGROUP_PARENT": "ci"},
    ),
    "local-up-cgroup-parent-dotdot": Bad(
        (*SHAPE, "--shape", "web=1"),
        "not '/farmhand/../x'",
        env={"FARMHAND_LOCAL_CGROUP_PARENT": "/farmhand/../x"},
    ),
    "local-down-invalid-farm": Bad(("local", "down", "-f", "demo;ls"), INVALID),
    "local-env-no-such-farm": Bad(("local", "env", "-f", "nosuchfarm"), "no local farm 'nosuchfarm'"),
    # deploys, releases, rollbacks (checked before a release is recorded or a host is contacted)
    "deploy-unknown-ref": Bad(("deploy", "-f", "demo", "--ref", "no-such-ref"), "unknown ref 'no-such-ref'"),
    "deploy-option-as-ref": Bad(
        ("deploy", "-f", "demo", "--ref", "--output=/tmp/x"), "invalid ref '--output"
    ),
    "deploy-empty-ref": Bad(("deploy", "-f", "demo", "--ref", ""), "invalid ref ''"),
    "deploy-no-web-hosts": Bad(
        ("deploy", "-f", "dbonly"), "farm 'dbonly' has no web hosts: nothing to deploy to"
    ),
    "deploy-repo-not-git": Bad(("deploy", "-f", "demo", "--repo", "/nonexistent"), "is not a git work tree"),
    "deploy-unknown-farm": Bad(("deploy", "-f", "nope"), "unknown farm 'nope'"),
    "deploy-no-farm": Bad(("deploy",), "no farm given"),
    "rollback-no-releases": Bad(
        ("rollback", "-f", "demo"), "farm 'demo' has no successful release to roll back"
    ),
    "rollback-malformed-release": Bad(("rollback", "-f", "demo", "vx"), "invalid release 'vx'"),
    "rollback-unknown-release": Bad(("rollback", "-f", "staging", "v99"), "no release v99"),
    "rollback-no-web-hosts": Bad(("rollback", "-f", "dbonly", "v1"), "farm 'dbonly' has no web hosts"),
    "releases-unknown-farm": Bad(("releases", "-f", "nope"), "unknown farm 'nope'"),
    "releases-bad-count": Bad(("releases", "-f", "demo", "-n", "0"), "Invalid value for '-n' / '--num'"),
    "restart-unknown-role": Bad(("restart", "-f", "demo", "-r", "bogus"), "unknown role 'bogus'"),
    "restart-role-without-processes": Bad(
        ("restart", "-f", "demo", "-r", "db"), "role 'db' has no processes to restart"
    ),
    "restart-no-web-hosts": Bad(("restart", "-f", "dbonly"), "farm 'dbonly' has no hosts with role 'web'"),
    "maintenance-on-no-web-hosts": Bad(("maintenance:on", "-f", "dbonly"), "farm 'dbonly' has no web hosts"),
    "maintenance-off-unknown-farm": Bad(("maintenance:off", "-f", "nope"), "unknown farm 'nope'"),
    "maintenance-no-farm": Bad(("maintenance",), "no farm given"),
    "info-unknown-farm": Bad(("info", "-f", "nope"), "unknown farm 'nope'"),
    # config vars (checked before a parameter is written, a release recorded or a host contacted)
    "config-set-nothing": Bad(("config:set", "-f", "demo"), "no config vars given"),
    "config-set-no-equals": Bad(("config:set", "-f", "demo", "GREETING"), "'GREETING' is not KEY=VALUE"),
    "config-set-leading-digit": Bad(("config:set", "-f", "demo", "1KEY=x"), "invalid config var name '1KEY'"),
    "config-set-hyphen": Bad(("config:set", "-f", "demo", "MY-KEY=x"), "invalid config var name 'MY-KEY'"),
    "config-set-empty-name": Bad(("config:set", "-f", "demo", "=x"), "invalid config var name ''"),
    "config-set-dot": Bad(("config:set", "-f", "demo", "a.b=x"), "invalid config var name 'a.b'"),
    "config-set-name-too-long": Bad(("config:set", "-f", "demo", "K" * 256 + "=x"), "(at most 255)"),
    "config-set-reserved-database-url": Bad(
        ("config:set", "-f", "demo", "DATABASE_URL=postgres://elsewhere/db"),
        "DATABASE_URL is set by Farmhand (the farm's database, through PgBouncer): it cannot be a config var",
    ),
    "config-set-reserved-rails-env": Bad(
        ("config:set", "-f", "demo", "RAILS_ENV=staging"), "RAILS_ENV is set by Farmhand (farmhand_rails_env"
    ),
    "config-set-empty-value": Bad(
        ("config:set", "-f", "demo", "EMPTY="),
        "EMPTY has an empty value: SSM Parameter Store cannot hold one",
    ),
    "config-set-twice": Bad(("config:set", "-f", "demo", "A=1", "A=2"), "A is given twice"),
    "config-set-too-big": Bad(
        ("config:set", "-f", "demo", "BIG=" + "é" * 4097), "the value of BIG is 8194 bytes"
    ),
    "config-set-not-utf8": Bad(
        ("config:set", "-f", "demo", "RAW=a\udcffb"), "the value of RAW is not valid UTF-8"
    ),
    "config-set-one-bad-of-two": Bad(
        ("config:set", "-f", "demo", "GOOD=fine", "BAD NAME=x"), "invalid config var name 'BAD NAME'"
    ),
    "config-set-unknown-farm": Bad(("config:set", "-f", "nope", "A=1"), "unknown farm 'nope'"),
    "config-set-stopped-farm": Bad(
        ("config:set", "-f", "halted", "A=1"), "farm 'halted' has no running hosts"
    ),
    "config-set-no-farm": Bad(("config:set", "A=1"), "no farm given"),
    "config-set-no-credentials": Bad(
        ("config:set", "-f", "demo", "A=1"),
        "no AWS credentials found",
        unset=("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        setup=_no_credentials,
    ),
    "config-unset-nothing": Bad(("config:unset", "-f", "demo"), "no config var names given"),
    "config-unset-not-set": Bad(("config:unset", "-f", "demo", "MISSING"), "not set on farm 'demo': MISSING"),
    "config-unset-bad-name": Bad(("config:unset", "-f", "demo", "NO=PE"), "invalid config var name 'NO=PE'"),
    "config-get-not-set": Bad(("config:get", "-f", "demo", "MISSING"), "MISSING is not set on farm 'demo'"),
    "config-get-bad-name": Bad(("config:get", "-f", "demo", "$(id)"), "invalid config var name '$(id)'"),
    "config-get-no-key": Bad(("config:get", "-f", "demo"), "Missing argument 'KEY'"),
    "config-two-formats": Bad(
        ("config", "-f", "demo", "--json", "--shell"), "--json and --shell are two formats"
    ),
    "config-unknown-farm": Bad(("config", "-f", "nope"), "unknown farm 'nope'"),
    "config-invalid-farm": Bad(("config", "-f", "Demo"), f"{INVALID} 'Demo'"),
    # PostgreSQL (refused before any host is asked or changed)
    "pg-promote-no-followers": Bad(
        ("pg:promote", "-f", "demo"), "farm 'demo' has no followers (hosts tagged db_follower)"
    ),
    "pg-promote-unknown-follower": Bad(
        ("pg:promote", "-f", "pgf", "nosuch"),
        "unknown follower 'nosuch': the farm's followers are pgf-db-follower-1",
    ),
    "pg-promote-primary-as-follower": Bad(
        ("pg:promote", "-f", "pgf", "pgf-db-1"), "unknown follower 'pgf-db-1'"
    ),
    "pg-promote-negative-lag": Bad(
        ("pg:promote", "-f", "pgf", "--max-lag", "-1"), "Invalid value for '--max-lag'"
    ),
    "pg-promote-unknown-farm": Bad(("pg:promote", "-f", "nope"), "unknown farm 'nope'"),
    "pg-follow-not-a-follower": Bad(
        ("pg:follow", "-f", "pgf", "pgf-db-1"), "'pgf-db-1' is not a follower of 'pgf'"
    ),
    "pg-follow-no-host": Bad(("pg:follow", "-f", "pgf"), "Missing argument 'HOST'"),
    "pg-info-no-database": Bad(("pg:info", "-f", "staging"), "farm 'staging' has no database hosts"),
    "psql-no-primary": Bad(("psql", "-f", "staging"), "farm 'staging' has no primary (host tagged db)"),
    "psql-no-follower": Bad(("psql", "-f", "demo", "--follower"), "farm 'demo' has no followers"),
    # Backups (refused before any host is asked or changed)
    "pg-backups-no-primary": Bad(
        ("pg:backups", "-f", "staging"), "farm 'staging' has no primary (host tagged db): it has no backups"
    ),
    "pg-backups-schedules-no-primary": Bad(
        ("pg:backups:schedules", "-f", "staging"), "farm 'staging' has no primary (host tagged db)"
    ),
    "pg-backups-capture-bad-type": Bad(
        ("pg:backups:capture", "-f", "pgf", "--type", "weekly"), "Invalid value for '--type'"
    ),
    "pg-backups-restore-in-place-unconfirmed": Bad(
        ("pg:backups:restore", "-f", "pgf", "--target", "pgf-db-1"),
        "restoring in place replaces the database of 'pgf' on pgf-db-1: to proceed, pass --confirm pgf",
    ),
    "pg-backups-restore-in-place-wrong-confirm": Bad(
        ("pg:backups:restore", "-f", "pgf", "--target", "pgf-db-1", "--confirm", "demo"),
        "to proceed, pass --confirm pgf",
    ),
    "pg-backups-restore-no-fresh-host": Bad(
        ("pg:backups:restore", "-f", "pgf"), "farm 'pgf' has no fresh host to restore into"
    ),
    "pg-backups-restore-into-a-follower": Bad(
        ("pg:backups:restore", "-f", "pgf", "--target", "pgf-db-follower-1", "--confirm", "pgf"),
        "cannot restore into 'pgf-db-follower-1'",
    ),
    "pg-backups-restore-bad-time": Bad(
        ("pg:backups:restore", "-f", "pgf", "--to-time", "yesterday"), "invalid --to-time 'yesterday'"
    ),
    "pg-backups-restore-time-without-offset": Bad(
        ("pg:backups:restore", "-f", "pgf", "--to-time", "2026-11-23 10:00:00"), "with a UTC offset"
    ),
    "pg-backups-restore-label-and-time": Bad(
        ("pg:backups:restore", "-f", "pgf", "20261123-100000F", "--to-time", "2026-11-23 10:00:00+00"),
        "give a backup LABEL or --to-time, not both",
    ),
    # Scheduled jobs and logs (refused before any host is asked)
    "cron-no-cron-host": Bad(("cron", "-f", "staging"), "farm 'staging' has no cron host (no host tagged"),
    "cron-run-no-jobs": Bad(("cron:run", "-f", "staging", "tick"), "farm 'staging' has no scheduled jobs"),
    "cron-run-bad-job-name": Bad(("cron:run", "-f", "demo", "Bad Name"), "invalid job name 'Bad Name'"),
    "cron-run-no-job": Bad(("cron:run", "-f", "demo"), "Missing argument 'JOB'"),
    "cron-logs-run-zero": Bad(("cron:logs", "-f", "demo", "tick", "0"), "0 is not in the range x>=1"),
    "cron-history-unknown-farm": Bad(("cron:history", "-f", "nope"), "unknown farm 'nope'"),
    "logs-unknown-role": Bad(("logs", "-f", "demo", "-r", "nope"), "unknown role 'nope'"),
    "logs-role-without-hosts": Bad(
        ("logs", "-f", "demo", "-r", "db_follower"), "farm 'demo' has no hosts with role db_follower"
    ),
    "logs-bad-grep": Bad(("logs", "-f", "demo", "--grep", "("), "invalid --grep pattern '('"),
    "logs-zero-lines": Bad(("logs", "-f", "demo", "-n", "0"), "0 is not in the range x>=1"),
}


@pytest.fixture
def guard(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A PATH where the venv's tools stand, but the commands that act on hosts record their call and fail.

    With it, a bad invocation that got past validation could neither run a playbook against the fake
    hosts' addresses nor touch Podman: it would fail its test instead.
    """
    bin_dir = tmp_path / "guard-bin"
    bin_dir.mkdir()
    log = tmp_path / "guard.log"
    (bin_dir / "git").symlink_to(shutil.which("git") or "/usr/bin/git")  # reading the app's repo is harmless
    for name in GUARDED:
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit 99\n')
        script.chmod(0o755)
    yield f"{bin_dir}{os.pathsep}{ANSIBLE_BIN}", log


def assert_one_line_error(proc: subprocess.CompletedProcess[str], expect: str) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in output
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("farm: error: "), lines[0]
    assert expect in lines[0], lines[0]


@pytest.mark.parametrize("case", list(BAD_INPUT.values()), ids=list(BAD_INPUT))
def test_bad_input_is_one_clear_line_and_changes_nothing(
    case, aws_env, farms, ec2, guard, project_view, tmp_path
):
    path, guard_log = guard
    env = {k: v for k, v in aws_env.items() if k not in case.unset}
    env.update(case.env)
    env["PATH"] = path
    cwd = case.setup(env, tmp_path) if case.setup else None
    state_before = sorted(p.relative_to(project_view) for p in (project_view / ".farm").rglob("*"))
    before = snapshot(ec2)
    params_before = parameters(aws_env["AWS_ENDPOINT_URL"])

    proc = farm(*case.args, env=env, cwd=cwd or REPO_ROOT)

    assert_one_line_error(proc, case.expect)
    assert snapshot(ec2) == before
    assert parameters(aws_env["AWS_ENDPOINT_URL"]) == params_before
    assert not guard_log.exists(), guard_log.read_text()
    assert sorted(p.relative_to(project_view) for p in (project_view / ".farm").rglob("*")) == state_before


def test_there_are_more_than_twenty_bad_input_cases():
    assert len(BAD_INPUT) > 20


@pytest.fixture
def strict_moto(tmp_path: Path) -> Iterator[str]:
    """A separate moto server that enforces IAM auth from the first request: every key is unknown to it."""
    server = MotoServer(tmp_path, env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        yield server.ensure()
    finally:
        server.stop()


def test_rejected_credentials(aws_env, farms, ec2, guard, strict_moto):
    path, guard_log = guard
    before = snapshot(ec2)
    proc = farm("ps", "-f", "demo", env={**aws_env, "AWS_ENDPOINT_URL": strict_moto, "PATH": path})
    assert_one_line_error(proc, "AWS rejected the credentials")
    assert snapshot(ec2) == before
    assert not guard_log.exists()


# -- converge, with a stand-in for ansible-playbook ----------------------------------------------


def test_converge_runs_site_yml_limited_to_the_farm_and_role(aws_env, farms, tmp_path):
    """converge hands ansible-playbook the farm's limit and reports its PLAY RECAP (no host is contacted)."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    fake = bin_dir / "ansible-playbook"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$PWD $*" >> "{calls}"\n'
        # What the farmhand_results callback records of a run (tests/core/test_drift.py covers the rest).
        + ran({"demo-web-1": counts(changed=2, skipped=1), "demo-web-2": counts(skipped=1)})
    )
    fake.chmod(0o755)
    env = {**aws_env, "PATH": f"{bin_dir}{os.pathsep}{ANSIBLE_BIN}"}
    proc = farm("converge", "-f", "demo", "--role", "web", "--check", "--diff", env=env)
    assert proc.returncode == 3, proc.stdout + proc.stderr  # check mode found drift
    cwd, *args = calls.read_text().split()
    assert Path(cwd) == Path(env["FARMHAND_HOME"])
    assert args == ["playbooks/site.yml", "--limit", "farm_demo:&role_web", "--check", "--diff"]
    assert "Converging 2 hosts of demo role web (check mode)" in proc.stdout
    assert "2 hosts, 2 changes (check mode)" in proc.stdout
    assert "1 host drifted: demo-web-1\n" in proc.stdout


# -- deploy, releases, rollback, with a stand-in for ansible-playbook ----------------------------


FAILED_BUILD = (
    "echo 'TASK [app_release : Build the release] *****'\n"
    "echo 'fatal: [demo-web-2]: FAILED! => {}'\n"
    + ran(
        {"demo-web-2": counts(changed=2, failed=1)},
        failed_task("demo-web-2", "Build the release", "app_release"),
    )
    + "exit 2\n"
)


def head_of_sample_app() -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO_ROOT / "examples/bookshelf"), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_deploy_records_a_release_and_runs_deploy_yml(aws_env, farms, tmp_path):
    path, calls = fake_playbook(tmp_path, OK_RECAP)
    env = {**aws_env, "PATH": path, "FARMHAND_USER": "alice"}
    proc = farm("deploy", "-f", "demo", env=env)
    assert_ok(proc)
    sha = head_of_sample_app()
    assert f"Released v1 ({sha[:7]}) to demo" in proc.stdout
    args = calls.read_text().split()
    assert args[:3] == ["playbooks/deploy.yml", "--limit", "farm_demo"]
    release = json.loads(calls.with_suffix(".log.json").read_text())["farmhand_release"]
    assert release == {
        "name": f"1-{sha[:7]}",
        "label": "v1",
        "sha": sha,
        "archive": release["archive"],
        "migrate": True,
    }
    assert release["archive"].endswith(f"/.farm/archives/{sha}.tar.gz")
    # The release file is gone; the recorded release says who and what.
    assert not list((Path(aws_env["FARMHAND_HOME"]) / ".farm").glob("release-*.json"))
    listing = json.loads(farm("releases", "-f", "demo", "--json", env=env).stdout)
    (row,) = listing["releases"]
    assert (row["version"], row["status"], row["user"], row["current"]) == (1, "succeeded", "alice", True)
    # The same commit again: nothing to do, no new release.
    again = farm("deploy", "-f", "demo", env=env)
    assert_ok(again)
    assert "nothing to deploy" in again.stdout
    assert len(json.loads(farm("releases", "-f", "demo", "--json", env=env).stdout)["releases"]) == 1


def test_a_failed_deploy_is_recorded_and_names_host_and_step(aws_env, farms, tmp_path):
    path, _ = fake_playbook(tmp_path, FAILED_BUILD)
    proc = farm("deploy", "-f", "demo", env={**aws_env, "PATH": path})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "farm: error: v1 failed on demo-web-2 (Build the release); `farm releases -f demo` shows what runs"
    ]
    stored = json.loads(parameters(aws_env["AWS_ENDPOINT_URL"])["/farmhand/demo/releases/1"])
    assert (stored["status"], stored["detail"]) == ("failed", "failed on demo-web-2 (Build the release)")


def test_rollback_defaults_to_the_release_before_the_current_one(aws_env, farms, tmp_path):
    sha = head_of_sample_app()
    ssm = ssm_client(aws_env["AWS_ENDPOINT_URL"])
    from farmhand.core import releases  # the CLI's own records, written as a deploy writes them

    for number in (1, 2):
        made = releases.create(ssm, "demo", sha, f"Deploy {number}")
        releases.finish(ssm, "demo", made, "succeeded")
    failed = releases.create(ssm, "demo", sha, "Deploy 3")
    releases.finish(ssm, "demo", failed, "failed")
    path, calls = fake_playbook(tmp_path, OK_RECAP)
    env = {**aws_env, "PATH": path}
    proc = farm("rollback", "-f", "demo", env=env)
    assert_ok(proc)
    assert "Rollback to v1 to demo" in proc.stdout and "Released v4" in proc.stdout
    release = json.loads(calls.with_suffix(".log.json").read_text())["farmhand_release"]
    assert (release["name"], release["migrate"]) == (f"4-{sha[:7]}", False)
    rows = json.loads(farm("releases", "-f", "demo", "--json", env=env).stdout)["releases"]
    assert [(r["version"], r["kind"], r["current"]) for r in rows][:2] == [
        (4, "rollback", True),
        (3, "deploy", False),
    ]
    table = farm("releases", "-f", "demo", env=env).stdout
    assert "Rollback to v1" in table and "failed" in table


def test_info_shows_the_farm_and_its_current_release(aws_env, farms, tmp_path):
    path, _ = fake_playbook(tmp_path, OK_RECAP)
    env = {**aws_env, "PATH": path}
    before = json.loads(farm("info", "-f", "demo", "--json", env=env).stdout)
    assert before["release"] is None
    assert before["roles"] == {"web": 2, "worker": 1, "db": 1, "cron": 1}
    assert_ok(farm("deploy", "-f", "demo", env=env))
    text = farm("info", "-f", "demo", env=env).stdout
    assert "=== demo" in text and "AWS us-east-1" in text
    assert f"v1 {head_of_sample_app()[:7]} Deploy" in text


def test_ansible_is_found_beside_farm_when_the_venv_is_not_on_path(aws_env, farms):
    proc = farm("ps", "-f", "demo", "--json", env={**aws_env, "PATH": "/usr/bin:/bin"})
    assert_ok(proc)
    assert {h["name"] for h in json.loads(proc.stdout)["hosts"]} == set(demo_hosts(farms))


def test_cron_run_refuses_an_unknown_job_before_asking_any_host(aws_env, farms, ec2, guard, tmp_path):
    """With jobs in the farm's group_vars, a job not among them is refused without SSH."""
    view = tmp_path / "project-with-jobs"
    view.mkdir()
    for name in ("ansible.cfg", "inventory", "playbooks", "roles"):
        (view / name).symlink_to(REPO_ROOT / name)
    shutil.copytree(REPO_ROOT / "group_vars", view / "group_vars", symlinks=True)
    (view / "group_vars" / "farm_demo" / "cron.yml").write_text(
        "farmhand_cron_jobs:\n"
        "  - {name: send-digests, schedule: every 10 minutes, command: bin/rails digests}\n"
        "  - {name: nightly, schedule: daily at 02:30, command: bin/rails nightly}\n"
    )
    (view / ".farm").mkdir()
    path, guard_log = guard
    env = {**aws_env, "FARMHAND_HOME": str(view), "PATH": path}
    before = snapshot(ec2)

    jobs = "jobs are send-digests, nightly"
    for args, expect in (
        (("cron:run", "-f", "demo", "nope"), f"unknown job 'nope' on farm 'demo': {jobs}"),
        (("cron:logs", "-f", "demo", "nope", "3"), "unknown job 'nope' on farm 'demo'"),
        (("cron:history", "-f", "demo", "nope"), "unknown job 'nope' on farm 'demo'"),
    ):
        proc = farm(*args, env=env)
        assert_one_line_error(proc, expect)
    assert snapshot(ec2) == before
    assert not guard_log.exists(), guard_log.read_text()
    # A known job gets as far as SSH to the cron host (the guard stands in for ssh and fails).
    proc = farm("cron:run", "-f", "demo", "send-digests", env=env)
    assert proc.returncode == 99
    assert f"admin@{farms['demo-worker-cron-1']['ip']}" in guard_log.read_text()
    assert "sudo /usr/local/bin/farmhand-cron run send-digests" in guard_log.read_text()


def test_cron_commands_follow_the_farms_active_cron_host(aws_env, farms, fleet, guard, tmp_path):
    """After a failover (farmhand_cron_active_host names the standby), `farm cron:run` runs the job
    there, never on the former active host; a name that is no cron host of the farm is refused."""
    standby = fleet.add("demo", "cron", "demo-cron-2")
    jobs = "farmhand_cron_jobs:\n  - {name: nightly, schedule: daily at 02:30, command: bin/rails nightly}\n"
    view = make_project(
        tmp_path / "project-failed-over",
        {"farm_demo/cron.yml": jobs + "farmhand_cron_active_host: demo-cron-2\n"},
    )
    cron_vars = view / "group_vars" / "farm_demo" / "cron.yml"
    path, guard_log = guard
    env = {**aws_env, "FARMHAND_HOME": str(view), "PATH": path}

    proc = farm("cron:run", "-f", "demo", "nightly", env=env)
    assert proc.returncode == 99
    assert f"admin@{standby['ip']}" in guard_log.read_text()
    assert farms["demo-worker-cron-1"]["ip"] not in guard_log.read_text()

    guard_log.unlink()
    cron_vars.write_text(jobs + "farmhand_cron_active_host: demo-web-1\n")
    proc = farm("cron", "-f", "demo", env=env)
    assert_one_line_error(
        proc,
        "farmhand_cron_active_host 'demo-web-1' is not a cron host of farm 'demo': "
        "demo-cron-2, demo-worker-cron-1",
    )
    assert not guard_log.exists()
