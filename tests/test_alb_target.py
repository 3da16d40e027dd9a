"""The alb_target role against moto's ELBv2: register, stay put, report drift in check mode, deregister.

The role runs its AWS calls on the controller (delegate_to: localhost), so these tests run it for
a stand-in host with connection local, against the test's moto on 127.0.0.1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK_BIN = str(Path(sys.executable).with_name("ansible-playbook"))


@pytest.fixture
def target_group(aws_env: dict[str, str], fleet: Any) -> dict[str, Any]:
    """A target group in the fleet's VPC and two running instances."""
    elbv2 = boto3.client(
        "elbv2",
        endpoint_url=aws_env["AWS_ENDPOINT_URL"],
        region_name=aws_env["AWS_REGION"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    vpc = fleet.ec2.describe_subnets(SubnetIds=[fleet.subnet])["Subnets"][0]["VpcId"]
    group = elbv2.create_target_group(
        Name="demo-web", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance"
    )
    web = [fleet.add("demo", "web", f"demo-web-{n}") for n in (1, 2)]
    return {"elbv2": elbv2, "arn": group["TargetGroups"][0]["TargetGroupArn"], "web": web}


def registered(group: dict[str, Any]) -> set[tuple[str, int]]:
    """(instance, port) of the targets that take traffic (a deregistered one may linger, draining)."""
    health = group["elbv2"].describe_target_health(TargetGroupArn=group["arn"])["TargetHealthDescriptions"]
    return {
        (t["Target"]["Id"], t["Target"]["Port"]) for t in health if t["TargetHealth"]["State"] != "draining"
    }


def apply(
    tmp_path: Path, env: dict[str, str], variables: str, check: bool = False
) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "alb.yml"
    playbook.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  roles:\n"
        "    - role: alb_target\n      vars:\n"
        + "".join(f"        {line}\n" for line in variables.splitlines())
    )
    run_env = {**env, "ANSIBLE_ROLES_PATH": str(ROOT / "roles"), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    cmd = [PLAYBOOK_BIN, "-i", "localhost,", str(playbook)] + (["--check"] if check else [])
    return subprocess.run(cmd, cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=300)


def test_register_is_idempotent_and_check_mode_reports_drift(aws_env, target_group, tmp_path):
    instance = target_group["web"][0]["id"]
    variables = f"alb_target_group_name: demo-web\nalb_target_instance_id: {instance}\nalb_target_port: 80"

    checked = apply(tmp_path, aws_env, variables, check=True)
    assert checked.returncode == 0, checked.stdout
    assert "changed=1" in checked.stdout and f"{instance} would be registered with" in checked.stdout
    assert registered(target_group) == set()

    first = apply(tmp_path, aws_env, variables)
    assert first.returncode == 0, first.stdout
    assert "changed=1" in first.stdout
    assert registered(target_group) == {(instance, 80)}

    again = apply(tmp_path, aws_env, variables)
    assert "changed=0" in again.stdout, again.stdout
    assert "changed=0" in apply(tmp_path, aws_env, variables, check=True).stdout


def test_absent_deregisters_by_arn(aws_env, target_group, tmp_path):
    first, second = (h["id"] for h in target_group["web"])
    by_arn = f"alb_target_group_arn: {target_group['arn']}\n"
    for instance in (first, second):
        assert apply(tmp_path, aws_env, f"{by_arn}alb_target_instance_id: {instance}").returncode == 0
    assert registered(target_group) == {(first, 80), (second, 80)}
    gone = apply(tmp_path, aws_env, f"{by_arn}alb_target_instance_id: {first}\nalb_target_state: absent")
    assert gone.returncode == 0, gone.stdout
    assert registered(target_group) == {(second, 80)}
    again = apply(tmp_path, aws_env, f"{by_arn}alb_target_instance_id: {first}\nalb_target_state: absent")
    assert "changed=0" in again.stdout


NAME = "alb_target_group_name: demo-web\n"
INSTANCE = "alb_target_instance_id: i-0123456789abcdef0\n"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (NAME + INSTANCE + "alb_target_state: gone", "alb_target_state"),
        (NAME + INSTANCE + "alb_target_port: http", "alb_target_port"),
        (INSTANCE, "Give the target group by name"),
        (NAME + INSTANCE + "alb_target_group_arn: arn:aws:elasticloadbalancing:x", "not both"),
        (NAME + "alb_target_instance_id: web-1", "got 'web-1'"),
    ],
)
def test_bad_variables_fail_before_any_aws_call(aws_env, target_group, tmp_path, variables, message):
    proc = apply(tmp_path, aws_env, variables)
    assert proc.returncode != 0
    assert message in proc.stdout
    assert "Read the target group" not in proc.stdout
    assert registered(target_group) == set()
