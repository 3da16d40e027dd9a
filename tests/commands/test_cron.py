"""`farm cron`, `cron:run`, `cron:logs`, `cron:history`: the job checked before any host is asked,
the active cron host followed (a guard stands in for ssh)."""

from __future__ import annotations

import shutil

from conftest import REPO_ROOT, assert_one_line_error, farm, make_project, snapshot


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
