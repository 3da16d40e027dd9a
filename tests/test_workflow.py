"""The scheduled converge workflow (.github/workflows/converge.yml): actionlint passes, and it keeps its
contract: OIDC instead of stored keys, the check command a user runs, exit 3 taken as drift, the
report uploaded and summarised, a converge only when asked, a weekly molecule run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github/workflows/converge.yml"
CHECK = 'farm converge -f "$FARM" --check --diff --json > "drift-$FARM.json"'


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return workflow["jobs"][job]["steps"]


def step_running(workflow: dict[str, Any], job: str, text: str) -> dict[str, Any]:
    (found,) = [s for s in steps(workflow, job) if text in s.get("run", "")]
    return found


def step_using(workflow: dict[str, Any], job: str, action: str) -> list[dict[str, Any]]:
    return [s for s in steps(workflow, job) if s.get("uses", "").startswith(action + "@")]


def test_actionlint_passes():
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    assert actionlint, "actionlint is missing from the venv: make venv"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([actionlint, str(WORKFLOW)], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_runs_on_a_schedule_and_on_demand_with_farms_and_apply(workflow):
    triggers = workflow["on"]
    assert len(triggers["schedule"]) == 2
    inputs = triggers["workflow_dispatch"]["inputs"]
    assert inputs["farms"]["type"] == "string"
    assert inputs["apply"] == {**inputs["apply"], "type": "boolean", "default": False}


def test_aws_credentials_come_from_oidc_never_from_stored_keys(workflow):
    text = WORKFLOW.read_text()
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["jobs"]["drift"]["permissions"]["id-token"] == "write"
    (aws,) = step_using(workflow, "drift", "aws-actions/configure-aws-credentials")
    assert aws["with"]["role-to-assume"] == "${{ vars.FARMHAND_AWS_ROLE_ARN }}"
    for stored in (
        "aws-access-key-id",
        "aws-secret-access-key",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        assert stored not in text
    assert "secrets." not in text
    # The credentials come before any step that talks to AWS or the hosts.
    names = [s.get("uses", s.get("run", "")) for s in steps(workflow, "drift")]
    first_farm = next(i for i, n in enumerate(names) if "farm converge" in n or "aws ssm" in n)
    assert names.index(aws["uses"]) < first_farm


def test_installs_the_project_as_the_readme_does(workflow):
    install = step_running(workflow, "drift", "make venv")
    assert ".venv/bin" in install["run"]  # then `farm` is the command the README shows
    assert "make venv" in (REPO_ROOT / "README.md").read_text()


def test_checks_each_farm_with_the_users_command(workflow):
    job = workflow["jobs"]["drift"]
    assert job["strategy"]["matrix"]["farm"] == "${{ fromJSON(needs.farms.outputs.farms) }}"
    assert job["strategy"]["fail-fast"] is False
    assert job["env"]["FARM"] == "${{ matrix.farm }}"
    assert CHECK in step_running(workflow, "drift", "--check --diff --json")["run"]


def test_uploads_and_summarises_the_report_whatever_the_check_found(workflow):
    (upload,) = step_using(workflow, "drift", "actions/upload-artifact")
    assert upload["with"]["path"] == "drift-${{ matrix.farm }}.json"
    assert upload["if"] == "${{ !cancelled() }}"
    summary = step_running(workflow, "drift", "GITHUB_STEP_SUMMARY")
    assert summary["run"] == 'python -m farmhand.drift_summary "drift-$FARM.json" >> "$GITHUB_STEP_SUMMARY"'
    assert summary["if"] == "${{ !cancelled() }}"


def test_converges_only_when_asked_and_drift_was_found(workflow):
    applies = [
        s for s in steps(workflow, "drift") if re.search(r'farm converge -f "\$FARM"$', s.get("run", ""))
    ]
    assert [s["if"] for s in applies] == ["${{ inputs.apply && steps.check.outputs.drift == 'true' }}"]


def test_molecule_runs_every_role_weekly(workflow):
    job = workflow["jobs"]["molecule"]
    weekly = next(c["cron"] for c in workflow["on"]["schedule"] if c["cron"].split()[4] != "*")
    assert f"github.event.schedule == '{weekly}'" in job["if"]
    assert "make test-molecule" in step_running(workflow, "molecule", "make test-molecule")["run"]
    daily = next(c["cron"] for c in workflow["on"]["schedule"] if c["cron"] != weekly)
    assert f"github.event.schedule == '{daily}'" in workflow["jobs"]["farms"]["if"]


# -- the check step's script, run with a stand-in `farm` -----------------------------------------


@pytest.mark.parametrize(
    ("farm_exit", "step_exit", "drift"),
    [(0, 0, "false"), (3, 0, "true"), (1, 1, None), (2, 2, None)],
    ids=["clean", "drift", "failed", "bad-input"],
)
def test_the_check_step_takes_exit_3_as_drift_not_failure(workflow, tmp_path, farm_exit, step_exit, drift):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "farm"
    fake.write_text(f'#!/bin/sh\necho "$*" > "{tmp_path}/args"\necho {{}}\nexit {farm_exit}\n')
    fake.chmod(0o755)
    script = tmp_path / "step.sh"
    (check,) = [s for s in steps(workflow, "drift") if s.get("id") == "check"]
    script.write_text(check["run"])
    outputs = tmp_path / "outputs"
    outputs.touch()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FARM": "staging",
        "GITHUB_OUTPUT": str(outputs),
    }
    # What `shell: bash` (the workflow's default) runs: bash --noprofile --norc -eo pipefail {0}
    assert workflow["defaults"]["run"]["shell"] == "bash"
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == step_exit, proc.stdout + proc.stderr
    assert (tmp_path / "args").read_text().split() == [
        "converge",
        "-f",
        "staging",
        "--check",
        "--diff",
        "--json",
    ]
    assert (tmp_path / "drift-staging.json").read_text() == "{}\n"
    found = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert found["status"] == str(farm_exit)
    assert found.get("drift") == drift
    if farm_exit == 3:
        assert "::warning title=Drift on staging::" in proc.stdout
