"""`farm restart`, with a stand-in for ansible-playbook: the playbook and hosts it picks, what it says
when a host fails the restart, and the roles it refuses before any playbook runs."""

from __future__ import annotations

import pytest
from conftest import (
    OK_RECAP,
    assert_ok,
    assert_one_line_error,
    counts,
    failed_task,
    fake_playbook,
    farm,
    ran,
)


def test_restart_runs_restart_yml_on_the_farms_web_and_worker_hosts(aws_env, farms, tmp_path):
    """As `heroku restart`: every process; restart.yml's plays are scoped to role_web and
    role_worker."""
    path, calls = fake_playbook(tmp_path, OK_RECAP)
    proc = farm("restart", "-f", "demo", env={**aws_env, "PATH": path})
    assert_ok(proc)
    assert calls.read_text().split() == ["playbooks/restart.yml", "--limit", "farm_demo"]
    assert "Restarting 2 web and 1 worker hosts of demo, web one at a time" in proc.stdout
    assert "Restarted demo-web-1, demo-web-2, demo-worker-cron-1" in proc.stdout


@pytest.mark.parametrize(
    ("role", "said", "hosts"),
    [
        ("web", "Restarting 2 web hosts of demo, web one at a time", "demo-web-1, demo-web-2"),
        ("worker", "Restarting 1 worker hosts of demo", "demo-worker-cron-1"),
    ],
)
def test_restart_of_one_role_limits_the_run_to_its_hosts(aws_env, farms, tmp_path, role, said, hosts):
    path, calls = fake_playbook(tmp_path, OK_RECAP)
    proc = farm("restart", "-f", "demo", "-r", role, env={**aws_env, "PATH": path})
    assert_ok(proc)
    assert calls.read_text().split() == ["playbooks/restart.yml", "--limit", f"farm_demo:&role_{role}"]
    assert said in proc.stdout
    assert f"Restarted {hosts}" in proc.stdout


def test_a_failed_restart_names_the_host_and_task_and_exits_1(aws_env, farms, tmp_path):
    path, _ = fake_playbook(
        tmp_path,
        ran(
            {"demo-web-1": counts(failed=1), "demo-web-2": counts()},
            failed_task("demo-web-1", "Restart Unicorn onto the current release", "rails_unicorn"),
        )
        + "exit 2\n",
    )
    proc = farm("restart", "-f", "demo", env={**aws_env, "PATH": path})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "farm: error: restart.yml failed on demo-web-1 (Restart Unicorn onto the current release)"
    ]
    assert "Restarted" not in proc.stdout


def test_a_role_without_processes_to_restart_runs_no_playbook(aws_env, farms, tmp_path):
    path, calls = fake_playbook(tmp_path, OK_RECAP)
    proc = farm("restart", "-f", "demo", "-r", "db", env={**aws_env, "PATH": path})
    assert_one_line_error(proc, "role 'db' has no processes to restart: restartable roles are web, worker")
    assert not calls.exists()
