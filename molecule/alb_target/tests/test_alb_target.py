"""The web host is registered with the ALB target group, once, on nginx's port."""

import os
from pathlib import Path

import boto3

STATE = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


def elbv2():
    port = (STATE / "moto.port").read_text().strip()
    return boto3.client(
        "elbv2",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="farmhand-test-key-id",
        aws_secret_access_key="farmhand-test-secret-key",
    )


def test_the_web_host_is_registered_once_on_port_80():
    client = elbv2()
    group = client.describe_target_groups(Names=["molecule-web"])["TargetGroups"][0]
    health = client.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]
    instance = (STATE / "instance_id").read_text().strip()
    assert [(t["Target"]["Id"], t["Target"]["Port"]) for t in health] == [(instance, 80)]
