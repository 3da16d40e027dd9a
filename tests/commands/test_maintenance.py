"""`farm maintenance`, `maintenance:on`, `maintenance:off`, with stand-ins for ansible-playbook and
ansible: the playbook, hosts and variable each picks, and the state read from every web host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import OK_RECAP, assert_ok, assert_one_line_error, fake_playbook, farm, recorded


def _fake_ansible(tmp_path: Path, found: dict[str, bool]) -> tuple[str, Path]:
    """A PATH whose `ansible` records its arguments and answers the stat of the maintenance file:
    FOUND says on which hosts it exists (a host not in FOUND did not answer)."""
    path, calls = fake_playbook(tmp_path, OK_RECAP)
    events: list[dict[str, Any]] = [
        {"event": "ok", "host": host, "result": {"stat": {"exists": on}}} for host, on in found.items()
    ]
    fake = tmp_path / "fake-bin" / "ansible"
    fake.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n' + recorded(*events))
    fake.chmod(0o755)
    return path, calls


def test_maintenance_on_and_off_run_maintenance_yml_on_the_web_hosts(aws_env, farms, tmp_path):
    path, calls = fake_playbook(tmp_path, OK_RECAP)
    env = {**aws_env, "PATH": path}
    on = farm("maintenance:on", "-f", "demo", env=env)
    assert_ok(on)
    assert "Turning maintenance mode on for demo (2 web hosts)" in on.stdout
    assert "Maintenance mode is on" in on.stdout
    off = farm("maintenance:off", "-f", "demo", env=env)
    assert_ok(off)
    assert "Maintenance mode is off" in off.stdout
    limit = ["--limit", "farm_demo:&role_web"]
    assert [line.split() for line in calls.read_text().splitlines()] == [
        ["playbooks/maintenance.yml", *limit, "-e", "farmhand_maintenance=True"],
        ["playbooks/maintenance.yml", *limit, "-e", "farmhand_maintenance=False"],
    ]


def test_maintenance_says_on_when_every_web_host_serves_the_503(aws_env, farms, tmp_path):
    path, calls = _fake_ansible(tmp_path, {"demo-web-1": True, "demo-web-2": True})
    proc = farm("maintenance", "-f", "demo", env={**aws_env, "PATH": path})
    assert_ok(proc)
    assert proc.stdout == "on\n"
    assert calls.read_text().splitlines() == [
        "farm_demo:&role_web -m ansible.builtin.stat "
        "-a path={{ rails_unicorn_maintenance_file }} get_checksum=false"
    ]


def test_maintenance_names_each_host_when_they_disagree(aws_env, farms, tmp_path):
    path, _ = _fake_ansible(tmp_path, {"demo-web-1": False, "demo-web-2": True})
    proc = farm("maintenance", "-f", "demo", env={**aws_env, "PATH": path})
    assert_ok(proc)
    assert proc.stdout == "demo-web-1: off\ndemo-web-2: on\n"


def test_maintenance_names_the_web_hosts_it_could_not_read(aws_env, farms, tmp_path):
    path, _ = _fake_ansible(tmp_path, {"demo-web-1": True})
    proc = farm("maintenance", "-f", "demo", env={**aws_env, "PATH": path})
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == ["farm: error: could not read maintenance mode on demo-web-2"]
    assert proc.stdout == ""


def test_maintenance_on_a_farm_without_web_hosts_runs_nothing(aws_env, farms, tmp_path):
    path, calls = _fake_ansible(tmp_path, {})
    for verb in ("maintenance", "maintenance:on", "maintenance:off"):
        assert_one_line_error(
            farm(verb, "-f", "dbonly", env={**aws_env, "PATH": path}),
            "farm 'dbonly' has no web hosts: maintenance mode is served by them",
        )
    assert not calls.exists()
