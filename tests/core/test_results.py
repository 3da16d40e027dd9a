"""Run results as data: the farmhand_results callback, and the CLI's outputs built from it.

The CLI's summaries, failure messages and `--json` outputs come from what the callback records,
never from Ansible's printed output: a different stdout callback, `callback_result_format` or `-v`
changes what the user sees and nothing the CLI says. Real ansible-playbook and ansible runs, against
moto's fake hosts reached with Ansible's local connection (a project whose playbooks are small
stand-ins), and against localhost when the user runs ansible-playbook directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, farm

from farmhand.core import runner

SECRET = "s3cr3t-never-recorded"
# The stand-in site.yml: on the web hosts, a change and a no_log change; an ignored failure; a
# failure a block rescues (on demo-web-1); and a no_log failure (on demo-web-2) whose message is a
# secret.
SITE = """\
- name: Converge the stand-in hosts
  hosts: all
  gather_facts: false
  tasks:
    - name: Write the greeting
      ansible.builtin.copy:
        dest: "{{ results_work }}/{{ inventory_hostname }}.txt"
        content: "hello\\n"
        mode: "0644"

    - name: Write the password file
      ansible.builtin.copy:
        dest: "{{ results_work }}/{{ inventory_hostname }}.secret"
        content: "SECRET\\n"
        mode: "0600"
      no_log: true

    - name: Try something that may fail
      ansible.builtin.fail:
        msg: an ignored failure
      ignore_errors: true

    - name: Recover from a failure
      block:
        - name: Fail inside a block
          ansible.builtin.fail:
            msg: a rescued failure
          when: inventory_hostname == 'demo-web-1'
      rescue:
        - name: Rescue it
          ansible.builtin.debug:
            msg: rescued

    - name: Check the release
      ansible.builtin.fail:
        msg: "SECRET"
      when: inventory_hostname == 'demo-web-2'
      no_log: true
""".replace("SECRET", SECRET)
# The stand-in restart.yml: a loop whose second item fails on demo-web-1.
RESTART = """\
- name: Restart the stand-in web hosts
  hosts: role_web
  gather_facts: false
  tasks:
    - name: Restart Unicorn onto the current release
      ansible.builtin.command: "true"
      changed_when: true
      failed_when: inventory_hostname == 'demo-web-1' and step == 2
      loop: [1, 2]
      loop_control:
        loop_var: step
"""
# Display settings (beside ansible.cfg's: the default stdout callback, callback_result_format yaml)
# that change all Ansible prints, down to no progress text at all (ansible.posix.json).
DISPLAYS = {
    "default": {},
    "minimal-json-v": {
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_VERBOSITY": "1",
    },
    "posix-json-vv": {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_VERBOSITY": "2"},
}


def _link_entries(source: Path, dest: Path, skip: tuple[str, ...] = ()) -> None:
    dest.mkdir()
    for entry in source.iterdir():
        if entry.name not in skip:
            (dest / entry.name).symlink_to(entry)


@pytest.fixture
def local_project(aws_env: dict[str, str], farms: dict, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The checkout's project (inventory, group_vars, ansible.cfg) with stand-in playbooks, whose
    hosts (moto's fake instances) Ansible reaches with its local connection."""
    view = tmp_path / "local-project"
    view.mkdir()
    for name in ("ansible.cfg", "roles", "requirements.yml", "examples"):
        (view / name).symlink_to(REPO_ROOT / name)
    (view / ".farm").mkdir()
    (view / "playbooks").mkdir()
    (view / "playbooks" / "site.yml").write_text(SITE)
    (view / "playbooks" / "restart.yml").write_text(RESTART)
    (view / "inventory").mkdir()
    (view / "inventory" / "aws_ec2.yml").symlink_to(REPO_ROOT / "inventory" / "aws_ec2.yml")
    group_vars = view / "group_vars"
    (view / "inventory" / "group_vars").symlink_to("../group_vars")
    _link_entries(REPO_ROOT / "group_vars", group_vars, skip=("all",))
    _link_entries(REPO_ROOT / "group_vars" / "all", group_vars / "all")
    work = tmp_path / "work"
    (work / "app" / "shared").mkdir(parents=True)
    (work / "app" / "shared" / "maintenance.on").write_text("")  # maintenance mode is on
    (group_vars / "all" / "zz_local_connection.yml").write_text(
        "ansible_connection: local\n"
        f"ansible_python_interpreter: {sys.executable}\n"
        f"farmhand_app_root: {work / 'app'}\n"
        f"results_work: {work}\n"
    )
    return {**aws_env, "FARMHAND_HOME": str(view)}, work


