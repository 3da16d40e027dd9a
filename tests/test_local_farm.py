"""Whole-farm test: a small local farm found by the aws_ec2 inventory and converged over SSH.

Needs Podman, debootstrap (for the image) and moto: `make test` installs them, and this test
fails (it is never skipped) where they are missing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pexpect
import pytest
from farmlib import (
    FARM,
    FARM_BIN,
    ROOT,
    STATE,
    app_url,
    aws,
    ec2_instances,
    farm,
    farm_containers,
    farm_env,
    get,
    podman_json,
    run,
    summary_table,
    wait_for,
)

from farmhand.core import runner
from farmhand.core.inventory import untag
from farmhand.core.local.load import Load

pytestmark = pytest.mark.farm

# Brought up by the session's `local_farm` fixture (tests/conftest.py); see tests/farmlib.py.
HOSTS = ["ci-db-follower-1", "ci-db-worker-cron-1", "ci-lb-logs-1", "ci-web-1", "ci-web-2"]
NO_CHANGES = dict.fromkeys(HOSTS, 0)
# What `farm converge` keeps in SSM (SecureString) and no output or stray file may ever show.
SECRETS = [
    "backup_cipher_pass",
    "database_password",
    "redis_password",
    "replication_password",
    "secret_key_base",
]
# Traffic during deploys, restarts and cutovers is paced (each of LOAD_CONNECTIONS wrk connections
# waits LOAD_PACE_MS between requests; the writer waits WRITE_PACE_S): about 37 reads and 30 writes
# a second, a read every 27 ms, so every switch happens with requests in flight. Each read costs
# the farm about 8 ms of CPU: 8 connections (73 reads a second) took 0.6 of a core for as long as
# a deploy ran, and starved the rest of the suite on two shared cores.
LOAD_CONNECTIONS = 4
LOAD_PACE_MS = 100
WRITE_PACE_S = 0.03


def test_up_creates_the_shape_and_registers_it_in_moto(local_farm):
    assert "Local farm ci is up: 5 hosts" in local_farm.stdout
    containers = farm_containers()
    assert sorted(containers) == HOSTS
    assert all(c["State"] == "running" for c in containers.values())
    instances = ec2_instances(farm_env())
    assert sorted(instances) == HOSTS
    assert instances["ci-db-worker-cron-1"]["tags"]["role"] == "db,worker,cron"
    assert instances["ci-web-1"]["tags"]["farm"] == FARM
    for name, container in containers.items():
        inspect = podman_json("inspect", container["Names"][0])[0]
        assert (
            inspect["NetworkSettings"]["Networks"][f"farmhand-{FARM}"]["IPAddress"] == instances[name]["ip"]
        )


def test_each_host_has_its_own_machine_id_and_host_key(local_farm):
    ids = {
        run("podman", "exec", f"farmhand-{h}", "cat", "/etc/machine-id").stdout.strip()
        for h in farm_containers()
    }
    keys = {
        run("podman", "exec", f"farmhand-{h}", "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]
        for h in farm_containers()
    }
    assert len(ids) == len(HOSTS) and all(len(i) == 32 for i in ids)
    assert len(keys) == len(HOSTS)


def test_up_again_is_a_noop(local_farm):
    before_containers = {n: c["Id"] for n, c in farm_containers().items()}
    before_instances = {n: i["id"] for n, i in ec2_instances(farm_env()).items()}
    again = farm("local", "up", "-f", FARM)
    assert "Creating" not in again.stdout
    assert "Registered" not in again.stdout
    assert {n: c["Id"] for n, c in farm_containers().items()} == before_containers
    assert {n: i["id"] for n, i in ec2_instances(farm_env()).items()} == before_instances


def test_aws_ec2_inventory_groups_by_farm_and_role(local_farm):
    env = farm_env()
    graph = run("ansible-inventory", "-i", "inventory/aws_ec2.yml", "--list", "--flush-cache", env=env)
    assert graph.returncode == 0, graph.stderr
    inventory = untag(json.loads(graph.stdout))
    assert f"farm_{FARM}" in inventory, graph.stderr
    farm_hosts = set(inventory[f"farm_{FARM}"]["hosts"])
    assert farm_hosts == set(HOSTS)

    def in_farm(group: str) -> list[str]:  # other local farms of this checkout share moto
        return sorted(farm_hosts & set(inventory.get(group, {}).get("hosts", [])))

    assert in_farm("role_web") == ["ci-web-1", "ci-web-2"]
    assert in_farm("role_lb") == ["ci-lb-logs-1"]
    for role in ("db", "worker", "cron"):
        assert in_farm(f"role_{role}") == ["ci-db-worker-cron-1"]
    assert in_farm("role_db_follower") == ["ci-db-follower-1"]
    instances = ec2_instances(env)
    hostvars = inventory["_meta"]["hostvars"]
    assert hostvars["ci-web-1"]["ansible_host"] == instances["ci-web-1"]["ip"]


def test_ps_lists_hosts_by_role(local_farm):
    listing = json.loads(farm("ps", "-f", FARM, "--json").stdout)
    assert listing["local"] is True
    roles = {h["name"]: h["roles"] for h in listing["hosts"]}
    assert roles == {
        "ci-web-1": ["web"],
        "ci-web-2": ["web"],
        "ci-lb-logs-1": ["lb", "logs"],
        "ci-db-worker-cron-1": ["db", "worker", "cron"],
        "ci-db-follower-1": ["db_follower"],
    }
    assert all(h["state"] == "running" and h["instance_id"].startswith("i-") for h in listing["hosts"])


def test_the_first_converge_reaches_every_host_and_counts_its_changes(local_farm):
    first = farm("converge", "-f", FARM)
    STATE["converged"] = True
    recap = summary_table(first.stdout)
    assert sorted(recap) == HOSTS
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in recap.values())
    changed = sum(c["changed"] for c in recap.values())
    assert changed > 0
    assert f"5 hosts, {changed} changes" in first.stdout
    # That a second converge changes nothing, and prints no secret at -vvv, is asserted once the
    # farm has also been deployed, reconfigured and promoted: test_converge_after_deploys_...


def secrets_in_ssm(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The farm's secrets in SSM by name, as `farm converge` created them: each one's Type and
    (decrypted) Value."""
    params = aws("ssm", env).get_parameters_by_path(Path=f"/farmhand/{FARM}/secrets/", WithDecryption=True)
    return {p["Name"].rsplit("/", 1)[1]: p for p in params["Parameters"]}


