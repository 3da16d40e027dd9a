"""target.resolve hands the farm's environment back instead of rewriting os.environ.

These run `resolve` in this process (the CLI's own), against the test's moto: os.environ is what the
user's shell gave the process, and must stay so; the environment the Target carries is what boto3,
ansible-playbook and ssh get for the farm.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from farmhand.core import aws, target
from farmhand.core.errors import FarmError


def use_environment(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    """Make ENV this process's whole environment for the test (monkeypatch restores it after)."""
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


class FakeLocalFarm:
    """A local farm that is up, without containers: its environment is the test's moto."""

    farm_env: ClassVar[dict[str, str]] = {}

    def __init__(self, project: Any, farm: str) -> None:
        self.farm = farm

    def exists(self) -> bool:
        return True

    def env(self) -> dict[str, str]:
        return {**self.farm_env, "FARMHAND_FARM": self.farm}


def test_resolve_leaves_os_environ_unchanged_and_returns_the_farms_environment(aws_env, farms, monkeypatch):
    use_environment(monkeypatch, aws_env)
    before = dict(os.environ)
    resolved = target.resolve("demo")
    assert dict(os.environ) == before
    assert not resolved.local
    assert {h.name for h in resolved.hosts} == {"demo-web-1", "demo-web-2", "demo-worker-cron-1", "demo-db-1"}
    # Everything a command needs to reach the farm: AWS, the inventory's cache, the tools on PATH.
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        assert resolved.env[name] == aws_env[name]
    assert resolved.env["ANSIBLE_INVENTORY_CACHE_CONNECTION"] == aws_env["ANSIBLE_INVENTORY_CACHE_CONNECTION"]
    assert resolved.env["PATH"] == aws_env["PATH"]
    # The env is a copy: a command that changes it changes nothing of this process.
    resolved.env["FARMHAND_PROBE"] = "1"
    assert "FARMHAND_PROBE" not in os.environ


def test_resolve_of_a_local_farm_carries_its_environment_and_this_process_keeps_the_shells(
    aws_env, farms, monkeypatch
):
    """The shell names a real AWS profile and token; the local farm's environment drops them and
    points at moto. boto3 in this process must follow the farm's environment (a profile that does
    not exist here would stop it), and os.environ must keep the shell's values."""
    moto = {
        k: aws_env[k]
        for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
    }
    monkeypatch.setattr(FakeLocalFarm, "farm_env", moto)
    monkeypatch.setattr(target, "LocalFarm", FakeLocalFarm)
    shell = {
        **{k: v for k, v in aws_env.items() if k not in moto},
        "AWS_PROFILE": "real_account_profile",
        "AWS_SESSION_TOKEN": "real-session-token",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",  # where the shell would send calls: nowhere
        "AWS_ACCESS_KEY_ID": "AKIAREALKEY",
        "AWS_SECRET_ACCESS_KEY": "real-secret",
    }
    use_environment(monkeypatch, shell)
    before = dict(os.environ)
    resolved = target.resolve("demo")
    assert dict(os.environ) == before
    assert resolved.local
    assert {h.name for h in resolved.hosts} == {"demo-web-1", "demo-web-2", "demo-worker-cron-1", "demo-db-1"}
    for name, value in moto.items():
        assert resolved.env[name] == value
    assert resolved.env["FARMHAND_FARM"] == "demo"
    assert "AWS_PROFILE" not in resolved.env
    assert "AWS_SESSION_TOKEN" not in resolved.env


def test_a_client_reads_the_profile_from_the_env_it_is_given(aws_env, monkeypatch):
    use_environment(monkeypatch, aws_env)
    with pytest.raises(FarmError, match="AWS profile 'no_such_profile' is not configured"):
        aws.client("ec2", "us-east-1", {**aws_env, "AWS_PROFILE": "no_such_profile"})
    assert "AWS_PROFILE" not in os.environ


def test_a_client_uses_the_endpoint_and_keys_of_the_env_it_is_given(aws_env, fleet, monkeypatch):
    fleet.add("demo", "web", "demo-web-1")
    use_environment(
        monkeypatch, {**aws_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_PROFILE": "nowhere"}
    )
    ec2 = aws.client("ec2", "us-east-1", aws_env)
    assert ec2.meta.endpoint_url == aws_env["AWS_ENDPOINT_URL"]
    assert aws.session("us-east-1", aws_env).get_credentials().access_key == aws_env["AWS_ACCESS_KEY_ID"]
    assert [aws.tags(i)["Name"] for i in aws.farm_instances(ec2, "demo")] == ["demo-web-1"]


def test_an_unreachable_endpoint_is_named_by_its_url(aws_env, monkeypatch):
    use_environment(monkeypatch, aws_env)
    ec2 = aws.client("ec2", "us-east-1", {**aws_env, "AWS_ENDPOINT_URL": "http://127.0.0.1:1"})
    with pytest.raises(FarmError, match=r"^cannot reach http://127\.0\.0\.1:1/?$"):
        aws.farm_instances(ec2, "demo")