def _outputs(env: dict[str, str], work: Path) -> dict[str, object]:
    """What the CLI says (its own lines, exit codes, --json) for a check, a restart and a module run."""
    for leftover in work.glob("demo-web-*"):
        leftover.unlink()
    check = farm("converge", "-f", "demo", "--role", "web", "--check", "--diff", "--json", env=env)
    restart = farm("restart", "-f", "demo", env=env)
    maintenance = farm("maintenance", "-f", "demo", env=env)
    assert "Traceback" not in check.stderr + restart.stderr + maintenance.stderr
    lines = check.stderr.splitlines()
    header = next((i for i, line in enumerate(lines) if line.split()[:2] == ["HOST", "OK"]), None)
    return {
        "check": (check.returncode, json.loads(check.stdout) if check.stdout else check.stderr[-3000:]),
        "check summary": [line.split() for line in lines[header : header + 3]] if header else lines[-30:],
        "check error": [line for line in lines if line.startswith("farm: error")],
        "restart": (restart.returncode, [line for line in restart.stderr.splitlines() if "farm:" in line]),
        "maintenance": (maintenance.returncode, maintenance.stdout),
    }


def test_display_settings_change_nothing_the_cli_says(local_project):
    env, work = local_project
    outputs = {name: _outputs({**env, **settings}, work) for name, settings in DISPLAYS.items()}
    expected = outputs["default"]
    check_code, report = expected["check"]
    assert check_code == 1  # a host failed
    assert report["status"] == "failed" and report["checked"] == ["demo-web-1", "demo-web-2"]
    assert report["failed"] == ["demo-web-2"] and report["changed"] == ["demo-web-1", "demo-web-2"]
    web1 = report["hosts"]["demo-web-1"]
    assert [(c["task"], c["censored"]) for c in web1["changes"]] == [
        ("Write the greeting", False),
        ("Write the password file", True),
    ]
    assert web1["failures"] == []  # the ignored and the rescued failure are none
    (failure,) = report["hosts"]["demo-web-2"]["failures"]
    assert failure["task"] == "Check the release" and failure["message"] == "censored (no_log)"
    assert expected["check summary"] == [
        ["HOST", "OK", "CHANGED", "FAILED", "UNREACHABLE", "SKIPPED"],
        ["demo-web-1", "4", "2", "0", "0", "1"],
        ["demo-web-2", "3", "2", "1", "0", "1"],
    ]
    assert expected["check error"] == ["farm: error: check failed on demo-web-2 (Check the release)"]
    assert expected["restart"] == (
        1,
        ["farm: error: restart.yml failed on demo-web-1 (Restart Unicorn onto the current release)"],
    )
    assert expected["maintenance"] == (0, "on\n")
    for name, said in outputs.items():
        assert said == expected, (name, said)
    assert not list(work.glob("demo-web-*"))  # check mode changed nothing
    assert SECRET not in json.dumps(outputs)


# -- the callback in a run of the user's own ------------------------------------------------------

PLAYBOOK = """\
- name: Results on localhost
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write the greeting
      ansible.builtin.copy:
        dest: "{{ workdir }}/greeting"
        content: "hello\\n"
        mode: "0644"

    - name: Hand a value to the CLI
      ansible.builtin.set_stats:
        data:
          farmhand_answer: 42
        per_host: false

    - name: Fail without saying why
      ansible.builtin.fail:
        msg: "SECRET"
      no_log: true
""".replace("SECRET", SECRET)