def test_secrets_live_in_ssm_and_only_in_the_files_that_need_them(local_farm):
    secrets = secrets_in_ssm(farm_env())
    assert {name: p["Type"] for name, p in secrets.items()} == dict.fromkeys(SECRETS, "SecureString")
    values = {name: p["Value"] for name, p in secrets.items()}
    assert all(len(v) >= 32 for v in values.values())
    # The env file on the web host is the one place the database password is written.
    env_file = run(
        "podman", "exec", "farmhand-ci-web-1", "stat", "-c", "%U:%G %a", "/etc/farmhand/bookshelf.env"
    )
    assert env_file.stdout.strip() == "root:app 640"
    password = values["database_password"]
    grep = run(
        "podman", "exec", "farmhand-ci-web-1", "grep", "-rlF", password, "/etc", "/srv", "/var/log", "/tmp"
    )
    # ...and PgBouncer's user list, which it needs to log in to PostgreSQL (0600, postgres only).
    assert sorted(grep.stdout.split()) == ["/etc/farmhand/bookshelf.env", "/etc/pgbouncer/userlist.txt"]
    userlist = run(
        "podman", "exec", "farmhand-ci-web-1", "stat", "-c", "%U:%G %a", "/etc/pgbouncer/userlist.txt"
    )
    assert userlist.stdout.strip() == "postgres:postgres 600"


def test_key_login_as_admin_with_sudo_still_works_after_hardening(local_farm):
    env = farm_env()
    ip = ec2_instances(env)["ci-web-1"]["ip"]
    base = [
        "ssh",
        "-o",
        "ControlPath=none",
        "-o",
        "BatchMode=yes",
        "-o",
        f"UserKnownHostsFile={ROOT}/.farm/local/ci/known_hosts",
    ]
    login = run(*base, "-i", env["ANSIBLE_PRIVATE_KEY_FILE"], f"admin@{ip}", "sudo -n id -u; id -un")
    assert login.returncode == 0, login.stderr
    assert login.stdout.split() == ["0", "admin"]
    refused = run(*base, "-o", "PreferredAuthentications=password", f"admin@{ip}", "true")
    assert refused.returncode != 0
    root = run(*base, "-i", env["ANSIBLE_PRIVATE_KEY_FILE"], f"root@{ip}", "true")
    assert root.returncode != 0


# -- the web tier: deploys, releases, rollback, restart, maintenance -------------------------------


def version_on_each_web_host() -> set[tuple[str, str]]:
    """(release, revision) that each web host serves, asked on the host itself."""
    found = set()
    for host in ("ci-web-1", "ci-web-2"):
        out = run("podman", "exec", f"farmhand-{host}", "curl", "-sf", "http://127.0.0.1/version").stdout
        data = json.loads(out)
        found.add((data["release"], data["revision"]))
    return found


