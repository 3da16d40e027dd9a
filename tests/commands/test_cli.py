"""The `farm` command as a whole, as a user runs it (the real entry point, as a subprocess) against moto
on 127.0.0.1: bad input across the verbs is one clear line and changes nothing; AWS refusing the
credentials; Ansible found beside `farm`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import (
    REPO_ROOT,
    assert_ok,
    assert_one_line_error,
    calls,
    demo_hosts,
    farm,
    one_line_error,
    parameters,
    snapshot,
)

from farmhand.core.local.moto import MotoServer

# `unknown farm` lists the farms it knows: group_vars/farm_* (ci, demo...) and the tagged ones.
CONFIGURED_FARMS = {
    p.name.removeprefix("farm_").removesuffix(".yml") for p in (REPO_ROOT / "group_vars").glob("farm_*")
}


KNOWN_FARMS = ", ".join(sorted(CONFIGURED_FARMS | {"demo", "staging", "halted", "dbonly", "pgf"}))


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
    "restart-no-web-or-worker-hosts": Bad(
        ("restart", "-f", "dbonly"), "farm 'dbonly' has no web or worker hosts: no processes to restart"
    ),
    "restart-no-web-hosts": Bad(
        ("restart", "-f", "dbonly", "-r", "web"), "farm 'dbonly' has no hosts with role 'web'"
    ),
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


def test_ansible_is_found_beside_farm_when_the_venv_is_not_on_path(aws_env, farms):
    proc = farm("ps", "-f", "demo", "--json", env={**aws_env, "PATH": "/usr/bin:/bin"})
    assert_ok(proc)
    assert {h["name"] for h in json.loads(proc.stdout)["hosts"]} == set(demo_hosts(farms))


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("run", "-f", "demo"), "no command given: farm run -f FARM -- COMMAND"),
        (("run", "-f", "demo", "-r", "db", "--", "ls"), "role 'db' does not run the app"),
        (("run", "-f", "demo", "-r", "console", "--", "ls"), "farm 'demo' has no hosts with role 'console'"),
        (("run", "-f", "demo", "-r", "nope", "--", "ls"), "unknown role 'nope'"),
        (("run", "-f", "dbonly", "--", "ls"), "farm 'dbonly' has no console, worker or web host"),
        (
            ("ssh", "-f", "demo", "nope"),
            "unknown host 'nope' in farm 'demo': hosts are demo-db-1, demo-web-1",
        ),
        (("ssh", "-f", "demo", "-r", "db_follower"), "farm 'demo' has no hosts with role 'db_follower'"),
        (("ssh", "-f", "demo", "-r", "web", "demo-web-1"), "give a HOST or -r ROLE, not both"),
        (("ssh", "-f", "demo", "--all"), "--all needs a command"),
        (("ssh", "-f", "demo", "--all", "demo-web-1", "--", "ls"), "--all runs on every host"),
        (("scp", "-f", "demo", "a", "b"), "neither 'a' nor 'b' names a host: write HOST:path on one side"),
        (("scp", "-f", "demo", "nope:/x", "."), "unknown host 'nope' in farm 'demo'"),
        (("scp", "-f", "demo", "demo-web-1:/x", "demo-web-2:/x"), "both sides name a host"),
        (("help", "nope"), "unknown command 'nope'"),
        (("completion", "tcsh"), "Invalid value for '{bash|zsh|fish}'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_reaches_no_host(fake_ssh, args, expect):
    env, log = fake_ssh
    one_line_error(farm(*args, env=env), expect)
    assert calls(log) == []