def _playbook(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            *("-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}"),
            *("-e", f"workdir={tmp_path}", "site.yml", *args),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_callback_in_a_direct_run_prints_nothing_and_records_check_mode(tmp_path):
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    (tmp_path / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = false\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "FARMHAND_"))}
    base["ANSIBLE_CONFIG"] = str(tmp_path / "ansible.cfg")
    plain = _playbook(tmp_path, base, "--check")
    # Enabled, as in a user's ansible.cfg, without a file to write: the run looks the same, and
    # nothing is written anywhere.
    with runner.recording(tmp_path, base) as (env, results):
        enabled = {k: v for k, v in env.items() if k != runner.RESULTS_VAR}
        quiet = _playbook(tmp_path, enabled, "--check")
        assert not results.exists()
        recorded = _playbook(tmp_path, env, "--check")
        result = runner.read_results(results, recorded.returncode)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert recorded.stdout == plain.stdout and recorded.returncode == plain.returncode == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ansible.cfg", "site.yml"]  # check mode
    assert result.recorded and result.recap == {
        "localhost": {
            "ok": 2,
            "changed": 1,
            "unreachable": 0,
            "failed": 1,
            "skipped": 0,
            "rescued": 0,
            "ignored": 0,
        }
    }
    assert result.failures == [runner.Failure("localhost", "Fail without saying why")]
    assert runner.describe_failures(result) == "localhost (Fail without saying why)"
    assert result.custom == {"farmhand_answer": 42}
    assert SECRET not in json.dumps(result.events)


# -- enabling the callback beside the user's own -------------------------------------------------


def test_the_callback_is_added_to_the_users_callbacks(tmp_path):
    results = tmp_path / "r.jsonl"
    home = {"HOME": str(tmp_path / "home")}
    # Nothing configured: Ansible's default plugin path stays, after the callback's directory.
    env = runner.callback_env(tmp_path, home, results)
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == "farmhand_results"
    assert env["ANSIBLE_CALLBACK_PLUGINS"].split(os.pathsep) == [
        str(runner.CALLBACK_DIR),
        str(tmp_path / "home/.ansible/plugins/callback"),
        "/usr/share/ansible/plugins/callback",
    ]
    assert env[runner.RESULTS_VAR] == str(results)
    # The project's ansible.cfg: its callbacks and its plugin path (relative to the file) stay.
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\ncallbacks_enabled = ansible.posix.timer, mine\ncallback_plugins = plugins/cb\n"
    )
    env = runner.callback_env(tmp_path, home, results)
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == "farmhand_results,ansible.posix.timer,mine"
    assert env["ANSIBLE_CALLBACK_PLUGINS"] == os.pathsep.join(
        [str(runner.CALLBACK_DIR), str(tmp_path / "plugins/cb")]
    )
    # The environment wins over the file, as in Ansible; the callback is not listed twice.
    env = runner.callback_env(
        tmp_path,
        {
            **home,
            "ANSIBLE_CALLBACKS_ENABLED": "farmhand_results,profile_tasks",
            "ANSIBLE_CALLBACK_PLUGINS": "/x",
        },
        results,
    )
    assert env["ANSIBLE_CALLBACKS_ENABLED"] == "farmhand_results,profile_tasks"
    assert env["ANSIBLE_CALLBACK_PLUGINS"] == os.pathsep.join([str(runner.CALLBACK_DIR), "/x"])


def test_failures_a_rescue_cleared_are_not_reported_and_each_task_once(tmp_path):
    events = [
        {"event": "start"},
        {"event": "failed", "host": "web-1", "task": "Fail inside a block", "msg": "rescued"},
        {"event": "failed", "host": "web-2", "task": "Build", "msg": "first line\nsecond"},
        {"event": "failed", "host": "web-2", "task": "Build", "msg": "again"},
        {"event": "unreachable", "host": "db-1", "task": "Gathering Facts", "msg": "no route"},
        {"event": "failed", "host": "db-1", "task": "Secret", "censored": True},
        {
            "event": "end",
            "stats": {
                "web-1": {"ok": 3, "failed": 0, "rescued": 1},
                "web-2": {"ok": 1, "failed": 1},
                "db-1": {"ok": 0, "unreachable": 1},
            },
        },
    ]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    result = runner.read_results(path, 2)
    assert result.failures == [
        runner.Failure("web-2", "Build", "first line\nsecond"),
        runner.Failure("db-1", "Gathering Facts", "no route", unreachable=True),
        runner.Failure("db-1", "Secret", ""),
    ]
    assert runner.describe_failures(result) == "web-2 (Build), db-1 (Gathering Facts), db-1 (Secret)"
    # Without a recap (Ansible stopped before it), every recorded failure counts.
    path.write_text("".join(json.dumps(e) + "\n" for e in events[:-1]))
    assert [f.host for f in runner.read_results(path, 2).failures] == ["web-1", "web-2", "db-1", "db-1"]
    # Nothing recorded: the exit code alone.
    assert runner.describe_failures(runner.read_results(tmp_path / "none.jsonl", 4)) == "see the output above"
