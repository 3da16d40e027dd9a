"""`farm local up`, `down`, `env`, with a stand-in for podman (no container is made or removed): what
`down` removes and leaves, the exports `env` prints, and `up` stopping before it changes anything."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ANSIBLE_BIN, assert_ok, assert_one_line_error, calls, farm, make_project, with_fake_tools

# Podman as the fake plays it: `ps` lists FAKE_PODMAN_PS (JSON), `network exists` finds the network
# when FAKE_PODMAN_NETWORK is set, anything else succeeds; every call is logged.
PODMAN = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_PODMAN_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[0] == "ps":
    print(os.environ.get("FAKE_PODMAN_PS", "[]"))
elif args[:2] == ["network", "exists"]:
    sys.exit(0 if os.environ.get("FAKE_PODMAN_NETWORK") else 1)
"""

WEB = {"name": "demo-web-1", "roles": ["web"], "ip": "10.88.0.10", "container": "farmhand-demo-web-1"}


@pytest.fixture
def local_env(aws_env: dict[str, str], tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    """A project of its own (its `.farm/` holds the local farms' state) and a fake podman on PATH;
    the project and podman's call log."""
    project = make_project(tmp_path / "project", {})
    log = tmp_path / "podman.log"
    env = with_fake_tools(aws_env, tmp_path, {"podman": PODMAN}, "fake-podman-bin")
    return {**env, "FARMHAND_HOME": str(project), "FAKE_PODMAN_LOG": str(log)}, project, log


def write_state(project: Path, farm_name: str, *hosts: dict) -> Path:
    """A local farm's farm.json, as `farm local up` leaves it."""
    state = project / ".farm" / "local" / farm_name
    state.mkdir(parents=True)
    (state / "farm.json").write_text(json.dumps({"hosts": list(hosts), "shape": {"web": 1}}))
    return state


@pytest.fixture
def running_moto(moto_endpoint: str) -> Iterator[tuple[int, int]]:
    """A live process to stand as the local farm's moto (its pid), and the test moto's port."""
    standin = subprocess.Popen(["sleep", "300"])
    try:
        yield standin.pid, int(moto_endpoint.rsplit(":", 1)[1])
    finally:
        standin.kill()
        standin.wait()


def test_down_with_nothing_there_removes_nothing(local_env):
    env, project, log = local_env
    proc = farm("local", "down", "-f", "demo", env=env)
    assert_ok(proc)
    assert "no local farm 'demo' here: nothing to remove" in proc.stdout
    assert ["ps", "-a", "--format", "json", "--filter", "label=farmhand.farm=demo"] in calls(log)
    assert all(call[0] != "rm" and call[:2] != ["network", "rm"] for call in calls(log)), calls(log)
    assert not list((project / ".farm").iterdir())


def test_down_removes_the_farms_containers_network_and_state_and_no_other_farms(local_env):
    env, project, log = local_env
    state = write_state(project, "demo", WEB)
    other = write_state(project, "other", {**WEB, "name": "other-web-1", "container": "farmhand-other-web-1"})
    facts = project / ".farm" / "cache" / "facts"
    facts.mkdir(parents=True)
    (facts / "demo-web-1").write_text("{}")
    (facts / "other-web-1").write_text("{}")
    listed = [{"Names": ["farmhand-demo-web-1"], "Labels": {"farmhand.host": "demo-web-1"}}]
    env = {**env, "FAKE_PODMAN_PS": json.dumps(listed), "FAKE_PODMAN_NETWORK": "1"}

    proc = farm("local", "down", "-f", "demo", env=env)

    assert_ok(proc)
    assert "Removing demo-web-1" in proc.stdout
    assert "Local farm demo is gone" in proc.stdout
    removals = [call for call in calls(log) if call[0] == "rm" or call[:2] == ["network", "rm"]]
    assert removals == [
        ["rm", "--force", "--time", "10", "farmhand-demo-web-1"],
        ["network", "rm", "farmhand-demo"],
    ]
    assert not state.exists() and not (facts / "demo-web-1").exists()
    assert (other / "farm.json").exists() and (facts / "other-web-1").exists()


def record_moto(project: Path, pid: int, port: int) -> Path:
    """`.farm/moto/` as `farm local up` leaves it: the server's pid and port."""
    moto = project / ".farm" / "moto"
    moto.mkdir(parents=True, exist_ok=True)
    (moto / "pid").write_text(str(pid))
    (moto / "port").write_text(str(port))
    return moto


def alive(pid: int) -> bool:
    return subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout[
        :1
    ] not in ("", "Z")


def test_down_stops_moto_with_the_last_farm_only(local_env, running_moto):
    env, project, _ = local_env
    pid, port = running_moto
    moto = record_moto(project, pid, port)

    # A farm that is not here (a test run's leftover check) changes nothing, even with no farm
    # recorded yet: another farm's `up` may have just started moto for itself.
    nothing = farm("local", "down", "-f", "absent", env=env)
    assert_ok(nothing)
    assert "nothing to remove" in nothing.stdout
    assert "Stopped moto" not in nothing.stdout and alive(pid)

    write_state(project, "demo", WEB)
    write_state(project, "other", {**WEB, "name": "other-web-1", "container": "farmhand-other-web-1"})

    first = farm("local", "down", "-f", "demo", env=env)
    assert_ok(first)
    assert "Stopped moto" not in first.stdout and alive(pid)
    assert (moto / "pid").exists()

    last = farm("local", "down", "-f", "other", env=env)
    assert_ok(last)
    assert "Stopped moto (no local farm left)" in last.stdout
    assert not alive(pid) and not (moto / "pid").exists()


def test_env_prints_exports_that_point_at_the_local_farms_moto(local_env, running_moto):
    env, project, _ = local_env
    write_state(project, "demo", WEB)
    pid, port = running_moto
    (project / ".farm" / "moto").mkdir()
    (project / ".farm" / "moto" / "pid").write_text(str(pid))
    (project / ".farm" / "moto" / "port").write_text(str(port))

    proc = farm("local", "env", "-f", "demo", env=env)

    assert_ok(proc)
    lines = proc.stdout.splitlines()
    assert lines[0] == "unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN"
    exports = dict(line.removeprefix("export ").split("=", 1) for line in lines[1:])
    assert exports["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
    assert exports["AWS_ACCESS_KEY_ID"] == exports["AWS_SECRET_ACCESS_KEY"] == "farmhand-local"
    assert exports["ANSIBLE_PRIVATE_KEY_FILE"] == str(project / ".farm" / "local" / "demo" / "id_ed25519")
    assert exports["FARMHAND_FARM"] == "demo"
    # Each farm's inventory cache is its own: another farm's `up` flushing its cache leaves it be.
    assert exports["ANSIBLE_INVENTORY_CACHE_CONNECTION"] == str(
        project / ".farm" / "cache" / "inventory-local" / "demo"
    )
    # What the shell gets from eval: the same values, the developer's AWS profile gone.
    shell = subprocess.run(
        [
            "bash",
            "-c",
            'eval "$1"; echo "$FARMHAND_FARM $AWS_ENDPOINT_URL ${AWS_PROFILE-unset}"',
            "_",
            proc.stdout,
        ],
        env={**env, "AWS_PROFILE": "prod"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout == f"demo http://127.0.0.1:{port} unset\n"


def test_env_of_a_local_farm_whose_moto_is_down_says_to_bring_it_up(local_env):
    env, project, _ = local_env
    write_state(project, "demo", WEB)
    proc = farm("local", "env", "-f", "demo", env=env)
    assert_one_line_error(
        proc, "the local farm 'demo' is down (moto is not running): run `farm local up -f demo`"
    )
    assert proc.stdout == ""


def test_up_without_podman_stops_before_changing_anything(local_env):
    env, project, _ = local_env
    proc = farm("local", "up", "-f", "demo", env={**env, "PATH": str(ANSIBLE_BIN)})
    assert_one_line_error(proc, "podman is not installed: run `make deps` (as root) to install it")
    assert not (project / ".farm" / "local").exists()
    assert not (project / ".farm" / "moto").exists()


def test_flushing_a_farms_inventory_cache_keeps_its_directory_and_other_farms_caches(tmp_path):
    """Ansible fails to load the inventory (and lists no hosts) when the cache directory vanishes
    or appears under it: a flush empties the farm's directory, and only that one."""
    from farmhand.core.local.farm import LocalFarm
    from farmhand.core.project import Project

    project = Project(make_project(tmp_path / "project", {}))
    demo, other = LocalFarm(project, "demo"), LocalFarm(project, "other")
    for local in (demo, other):
        local.inventory_cache.mkdir(parents=True)
        (local.inventory_cache / "aws_ec2_x").write_text("{}")

    demo.flush_inventory_cache()

    assert demo.inventory_cache.is_dir() and not list(demo.inventory_cache.iterdir())
    assert (other.inventory_cache / "aws_ec2_x").read_text() == "{}"
