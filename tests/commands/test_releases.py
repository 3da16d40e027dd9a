"""`farm deploy`, `releases`, `rollback`, with a stand-in for ansible-playbook."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import (
    OK_RECAP,
    assert_ok,
    counts,
    failed_task,
    fake_playbook,
    farm,
    head_of_sample_app,
    parameters,
    ran,
    ssm_client,
)

FAILED_BUILD = (
    "echo 'TASK [app_release : Build the release] *****'\n"
    "echo 'fatal: [demo-web-2]: FAILED! => {}'\n"
    + ran(
        {"demo-web-2": counts(changed=2, failed=1)},
        failed_task("demo-web-2", "Build the release", "app_release"),
    )
    + "exit 2\n"
)


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
