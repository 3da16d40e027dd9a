"""Whole-farm test: a small local farm found by the aws_ec2 inventory and converged over SSH.

Needs Podman, debootstrap (for the image) and moto: `make test` installs them, and this test
fails (it is never skipped) where they are missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from farmhand.inventory import untag
from farmhand.runner import parse_recap

pytestmark = pytest.mark.farm

ROOT = Path(__file__).resolve().parents[1]
FARM = "ci"
FARM_BIN = str(Path(sys.executable).with_name("farm"))


def run(
    *args: str, env: dict[str, str] | None = None, timeout: int = 1800
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=ROOT, env=env or os.environ.copy(), capture_output=True, text=True, timeout=timeout
    )


def farm(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = run(FARM_BIN, *args)
    if ok:
        assert proc.returncode == 0, (
            f"farm {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def farm_env() -> dict[str, str]:
    exported = farm("local", "env", "-f", FARM).stdout
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_SESSION_TOKEN")}
    for line in exported.splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = subprocess.run(
                ["sh", "-c", f"printf %s {value}"], capture_output=True, text=True
            ).stdout
    return env


def podman_json(*args: str) -> list[dict]:
    return json.loads(run("podman", *args).stdout or "[]")


def farm_containers() -> dict[str, dict]:
    found = podman_json("ps", "-a", "--format", "json", "--filter", f"label=farmhand.farm={FARM}")
    return {c["Labels"]["farmhand.host"]: c for c in found}


def ec2_instances(env: dict[str, str]) -> dict[str, dict]:
    ec2 = boto3.client(
        "ec2",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    found = {}
    for res in ec2.describe_instances(Filters=[{"Name": "tag:farm", "Values": [FARM]}])["Reservations"]:
        for inst in res["Instances"]:
            if inst["State"]["Name"] in ("pending", "running"):
                tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
                found[tags["Name"]] = {"id": inst["InstanceId"], "ip": inst["PrivateIpAddress"], "tags": tags}
    return found


@pytest.fixture(scope="module")
def local_farm():
    farm("local", "down", "-f", FARM)  # leftovers of an interrupted run
    first = farm("local", "up", "-f", FARM)
    yield first
    farm("local", "down", "-f", FARM, ok=False)


def test_up_creates_the_shape_and_registers_it_in_moto(local_farm):
    assert "Local farm ci is up: 2 hosts" in local_farm.stdout
    containers = farm_containers()
    assert sorted(containers) == ["ci-web-1", "ci-worker-cron-1"]
    assert all(c["State"] == "running" for c in containers.values())
    instances = ec2_instances(farm_env())
    assert sorted(instances) == ["ci-web-1", "ci-worker-cron-1"]
    assert instances["ci-worker-cron-1"]["tags"]["role"] == "worker,cron"
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
    assert len(ids) == 2 and all(len(i) == 32 for i in ids)
    assert len(keys) == 2


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
    farm_hosts = set(inventory["farm_ci"]["hosts"])
    assert farm_hosts == {"ci-web-1", "ci-worker-cron-1"}

    def in_farm(group: str) -> list[str]:  # other local farms of this checkout share moto
        return sorted(farm_hosts & set(inventory.get(group, {}).get("hosts", [])))

    assert in_farm("role_web") == ["ci-web-1"]
    assert in_farm("role_worker") == ["ci-worker-cron-1"]
    assert in_farm("role_cron") == ["ci-worker-cron-1"]
    assert in_farm("role_db") == []
    instances = ec2_instances(env)
    hostvars = inventory["_meta"]["hostvars"]
    assert hostvars["ci-web-1"]["ansible_host"] == instances["ci-web-1"]["ip"]


def test_ps_lists_hosts_by_role(local_farm):
    listing = json.loads(farm("ps", "-f", FARM, "--json").stdout)
    assert listing["local"] is True
    roles = {h["name"]: h["roles"] for h in listing["hosts"]}
    assert roles == {"ci-web-1": ["web"], "ci-worker-cron-1": ["worker", "cron"]}
    assert all(h["state"] == "running" and h["instance_id"].startswith("i-") for h in listing["hosts"])


def test_converge_then_converge_again_changes_nothing(local_farm):
    first = farm("converge", "-f", FARM)
    recap = parse_recap(first.stdout.splitlines())
    assert sorted(recap) == ["ci-web-1", "ci-worker-cron-1"]
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in recap.values())
    second = farm("converge", "-f", FARM)
    recap = parse_recap(second.stdout.splitlines())
    assert sorted(recap) == ["ci-web-1", "ci-worker-cron-1"]
    assert {h: c["changed"] for h, c in recap.items()} == {"ci-web-1": 0, "ci-worker-cron-1": 0}
    assert "2 hosts, 0 changes" in second.stdout


def test_check_mode_reports_no_drift_on_a_converged_farm(local_farm):
    check = farm("converge", "-f", FARM, "--check", "--diff")
    recap = parse_recap(check.stdout.splitlines())
    assert {h: c["changed"] for h, c in recap.items()} == {"ci-web-1": 0, "ci-worker-cron-1": 0}


def test_converge_limited_to_a_role(local_farm):
    web = farm("converge", "-f", FARM, "--role", "cron")
    assert sorted(parse_recap(web.stdout.splitlines())) == ["ci-worker-cron-1"]


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


def test_down_removes_everything(local_farm):
    env = farm_env()
    down = farm("local", "down", "-f", FARM)
    assert "Local farm ci is gone" in down.stdout
    assert farm_containers() == {}
    assert run("podman", "network", "exists", f"farmhand-{FARM}").returncode != 0
    assert not (ROOT / ".farm/local" / FARM).exists()
    others = list((ROOT / ".farm/local").glob("*/farm.json"))
    if others:  # another local farm of this checkout still uses moto
        assert ec2_instances(env) == {}
    else:  # nothing left running
        pid = int((ROOT / ".farm/moto/pid").read_text()) if (ROOT / ".farm/moto/pid").exists() else None
        assert pid is None or not Path(f"/proc/{pid}").exists()
    again = farm("ps", "-f", FARM, ok=False)
    assert again.returncode == 2
