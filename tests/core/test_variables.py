"""The CLI reads variables as Ansible does (farmhand.core.variables), against moto like the other unit tests.

Each test builds its own project, laid out as Ansible reads it (inventory/aws_ec2.yml beside
inventory/group_vars -> ../group_vars, a copy of this checkout's group_vars/), so it can set
variables without writing into the checkout. `ansible-playbook` runs a debug task on a host of the
fake inventory (connection local: no host is reached) and the CLI runs with an `ssh` that records
the command it was asked to run on the host.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
from conftest import ANSIBLE_BIN, REPO_ROOT, Fleet, assert_ok, farm, make_project, run, with_fake_ssh

from farmhand.core.project import Project


def recording_ssh(env: Mapping[str, str], tmp_path: Path) -> tuple[dict[str, str], Path]:
    """ENV with an ssh that records its arguments and exits 0."""
    log = tmp_path / "ssh.log"
    return with_fake_ssh(env, tmp_path, f'#!/bin/sh\necho "$*" >> "{log}"\nexit 0\n'), log


def playbook_sees(project: Path, env: Mapping[str, str], host: str, expression: str) -> str:
    """What `ansible-playbook` gives HOST for EXPRESSION (a debug task, connection local)."""
    play = project / "debug.yml"
    play.write_text(
        "- name: Show a variable\n"
        f"  hosts: {host}\n"
        "  gather_facts: false\n"
        "  connection: local\n"
        "  tasks:\n"
        "    - name: Show it\n"
        "      ansible.builtin.debug:\n"
        f'        msg: "VALUE=<<{{{{ {expression} }}}}>>"\n'
    )
    proc = run(
        [str(ANSIBLE_BIN / "ansible-playbook"), str(play)], {**env, "ANSIBLE_NOCOLOR": "1"}, cwd=project
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = re.search(r"VALUE=<<(.*)>>", proc.stdout)
    assert found, proc.stdout
    return found.group(1)


@pytest.fixture
def cron_farm(fleet: Fleet) -> dict[str, str]:
    """Farm x: a web host and a cron host; the cron host's address."""
    fleet.add("x", "web", "x-web-1")
    return fleet.add("x", "cron", "x-cron-1")


def test_a_farms_value_wins_over_a_roles_in_ansible_playbook_and_in_the_cli(aws_env, cron_farm, tmp_path):
    """One variable set in group_vars/role_cron/ and group_vars/farm_x/: ansible-playbook and `farm cron`
    act on the same value, the farm's (farm_<farm> is deeper than role_<role>: inventory/aws_ec2.yml).
    Before, ansible-playbook took role_cron's (groups of one depth merge by name) and the CLI the farm's;
    and a user's per-farm `sidekiq_worker_processes: []` lost to role_worker's in a converge."""
    project = make_project(
        tmp_path / "project",
        {
            "role_cron/runner.yml": "cron_scheduler_runner_path: /opt/role/farmhand-cron\n",
            "farm_x/runner.yml": "cron_scheduler_runner_path: /opt/farm/farmhand-cron\n",
            "farm_x/worker.yml": "sidekiq_worker_processes: []\n",
        },
    )
    env = {**aws_env, "FARMHAND_HOME": str(project)}
    assert playbook_sees(project, env, "x-cron-1", "cron_scheduler_runner_path") == "/opt/farm/farmhand-cron"

    env, log = recording_ssh(env, tmp_path)
    assert_ok(farm("cron", "-f", "x", env=env))
    assert f"{cron_farm['ip']} -- sudo /opt/farm/farmhand-cron list" in log.read_text()

    # A farm-level value (no host asked): the same, for a host of farm_x and role_cron.
    assert (
        Project(project).farm_var("x", "cron_scheduler_runner_path", role="cron") == "/opt/farm/farmhand-cron"
    )
    # And the per-farm worker processes over role_worker's (group_vars/role_worker/worker.yml).
    assert Project(project).farm_var("x", "sidekiq_worker_processes", role="worker") == []


def test_a_farms_worker_processes_win_over_role_worker_in_a_play(aws_env, fleet, tmp_path):
    """The issue's case: `sidekiq_worker_processes: []` in group_vars/farm_<farm>/ was overridden by
    group_vars/role_worker/worker.yml in ansible-playbook. Now the farm's wins there, and the drain
    hook's timeout (ps:autoscale) follows the same value: the role's default process, 3600 s + margin."""
    from farmhand.core.scaling import autoscale as autoscaling

    fleet.add("x", "worker", "x-worker-1")
    project = make_project(tmp_path / "project", {"farm_x/worker.yml": "sidekiq_worker_processes: []\n"})
    env = {**aws_env, "FARMHAND_HOME": str(project)}
    assert playbook_sees(project, env, "x-worker-1", "sidekiq_worker_processes | length") == "0"
    assert autoscaling.hook_timeout(Project(project), "x") == 3600 + autoscaling.HOOK_MARGIN


