"""`farm info` (Heroku's apps:info), with a stand-in for ansible-playbook."""

from __future__ import annotations

import json

from conftest import OK_RECAP, assert_ok, fake_playbook, farm, head_of_sample_app


def test_info_shows_the_farm_and_its_current_release(aws_env, farms, tmp_path):
    path, _ = fake_playbook(tmp_path, OK_RECAP)
    env = {**aws_env, "PATH": path}
    before = json.loads(farm("info", "-f", "demo", "--json", env=env).stdout)
    assert before["release"] is None
    assert before["roles"] == {"web": 2, "worker": 1, "db": 1, "cron": 1}
    assert_ok(farm("deploy", "-f", "demo", env=env))
    text = farm("info", "-f", "demo", env=env).stdout
    assert "=== demo" in text and "AWS us-east-1" in text
    assert f"v1 {head_of_sample_app()[:7]} Deploy" in text
