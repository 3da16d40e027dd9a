"""Config vars: `farm config*` against moto, as a user runs it, with a stand-in for ansible-playbook.

The values go through SSM Parameter Store and back byte for byte; a change is one release that
records its config version, and a rollback puts that version's config back.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import (
    OK_RECAP,
    assert_ok,
    counts,
    failed_task,
    fake_playbook,
    farm,
    parameters,
    ran,
    ssm_client,
)

from farmhand.core import config as config_vars
from farmhand.core.errors import FarmError

AWKWARD = {
    "PLAIN": "hello",
    "SPACES": "  hello   world  ",
    "QUOTES": "it's \"quoted\" and 'single'",
    "EQUALS": "a=b==c=",
    "NEWLINES": "first line\nsecond line\n\nlast\n",
    "UNICODE": "héllo ✓ 日本 🚀",
    "SHELL": "$HOME `id` $(id) \\n \\\\ ; | & > <",
    "JINJA": "{{ lookup('pipe', 'id') }} {% raw %}",
    "TABS": "\tleading tab\ttrailing\t",
    "JSON": '{"a": [1, 2], "b": null}',
    "BIG": "x" * 8192,
}
FAILED_CONFIG = (
    "echo 'TASK [rails_unicorn : Wait until the app answers its health check as the new release] *****'\n"
    "echo 'fatal: [demo-web-1]: FAILED! => {}'\n"
    + ran(
        {"demo-web-1": counts(changed=2, failed=1)},
        failed_task(
            "demo-web-1", "Wait until the app answers its health check as the new release", "rails_unicorn"
        ),
    )
    + "exit 2\n"
)


def live(endpoint: str, farm_name: str = "demo") -> dict[str, str]:
    return config_vars.read(ssm_client(endpoint), farm_name)


def rows(env: dict[str, str]) -> list[dict]:
    proc = farm("releases", "-f", "demo", "--json", env=env)
    assert_ok(proc)
    return json.loads(proc.stdout)["releases"]


def playbook_calls(calls: Path) -> list[tuple[str, dict]]:
    """(playbook, extra vars) of each ansible-playbook call the stand-in recorded."""
    names = [line.split()[0] for line in calls.read_text().splitlines()]
    extras = [json.loads(line) for line in calls.with_suffix(".log.json").read_text().splitlines() if line]
    return list(zip(names, extras, strict=True))


def test_awkward_values_round_trip_byte_for_byte(aws_env, farms):
    args = [f"{k}={v}" for k, v in AWKWARD.items()]
    assert_ok(farm("config:set", "-f", "demo", "--no-restart", *args, env=aws_env))
    assert live(aws_env["AWS_ENDPOINT_URL"]) == AWKWARD
    for name, value in AWKWARD.items():
        got = farm("config:get", "-f", "demo", name, env=aws_env)
        assert_ok(got)
        assert got.stdout == value + "\n"
    as_json = farm("config", "-f", "demo", "--json", env=aws_env)
    assert_ok(as_json)
    assert json.loads(as_json.stdout) == AWKWARD
    # --shell output, evaluated by a POSIX shell, gives every value back.
    shell = farm("config", "-f", "demo", "--shell", env=aws_env).stdout
    script = shell + "".join(f'printf "%s\\0" "${name}"\n' for name in AWKWARD)
    printed = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert dict(zip(AWKWARD, printed.split("\0")[:-1], strict=True)) == AWKWARD


def test_each_var_is_a_securestring_parameter_under_the_farms_path(aws_env, farms):
    assert_ok(farm("config:set", "-f", "demo", "--no-restart", "A=1", "B=two", env=aws_env))
    ssm = ssm_client(aws_env["AWS_ENDPOINT_URL"])
    found = ssm.get_parameters_by_path(Path="/farmhand/demo/config/")["Parameters"]
    assert {p["Name"]: p["Type"] for p in found} == {
        "/farmhand/demo/config/A": "SecureString",
        "/farmhand/demo/config/B": "SecureString",
    }
    assert live(aws_env["AWS_ENDPOINT_URL"], "staging") == {}  # another farm sees none of them


def test_the_listing_masks_values_unless_revealed(aws_env, farms):
    assert_ok(farm("config:set", "-f", "demo", "--no-restart", "API_TOKEN=s3cr3t-value", "X=1", env=aws_env))
    masked = farm("config", "-f", "demo", env=aws_env)
    assert_ok(masked)
    assert "=== demo Config Vars" in masked.stdout
    assert "API_TOKEN: ********" in masked.stdout and "s3cr3t-value" not in masked.stdout
    revealed = farm("config", "-f", "demo", "--reveal", env=aws_env)
    assert "API_TOKEN: s3cr3t-value" in revealed.stdout
    empty = farm("config", "-f", "staging", env=aws_env)
    assert "no config vars yet" in empty.stdout


def test_set_is_one_release_that_applies_config_yml(aws_env, farms, tmp_path):
    path, calls = fake_playbook(tmp_path, OK_RECAP)
    env = {**aws_env, "PATH": path}
    proc = farm("config:set", "-f", "demo", "A=val-one", "B=val-two", "C=val-three", env=env)
    assert_ok(proc)
    assert "Released v1 to demo: Set A, B, C config vars" in proc.stdout
    assert "val-" not in proc.stdout + proc.stderr  # names, never values
    (call,) = playbook_calls(calls)
    # Nothing deployed yet: the env files are written, no process restarts.
    assert call == ("playbooks/config.yml", {"farmhand_config_restart": False})
    (row,) = rows(env)
    assert (row["version"], row["kind"], row["status"], row["sha"]) == (1, "config", "succeeded", "")
    assert config_vars.load_version(
        ssm_client(aws_env["AWS_ENDPOINT_URL"]), "demo", row["config_version"]
    ) == {
        "A": "val-one",
        "B": "val-two",
        "C": "val-three",
    }


def test_setting_what_is_already_set_changes_nothing(aws_env, farms, tmp_path):
    path, calls = fake_playbook(tmp_path, OK_RECAP)
    env = {**aws_env, "PATH": path}
    assert_ok(farm("config:set", "-f", "demo", "A=1", env=env))
    before = parameters(aws_env["AWS_ENDPOINT_URL"])
    again = farm("config:set", "-f", "demo", "A=1", env=env)
    assert_ok(again)
    assert "nothing to change" in again.stdout
    assert parameters(aws_env["AWS_ENDPOINT_URL"]) == before
    assert len(calls.read_text().splitlines()) == 1


def test_deploy_config_change_unset_and_rollback(aws_env, farms, tmp_path):
    """A deploy records the config it runs with; a config change after it restarts the web hosts;
    rolling back to the deploy puts its config back (and unset keys come back, set ones go)."""
    path, calls = fake_playbook(tmp_path, OK_RECAP)
    env = {**aws_env, "PATH": path}
    endpoint = aws_env["AWS_ENDPOINT_URL"]
    assert_ok(farm("config:set", "-f", "demo", "--no-restart", "GREETING=hello", "KEEP=kept", env=env))
    assert_ok(farm("deploy", "-f", "demo", env=env))  # v1
    changed = farm("config:set", "-f", "demo", "GREETING=bonjour", "NEW=added", env=env)  # v2
    assert_ok(changed)
    assert "Released v2 to demo: Set GREETING, NEW config vars" in changed.stdout
    removed = farm("config:unset", "-f", "demo", "KEEP", env=env)  # v3
    assert_ok(removed)
    assert "Released v3 to demo: Remove KEEP config vars" in removed.stdout
    assert live(endpoint) == {"GREETING": "bonjour", "NEW": "added"}
    history = {r["version"]: r for r in rows(env)}
    assert [history[v]["kind"] for v in (1, 2, 3)] == ["deploy", "config", "config"]
    assert history[2]["sha"] == history[1]["sha"] != ""  # a config release runs the same code
    assert len({history[v]["config_version"] for v in (1, 2, 3)}) == 3
    playbooks = playbook_calls(calls)
    assert playbooks[1:] == [
        ("playbooks/config.yml", {"farmhand_config_restart": True}),
        ("playbooks/config.yml", {"farmhand_config_restart": True}),
    ]

    rolled = farm("rollback", "-f", "demo", "v1", env=env)  # v4
    assert_ok(rolled)
    assert "Config vars as in config version" in rolled.stdout
    assert live(endpoint) == {"GREETING": "hello", "KEEP": "kept"}
    v4 = rows(env)[0]
    assert (v4["version"], v4["kind"], v4["config_version"]) == (4, "rollback", history[1]["config_version"])
    assert playbook_calls(calls)[-1][0] == "playbooks/deploy.yml"


def test_a_failed_config_release_is_recorded_and_the_vars_stay_set(aws_env, farms, tmp_path):
    path, _ = fake_playbook(tmp_path, FAILED_CONFIG)
    env = {**aws_env, "PATH": path}
    proc = farm("config:set", "-f", "demo", "A=1", env=env)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("farm: error: v1 failed on demo-web-1 (Wait until the app answers")
    assert "the config vars are set in SSM" in line
    assert live(aws_env["AWS_ENDPOINT_URL"]) == {"A": "1"}
    (row,) = rows(env)
    assert row["status"] == "failed"


def test_a_farm_without_app_hosts_only_writes_the_parameters(aws_env, farms):
    proc = farm("config:set", "-f", "dbonly", "A=1", env=aws_env)
    assert_ok(proc)
    assert "farm 'dbonly' has no app hosts" in proc.stdout
    assert live(aws_env["AWS_ENDPOINT_URL"], "dbonly") == {"A": "1"}


def test_unsetting_a_reserved_name_set_behind_farmhands_back_is_allowed(aws_env, farms):
    ssm = ssm_client(aws_env["AWS_ENDPOINT_URL"])
    ssm.put_parameter(Name="/farmhand/demo/config/DATABASE_URL", Value="postgres://x", Type="SecureString")
    assert_ok(farm("config:unset", "-f", "demo", "--no-restart", "DATABASE_URL", env=aws_env))
    assert live(aws_env["AWS_ENDPOINT_URL"]) == {}


# -- the module itself -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a\0b", "", "é" * 4097])
def test_values_ssm_or_an_environment_cannot_hold_are_refused(value):
    with pytest.raises(FarmError):
        config_vars.check_value("K", value)


def test_config_versions_split_big_configs_and_reuse_an_identical_one(aws_env):
    ssm = ssm_client(aws_env["AWS_ENDPOINT_URL"])
    big = {f"KEY_{n}": "é" * 3000 for n in range(5)}  # ~90 KB as JSON escapes: 23 parts
    first = config_vars.record_version(ssm, "demo", big)
    assert config_vars.load_version(ssm, "demo", first) == big
    assert config_vars.record_version(ssm, "demo", big) == first
    assert config_vars.record_version(ssm, "demo", {}) == first + 1
    assert config_vars.load_version(ssm, "demo", first + 1) == {}
    params = ssm.describe_parameters()["Parameters"]
    assert all(p["Type"] == "SecureString" for p in params)


def test_every_variable_farmhand_sets_is_reserved():
    """The names the env file gets from Farmhand (and Unicorn sets) are exactly the reserved ones."""
    values = yaml.safe_load((Path(__file__).parents[2] / "group_vars/all/farmhand.yml").read_text())
    storage = yaml.safe_load((Path(__file__).parents[2] / "group_vars/all/storage.yml").read_text())
    local_s3 = set(re.findall(r"'([A-Z][A-Z0-9_]*)':", storage["farmhand_local_s3_env"]))
    assert local_s3 == {"S3_ENDPOINT", "AWS_CA_BUNDLE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    managed = set(values["farmhand_managed_env"]) | local_s3
    reserved = set(values["farmhand_config_reserved"])
    unicorn = (Path(__file__).parents[2] / "roles/rails_unicorn/templates/unicorn.rb.j2").read_text()
    set_by_unicorn = {n for n in ("FARMHAND_RELEASE", "FARMHAND_ENV_KEYS") if f'ENV["{n}"] =' in unicorn}
    assert set_by_unicorn == {"FARMHAND_RELEASE", "FARMHAND_ENV_KEYS"}
    assert reserved == managed | set_by_unicorn
    assert all(isinstance(v, str) and v for v in values["farmhand_config_reserved"].values())