def release_rows() -> list[dict]:
    return json.loads(farm("releases", "-f", FARM, "--json").stdout)["releases"]


def unicorn_masters() -> dict[str, str]:
    return {
        host: run(
            "podman", "exec", f"farmhand-{host}", "cat", "/srv/bookshelf/shared/pids/unicorn.pid"
        ).stdout
        for host in ("ci-web-1", "ci-web-2")
    }


def test_first_deploy_serves_the_app_through_the_load_balancer(local_farm, app_repo):
    deployed = farm("deploy", "-f", FARM, "--repo", app_repo["path"], "--ref", app_repo["v1"])
    assert "Released v1" in deployed.stdout
    assert f"The app answers at {app_url()}" in deployed.stdout
    assert version_on_each_web_host() == {("v1", app_repo["v1"])}
    status, _, body = get(f"{app_url()}/health")
    assert status == 200 and json.loads(body)["database"] == "ok"
    request = urllib.request.Request(
        f"{app_url()}/books",
        data=json.dumps({"book": {"title": "Deployed", "pages": 7}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
    assert any(b["title"] == "Deployed" for b in json.loads(get(f"{app_url()}/books")[2]))
    (row,) = release_rows()
    assert (row["version"], row["status"], row["sha"], row["current"]) == (
        1,
        "succeeded",
        app_repo["v1"],
        True,
    )


def test_deploy_under_load_migrates_once_and_drops_no_request(local_farm, app_repo):
    with Load(f"{app_url()}/books", connections=LOAD_CONNECTIONS, pace_ms=LOAD_PACE_MS) as load:
        deployed = farm("deploy", "-f", FARM, "--repo", app_repo["path"], "--ref", "main")
    result = load.result
    assert "Released v2" in deployed.stdout
    assert result.requests > 100, result.output
    assert (result.non_2xx, result.socket_errors) == (0, 0), result.output
    assert version_on_each_web_host() == {("v2", app_repo["v2"])}
    query = "select column_name from information_schema.columns where table_name = 'books' and column_name = 'author'"  # noqa: E501
    column = run(
        "podman", "exec", "farmhand-ci-db-worker-cron-1",
        "runuser", "-u", "postgres", "--", "psql", "-d", "bookshelf", "-Atc", query,
    )  # fmt: skip
    assert column.stdout.strip() == "author", column.stderr
    # The release phase (the migrations: the sample app has no Procfile) ran once, on one host,
    # before the switch.
    migrate = deployed.stdout.split("TASK [Run the release command]", 1)[1].split("PLAY [", 1)[0]
    assert migrate.count("changed: [") == 1, migrate


def test_deploying_the_running_commit_again_is_a_noop(local_farm, app_repo):
    again = farm("deploy", "-f", FARM, "--repo", app_repo["path"], "--ref", app_repo["v2"])
    assert "already runs" in again.stdout and "nothing to deploy" in again.stdout
    assert [r["version"] for r in release_rows()] == [2, 1]


def test_a_failed_build_leaves_the_running_release_untouched(local_farm, app_repo):
    failed = farm("deploy", "-f", FARM, "--repo", app_repo["path"], "--ref", "broken", ok=False)
    assert failed.returncode == 1
    error_lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1
    assert error_lines[0].startswith("farm: error: v3 failed on ci-")
    assert "(Build the release)" in error_lines[0]
    assert version_on_each_web_host() == {("v2", app_repo["v2"])}
    current = run("podman", "exec", "farmhand-ci-web-1", "readlink", "/srv/bookshelf/current").stdout
    assert current.strip().endswith(f"/2-{app_repo['v2'][:7]}")
    # `farm ps` says which release each app host's `current` points at (read on the host; a host
    # too busy to answer one probe in time is asked again).
    expected = dict.fromkeys(["ci-web-1", "ci-web-2", "ci-db-worker-cron-1"], "v2")
    seen: dict[str, str] = {}

    def releases_on_hosts() -> bool:
        probed = json.loads(farm("ps", "-f", FARM, "--json").stdout)["processes"]["by_host"]
        seen.update({p["host"]: p.get("release") or p.get("error", "") for p in probed})
        return seen == expected

    wait_for(releases_on_hosts, 120, lambda: f"farm ps says {seen}", every=5)
    rows = release_rows()
    assert (rows[0]["version"], rows[0]["status"]) == (3, "failed")
    assert [r["version"] for r in rows if r["current"]] == [2]


def test_a_failed_migration_leaves_the_running_release_untouched(local_farm, app_repo):
    failed = farm("deploy", "-f", FARM, "--repo", app_repo["path"], "--ref", "badmigration", ok=False)
    assert failed.returncode == 1
    error_lines = [line for line in failed.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1 and error_lines[0].startswith("farm: error: v4 failed on ci-web-")
    assert "(Run the release command)" in error_lines[0]
    assert version_on_each_web_host() == {("v2", app_repo["v2"])}
    rows = release_rows()
    assert (rows[0]["version"], rows[0]["status"]) == (4, "failed")
    assert [r["version"] for r in rows if r["current"]] == [2]


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("deploy", "--ref", "no-such-ref"), "unknown ref 'no-such-ref'"),
        (("deploy", "--ref", "--upload-pack=touch /tmp/x"), "invalid ref"),
        (("rollback", "v99"), "no release v99"),
        (("rollback", "v4"), "v4 failed: roll back to a release that succeeded"),
        (("rollback", "v2"), "v2 is the current release"),
        (("rollback", "latest"), "invalid release 'latest'"),
        (("restart", "-r", "db"), "role 'db' has no processes to restart"),
    ],
)
def test_bad_deploys_and_rollbacks_are_refused_and_change_nothing(local_farm, app_repo, args, expect):
    before = release_rows()
    masters = unicorn_masters()
    repo = ("--repo", app_repo["path"]) if args[0] != "restart" else ()
    proc = farm(args[0], "-f", FARM, *repo, *args[1:], ok=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and expect in lines[0], proc.stderr
    assert release_rows() == before
    assert unicorn_masters() == masters
    assert version_on_each_web_host() == {("v2", app_repo["v2"])}


def test_rollback_returns_to_v1_code_as_a_new_release_without_migrations(local_farm, app_repo):
    rolled = farm("rollback", "-f", FARM, "v1", "--repo", app_repo["path"])
    assert "Rollback to v1" in rolled.stdout and "Released v5" in rolled.stdout
    assert "migrated" not in rolled.stdout
    assert version_on_each_web_host() == {("v5", app_repo["v1"])}
    rows = release_rows()
    assert (rows[0]["version"], rows[0]["kind"], rows[0]["description"]) == (5, "rollback", "Rollback to v1")
    assert rows[0]["current"] is True


# -- config vars --------------------------------------------------------------------------------

TRICKY = 'it\'s "quoted" $HOME `id` back\\slash a=b\nsecond line é ✓ {{ 7 * 7 }} {% raw %}'
CONFIG = {"FARMHAND_ENV_CHECK_KEYS": "GREETING,TRICKY", "GREETING": "hello from ssm", "TRICKY": TRICKY}


def env_check(host: str, key: str) -> tuple[int, Any]:
    """What the app's /env-check answers for KEY on one web host (status, value)."""
    proc = run(
        "podman", "exec", f"farmhand-{host}", "curl", "-s", "-w", "\n%{http_code}",
        f"http://127.0.0.1/env-check?key={key}",
    )  # fmt: skip
    body, _, status = proc.stdout.rpartition("\n")
    return int(status), json.loads(body).get("value")


def app_env_value(key: str) -> str | None:
    """KEY as `app-env` (migrations, cron jobs, one-off commands) has it on the worker/cron host."""
    proc = run("podman", "exec", "farmhand-ci-db-worker-cron-1", "/usr/local/bin/app-env", "printenv", key)
    return proc.stdout.removesuffix("\n") if proc.returncode == 0 else None


def test_config_set_reaches_every_app_host_as_one_release(local_farm):
    masters = unicorn_masters()
    with Load(f"{app_url()}/books", connections=LOAD_CONNECTIONS, pace_ms=LOAD_PACE_MS) as load:
        done = farm("config:set", "-f", FARM, *(f"{k}={v}" for k, v in CONFIG.items()))
    assert "Released v6 to ci: Set FARMHAND_ENV_CHECK_KEYS, GREETING, TRICKY config vars" in done.stdout
    assert "hello from ssm" not in done.stdout + done.stderr
    assert load.result.requests > 100
    assert (load.result.non_2xx, load.result.socket_errors) == (0, 0), load.result.output
    for host in ("ci-web-1", "ci-web-2"):
        assert env_check(host, "TRICKY") == (200, TRICKY)
        assert env_check(host, "GREETING") == (200, "hello from ssm")
    assert app_env_value("TRICKY") == TRICKY
    after = unicorn_masters()
    assert all(after[h] != masters[h] for h in masters)
    row = release_rows()[0]
    assert (row["version"], row["kind"], row["status"]) == (6, "config", "succeeded")
    assert farm("config:get", "-f", FARM, "TRICKY").stdout == TRICKY + "\n"


def test_config_values_never_appear_in_ansible_output_or_other_files(local_farm):
    env = farm_env()
    verbose = run("ansible-playbook", "playbooks/config.yml", "--limit", f"farm_{FARM}", "-vvv", env=env)
    assert verbose.returncode == 0, verbose.stdout[-3000:]
    assert len(verbose.stdout) > 100_000
    for secret in ("hello from ssm", "second line é ✓"):
        assert secret not in verbose.stdout + verbose.stderr
        for host in ("ci-web-1", "ci-db-worker-cron-1"):
            places = ("/etc", "/srv", "/var/log", "/tmp")
            grep = run("podman", "exec", f"farmhand-{host}", "grep", "-rlF", secret, *places)
            assert grep.stdout.split() == ["/etc/farmhand/bookshelf.env"], host
        local = run("grep", "-rlF", secret, str(ROOT / ".farm"), "--exclude-dir=image")
        assert local.stdout == "", local.stdout


def test_rollback_restores_the_config_of_the_release_it_returns_to(local_farm, app_repo):
    rolled = farm("rollback", "-f", FARM, "--repo", app_repo["path"])
    assert "Rollback to v5" in rolled.stdout and "Released v7" in rolled.stdout
    # v5 ran with no config vars: they are gone from SSM, the env file and the processes.
    params = aws("ssm", farm_env()).get_parameters_by_path(Path=f"/farmhand/{FARM}/config/")["Parameters"]
    assert params == []
    for host in ("ci-web-1", "ci-web-2"):
        assert env_check(host, "GREETING")[0] == 404  # the allow-list var went too
    assert app_env_value("GREETING") is None
    assert version_on_each_web_host() == {("v7", app_repo["v1"])}
    rows = release_rows()
    assert rows[0]["config_version"] == next(r for r in rows if r["version"] == 5)["config_version"]


# -- the app's Procfile -----------------------------------------------------------------------

WORKER_HOST = "farmhand-ci-db-worker-cron-1"


def running_units(pattern: str) -> list[str]:
    """The units matching PATTERN that run on the worker host, generations and instances dropped."""
    proc = run(
        "podman", "exec", WORKER_HOST,
        "systemctl", "list-units", "--plain", "--no-legend", "--state=running", pattern,
    )  # fmt: skip
    return sorted(line.split()[0].split("@")[0] for line in proc.stdout.splitlines() if line.strip())


def test_the_procfile_says_what_runs_and_a_rollback_takes_it_back(deployed_app):
    app_repo = deployed_app
    running = release_rows()[0]  # in the whole module: v7, v1's code (run alone: v1)
    with Load(f"{app_url()}/books", connections=LOAD_CONNECTIONS, pace_ms=LOAD_PACE_MS) as load:
        deployed = farm("deploy", "-f", FARM, "--repo", app_repo["path"], "--ref", "procfile")
    assert f"Released v{running['version'] + 1}" in deployed.stdout
    assert load.result.requests > 100
    assert (load.result.non_2xx, load.result.socket_errors) == (0, 0), load.result.output
    # The release phase ran the Procfile's release command, once, on one web host.
    marked = [
        host
        for host in ("ci-web-1", "ci-web-2")
        if run(
            "podman", "exec", f"farmhand-{host}", "test", "-e", "/srv/bookshelf/shared/tmp/release-phase-ran"
        ).returncode
        == 0
    ]
    assert len(marked) == 1, marked
    # The worker host runs the Procfile's types: its Sidekiq type under sidekiq_worker (the sample's
    # own processes, books and default, are gone), its clock under app_processes with the env file.
    assert running_units("sidekiq-bookshelf-*") == ["sidekiq-bookshelf-worker"]
    assert running_units("bookshelf-*@*.service") == ["bookshelf-clock"]
    # Its Sidekiq runs with the app's config file, read as Sidekiq reads it: queues and threads from
    # the file, the line's -t over the file's production timeout.
    started = run(
        "podman", "exec", WORKER_HOST,
        "sh", "-c", "systemctl show -p ExecStart --value 'sidekiq-bookshelf-worker@*'",
    ).stdout  # fmt: skip
    assert "-C config/sidekiq_workers.yml -g bookshelf-worker -c 3 -t 60 -q books -q default " in started
    ticks = run(
        "podman", "exec", WORKER_HOST, "journalctl", "-t", "bookshelf-clock", "-o", "cat", "--no-pager"
    )
    assert "clock tick production" in ticks.stdout
    worker = json.loads(farm("ps", "-f", FARM, "--json").stdout)["processes"]["by_type"]["worker"]
    assert (worker["sidekiq_processes"], worker["services"]) == (1, {"clock": 1})
    # Back to the release without a Procfile: the clock stops and its units go, the sample's
    # Sidekiq processes come back.
    rolled = farm("rollback", "-f", FARM, "--repo", app_repo["path"])
    assert f"Rollback to v{running['version']}" in rolled.stdout
    assert f"Released v{running['version'] + 2}" in rolled.stdout
    assert running_units("bookshelf-*@*.service") == []
    assert running_units("sidekiq-bookshelf-*") == ["sidekiq-bookshelf-books", "sidekiq-bookshelf-default"]
    units = run("podman", "exec", WORKER_HOST, "ls", "/etc/systemd/system").stdout.split()
    left = [u for u in units if u.startswith(("bookshelf-", "sidekiq-bookshelf-worker")) and "@" in u]
    assert left == [], units  # bookshelf-processes.target stays: it wants no instance
    assert (
        "clock stopping"
        in run(
            "podman", "exec", WORKER_HOST, "journalctl", "-t", "bookshelf-clock", "-o", "cat", "--no-pager"
        ).stdout
    )
    assert version_on_each_web_host() == {(f"v{running['version'] + 2}", running["sha"])}


def test_restart_under_load_drops_no_request(local_farm):
    before = unicorn_masters()
    with Load(f"{app_url()}/books", connections=LOAD_CONNECTIONS, pace_ms=LOAD_PACE_MS) as load:
        restarted = farm("restart", "-f", FARM)
    assert "Restarted ci-web-1, ci-web-2" in restarted.stdout
    assert load.result.requests > 100
    assert (load.result.non_2xx, load.result.socket_errors) == (0, 0), load.result.output
    after = unicorn_masters()
    assert all(after[h] != before[h] for h in before)


def test_maintenance_mode_on_and_off(local_farm):
    masters = unicorn_masters()
    assert farm("maintenance", "-f", FARM).stdout.strip() == "off"
    farm("maintenance:on", "-f", FARM)
    assert farm("maintenance", "-f", FARM).stdout.strip() == "on"
    status, headers, body = get(f"{app_url()}/books")
    assert status == 503
    assert headers.get("Retry-After") == "600"
    assert "maintenance" in body.lower()
    assert get(f"{app_url()}/health")[0] == 200  # the load balancer keeps the hosts in
    farm("maintenance:off", "-f", FARM)
    assert farm("maintenance", "-f", FARM).stdout.strip() == "off"
    assert get(f"{app_url()}/books")[0] == 200
    assert unicorn_masters() == masters


# -- PostgreSQL: followers, cutovers, psql ------------------------------------------------------


class Writer:
    """Creates books through the load balancer until stopped: what the app committed, and how long
    each request took (a cutover shows as one slow request, never as an error). One request at a
    time, WRITE_PACE_S apart: a steady stream, not a flood that would starve the shared machine."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ids: list[int] = []
        self.errors: list[str] = []
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            body = json.dumps({"book": {"title": f"cutover {n}", "pages": n}}).encode()
            request = urllib.request.Request(
                f"{self.url}/books", data=body, headers={"Content-Type": "application/json"}
            )
            started = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=90) as response:
                    self.ids.append(json.loads(response.read())["id"])
            except (urllib.error.URLError, OSError, ValueError) as exc:
                self.errors.append(repr(exc)[:200])
            self.latencies.append(time.monotonic() - started)
            self._stop.wait(WRITE_PACE_S)

    def __enter__(self) -> Writer:
        self._thread.start()
        time.sleep(2)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(2)
        self._stop.set()
        self._thread.join(timeout=120)


def db_hosts_now() -> str:
    """What the db containers are doing (for a failure message): processes and sessions."""
    lines = []
    for container in ("farmhand-ci-db-worker-cron-1", "farmhand-ci-db-follower-1"):
        procs = run("podman", "exec", container, "ps", "-eo", "pid,etime,stat,args", timeout=60)
        sessions = run(
            "podman",
            "exec",
            container,
            "runuser",
            "-u",
            "postgres",
            "--",
            "psql",
            "-XAtc",
            "select pid, backend_type, state, wait_event_type, wait_event, left(query, 80) "
            "from pg_stat_activity; "
            "select 'sender', application_name, state, sync_state, sent_lsn, flush_lsn, replay_lsn "
            "from pg_stat_replication; "
            "select 'receiver', status, flushed_lsn, latest_end_lsn from pg_stat_wal_receiver; "
            "select 'replay', pg_is_in_recovery(), pg_is_in_recovery() and pg_is_wal_replay_paused()",
            timeout=60,
        )
        lines += [f"== {container}", procs.stdout[-3000:], sessions.stdout + sessions.stderr]
    return "\n".join(lines)


def psql(sql: str, *args: str) -> str:
    command = [FARM_BIN, "psql", "-f", FARM, *args]
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,  # its ssh with it, when it is stopped
    ) as proc:
        try:
            out, err = proc.communicate(sql, timeout=120)
        except subprocess.TimeoutExpired:
            # Where it hangs, before it is stopped: the controller's side (farm, ssh) and the hosts'.
            here = run("ps", "-eo", "pid,ppid,etime,stat,args", timeout=60).stdout
            ours = "\n".join(line for line in here.splitlines() if "psql" in line or "ssh" in line)
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=60)
            said = f"farm psql -f {FARM} {' '.join(args)} hung for 120 s; it said {(out + err)[-3000:]!r}"
            hosts = db_hosts_now()
            pytest.fail(
                f"{said}\nthe controller's psql and ssh processes then:\n{ours}\nthe db hosts then:\n{hosts}"
            )
    assert proc.returncode == 0, out + err
    return out


def books_present(ids: list[int]) -> int:
    """How many of these books the primary has (psql's count, read from its aligned output)."""
    out = psql(f"select count(*) from books where id in ({','.join(map(str, ids))});")
    return int(next(line for line in out.splitlines() if line.strip().isdigit()))


def role_tags() -> dict[str, str]:
    return {name: host["tags"]["role"] for name, host in ec2_instances(farm_env()).items()}


def pg_state() -> dict[str, dict]:
    return {h["name"]: h for h in json.loads(farm("pg:info", "-f", FARM, "--json").stdout)["hosts"]}


def test_the_follower_streams_synchronously_and_serves_reads(local_farm):
    state = pg_state()
    primary, follower = state["ci-db-worker-cron-1"], state["ci-db-follower-1"]
    assert (primary["tagged"], primary["standby"]) == ("db", False)
    assert (follower["tagged"], follower["standby"], follower["receiver"]) == (
        "db_follower",
        True,
        "streaming",
    )
    (replica,) = primary["replication"]
    assert (replica["name"], replica["state"], replica["sync_state"]) == (
        "ci_db_follower_1",
        "streaming",
        "quorum",
    )
    psql(
        "insert into books (title, pages, created_at, updated_at) values ('on the primary', 1, now(), now());"
    )
    assert "on the primary" in psql("select title from books where title = 'on the primary';\n", "--follower")
    table = farm("pg:info", "-f", FARM).stdout
    assert "ci-db-follower-1" in table and "quorum" in table


def test_psql_on_a_terminal_is_interactive_as_the_apps_user(local_farm):
    # pexpect gives `farm psql` a terminal (24x80), as an operator's shell does: ssh -t, psql's prompt.
    session = pexpect.spawn(FARM_BIN, ["psql", "-f", FARM], cwd=str(ROOT), encoding="utf-8", timeout=60)
    try:
        # Before its first output `farm psql` reads EC2 and the inventory afresh (ansible-inventory
        # --flush-cache) and opens SSH: in a clean run with every stream busy that took over 60 s.
        session.expect_exact("bookshelf=> ", timeout=180)  # the prompt of a non-superuser
        session.sendline("select current_user, 40 + 2 as answer;")
        session.expect(r"bookshelf\s+\|\s+42")
        session.expect_exact("bookshelf=> ")
        session.sendline("\\q")
        session.expect(pexpect.EOF)
    finally:
        session.close()
    assert session.exitstatus == 0, session.before


def test_a_lagging_follower_is_not_promoted_and_nothing_changes(local_farm):
    tags = role_tags()
    pause = "select pg_wal_replay_pause();"
    run("podman", "exec", "farmhand-ci-db-follower-1", "runuser", "-u", "postgres", "--", "psql", "-c", pause)
    try:
        # Committed without waiting for the follower: its replay is paused, and were its WAL
        # receiver to reconnect meanwhile (a paused startup process does not restart it), a
        # commit waiting for its confirmation would wait until the replay resumed.
        psql(
            "set synchronous_commit to local;\n"
            "insert into books (title, pages, created_at, updated_at) select 'lag', g, now(), now() "
            "from generate_series(1, 2000) g;\n"
        )
        refused = farm("pg:promote", "-f", FARM, "--max-lag", "1000", ok=False)
    finally:
        resume = "select pg_wal_replay_resume();"
        run(
            "podman",
            "exec",
            "farmhand-ci-db-follower-1",
            "runuser",
            "-u",
            "postgres",
            "--",
            "psql",
            "-c",
            resume,
        )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert "ci-db-follower-1 lags" in line and "more than --max-lag 1000" in line
    unknown = farm("pg:promote", "-f", FARM, "ci-web-1", ok=False)
    assert unknown.returncode == 2 and "unknown follower 'ci-web-1'" in unknown.stderr
    assert role_tags() == tags
    assert pg_state()["ci-db-worker-cron-1"]["standby"] is False


def test_planned_promotion_under_writes_loses_nothing(local_farm):
    with Writer(app_url()) as writer:
        promoted = farm("pg:promote", "-f", FARM, "--reseed")
    paused = promoted.stdout.split("Writes were paused for ", 1)[1].split()[0]
    print(
        f"\nplanned promotion: writes paused {paused} s (playbook), slowest request "
        f"{max(writer.latencies):.3f} s, {len(writer.ids)} books written"
    )
    assert writer.errors == []
    assert len(writer.ids) > 50
    assert books_present(writer.ids) == len(writer.ids)
    tags = role_tags()
    assert tags["ci-db-follower-1"] == "db"
    assert tags["ci-db-worker-cron-1"] == "db_follower,worker,cron"
    state = pg_state()
    assert state["ci-db-follower-1"]["standby"] is False
    assert state["ci-db-worker-cron-1"]["receiver"] == "streaming"  # re-seeded as a follower (--reseed)


def test_forced_promotion_after_kill_9_loses_no_committed_write(local_farm):
    with Writer(app_url()) as writer:
        killed = run("podman", "exec", "farmhand-ci-db-follower-1", "pkill", "-9", "-x", "postgres")
        assert killed.returncode == 0
        promoted = farm("pg:promote", "-f", FARM, "--force")
    assert "ci-db-worker-cron-1 is the primary of ci" in promoted.stdout
    print(
        f"\nforced promotion: {len(writer.ids)} books committed, {len(writer.errors)} requests failed, "
        f"slowest {max(writer.latencies):.3f} s"
    )
    assert role_tags()["ci-db-follower-1"] == "db_follower"
    # The former primary follows again before anything else is asserted: the farm's later tests
    # need their follower whatever this one finds.
    followed = farm("pg:follow", "-f", FARM, "ci-db-follower-1")
    assert "ci-db-follower-1 follows the primary" in followed.stdout
    assert len(writer.ids) > 20
    assert books_present(writer.ids) == len(writer.ids)  # every acknowledged write survived
    state = pg_state()
    assert state["ci-db-follower-1"]["receiver"] == "streaming"
    assert state["ci-db-worker-cron-1"]["replication"][0]["sync_state"] == "quorum"


def test_converge_after_deploys_changes_nothing_and_prints_no_secret_at_vvv(local_farm, app_repo):
    # The farm's second converge, after deploys, config changes, rollbacks and two promotions: run
    # as a user runs Ansible directly, at -vvv. It changes nothing (every role is idempotent, and
    # nothing the other commands did is undone), and no secret is in all it prints.
    # The farmhand_results callback enabled, as in the CLI's runs: it records the counts, quietly.
    with runner.recording(ROOT, farm_env()) as (env, results):
        again = run("ansible-playbook", "playbooks/site.yml", "--limit", f"farm_{FARM}", "-vvv", env=env)
        recorded = results.read_text()
        recap = runner.read_results(results, again.returncode).recap
    assert again.returncode == 0, again.stdout[-3000:]
    assert sorted(recap) == HOSTS
    assert {h: c["changed"] for h, c in recap.items()} == NO_CHANGES
    assert len(again.stdout) > 100_000  # -vvv really is verbose
    secrets = secrets_in_ssm(farm_env())
    assert sorted(secrets) == SECRETS
    for name, secret in secrets.items():
        assert secret["Value"] not in again.stdout + again.stderr + recorded, name
    assert version_on_each_web_host() == {("v9", app_repo["v1"])}


@pytest.mark.farm_last
def test_down_removes_everything(local_farm):
    env = farm_env()
    down = farm("local", "down", "-f", FARM)
    assert "Local farm ci is gone" in down.stdout
    assert farm_containers() == {}
    assert run("podman", "network", "exists", f"farmhand-{FARM}").returncode != 0
    assert not (ROOT / ".farm/local" / FARM).exists()
    others = [d for d in (ROOT / ".farm/local").glob("*") if d.is_dir()]
    if others:  # another local farm of this checkout still uses moto
        assert ec2_instances(env) == {}
    else:  # nothing left running
        pid = int((ROOT / ".farm/moto/pid").read_text()) if (ROOT / ".farm/moto/pid").exists() else None
        assert pid is None or not Path(f"/proc/{pid}").exists()
    again = farm("ps", "-f", FARM, ok=False)
    assert again.returncode == 2