def test_templated_values_are_rendered_as_ansible_renders_them(aws_env, cron_farm, tmp_path):
    """A `{{ }}` value reaches the CLI rendered: the runner's path, and jobs given by a template (the
    CLI used to run `sudo {{ ... }}` and to skip checking a templated job list)."""
    project = make_project(
        tmp_path / "project",
        {
            "farm_x/cron.yml": (
                "farmhand_tools: /opt/tools\n"
                "cron_scheduler_runner_path: '{{ farmhand_tools }}/farmhand-cron'\n"
                "nightly_jobs:\n  - {name: nightly, schedule: daily at 02:30, command: bin/rails nightly}\n"
                "farmhand_cron_jobs: '{{ nightly_jobs }}'\n"
            )
        },
    )
    env, log = recording_ssh({**aws_env, "FARMHAND_HOME": str(project)}, tmp_path)
    assert_ok(farm("cron:run", "-f", "x", "nightly", env=env))
    assert "-- sudo /opt/tools/farmhand-cron run nightly" in log.read_text()
    proc = farm("cron:run", "-f", "x", "weekly", env=env)
    assert proc.returncode == 2 and "unknown job 'weekly' on farm 'x': jobs are nightly" in proc.stderr
    assert playbook_sees(project, env, "x-cron-1", "cron_scheduler_runner_path") == "/opt/tools/farmhand-cron"


def encrypt_string(password_file: Path, name: str, value: str) -> str:
    """`ansible-vault encrypt_string` output: NAME: !vault | ... (what a user pastes into group_vars)."""
    proc = subprocess.run(
        [str(ANSIBLE_BIN / "ansible-vault"), "encrypt_string", "--vault-password-file", str(password_file),
         "--name", name, value],
        capture_output=True, text=True, check=True, cwd=REPO_ROOT,
    )  # fmt: skip
    assert "!vault" in proc.stdout
    return proc.stdout


def test_an_inline_vault_value_is_decrypted_with_the_configured_password(aws_env, cron_farm, tmp_path):
    """An inline `!vault` value (ansible-vault encrypt_string) is read decrypted by a CLI command when a
    vault password file is configured; without one the command stops with one line naming the
    variable, its file and how to configure the password. (yaml.safe_load used to reject the file.)"""
    password = tmp_path / "vault-pass"
    password.write_text("correct horse battery staple\n")
    password.chmod(0o600)
    project = make_project(
        tmp_path / "project",
        {
            "farm_x/vault.yml": encrypt_string(
                password, "cron_scheduler_runner_path", "/opt/secret/farmhand-cron"
            )
        },
    )
    env, log = recording_ssh({**aws_env, "FARMHAND_HOME": str(project)}, tmp_path)

    assert_ok(farm("cron", "-f", "x", env={**env, "ANSIBLE_VAULT_PASSWORD_FILE": str(password)}))
    assert "-- sudo /opt/secret/farmhand-cron list" in log.read_text()
    log.unlink()

    proc = farm("cron", "-f", "x", env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("farm: error: cron_scheduler_runner_path in "), lines[0]
    assert "group_vars/farm_x/vault.yml" in lines[0]
    assert "is encrypted with ansible-vault" in lines[0]
    assert "ANSIBLE_VAULT_PASSWORD_FILE" in lines[0] and "vault_password_file" in lines[0]
    assert not log.exists()


def test_a_local_farms_shape_may_hold_vault_values(tmp_path):
    """The farm-level read where no host exists yet (a local farm's shape) goes through Ansible too:
    a group_vars file with an inline `!vault` value beside the shape reads fine."""
    password = tmp_path / "vault-pass"
    password.write_text("pw\n")
    project = make_project(
        tmp_path / "project",
        {
            "farm_lf/local.yml": "farmhand_local_shape:\n  web: 1\n  db,worker,cron: 1\n",
            "farm_lf/secret.yml": encrypt_string(password, "farmhand_partner_token", "s3cr3t"),
        },
    )
    assert Project(project).farm_var("lf", "farmhand_local_shape") == {"web": 1, "db,worker,cron": 1}


def test_an_inventory_that_cannot_list_the_instances_is_an_error_naming_the_plugins_reason(aws_env, tmp_path):
    """Not a farm without hosts: the aws_ec2 plugin's own reason, in one line."""
    from farmhand.core.errors import FarmError
    from farmhand.core.variables import Ansible

    project = Project(make_project(tmp_path / "project", {}))
    env = {**aws_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_MAX_ATTEMPTS": "1"}
    with pytest.raises(FarmError) as failed:
        Ansible(project, env=env, refresh=True)
    message = str(failed.value)
    assert message.startswith(f"Ansible cannot load {project.inventory}: Failed to describe instances:")
    assert "Could not connect to the endpoint URL" in message and "\n" not in message
