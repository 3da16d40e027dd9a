"""Drift reports (`farm converge --check --json`): the callback, the report, the exit codes, Markdown.

No farm: the callback runs in a real ansible-playbook against localhost, and the CLI runs with a
stand-in ansible-playbook that replays recorded callback output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import OK_RECAP, assert_ok, counts, fake_playbook, farm

from farmhand import drift_summary
from farmhand.core import drift, runner

# -- recorded callback output (lines the farmhand_results callback wrote on a local farm) ----------

START = {"event": "start", "playbook": "playbooks/site.yml"}
NGINX_SITE = {
    "event": "changed",
    "host": "demo-web-1",
    "play": "Serve the app with nginx and Unicorn",
    "role": "rails_unicorn",
    "task": "Write the nginx site",
    "action": "ansible.builtin.template",
    "handler": False,
    "censored": False,
    "path": "/etc/nginx/sites-available/bookshelf",
    "items": [],
    "diff": [
        {
            "before": "server {\n  listen 80;\n  client_max_body_size 10m;\n}\n",
            "after": "server {\n  listen 80;\n}\n",
            "before_header": "/etc/nginx/sites-available/bookshelf",
            "after_header": "/tmp/ansible-local/source",
        }
    ],
}
RELOAD_NGINX = {
    **NGINX_SITE,
    "task": "Reload nginx",
    "action": "ansible.builtin.systemd_service",
    "handler": True,
    "path": None,
    "diff": [],
}
ENV_FILE = {
    "event": "changed",
    "host": "demo-web-2",
    "play": "Prepare the app hosts (packages, environment, PgBouncer)",
    "role": "app_env",
    "task": "Write the app's env file",
    "action": "ansible.builtin.template",
    "handler": False,
    "censored": True,
}
MODE = {
    **NGINX_SITE,
    "host": "demo-web-2",
    "task": "Create the release layout",
    "role": "common",
    "action": "ansible.builtin.file",
    "path": None,
    "items": ["/srv/bookshelf/releases", "/srv/bookshelf/shared"],
    "diff": [
        {
            "before": {"path": "/srv/bookshelf/releases", "mode": "0755"},
            "after": {"path": "/srv/bookshelf/releases", "mode": "0750"},
        },
        {
            "before": {"path": "/srv/bookshelf/shared", "owner": "root"},
            "after": {"path": "/srv/bookshelf/shared", "owner": "app"},
        },
    ],
}
UNREACHABLE = {
    "event": "unreachable",
    "host": "demo-db-1",
    "play": "Apply the base to every host",
    "role": None,
    "task": "Gathering Facts",
    "action": "ansible.builtin.gather_facts",
    "handler": False,
    "censored": False,
    "path": None,
    "msg": "Failed to connect to the host via ssh: ssh: connect to host 10.0.0.7 port 22: No route\nmore",
}
END = {"event": "end"}


def recap(**changed: int) -> dict[str, dict[str, int]]:
    return {
        host.replace("_", "-"): {"ok": 10, "changed": n, "failed": 0, "unreachable": 0}
        for host, n in changed.items()
    }


def test_no_change_is_exit_0_with_an_empty_report():
    report = drift.build_report("demo", True, [START, END], recap(demo_web_1=0, demo_web_2=0), 0)
    assert report.exit_code == drift.Exit.OK == 0
    payload = report.as_dict()
    assert payload["status"] == "clean"
    assert payload["hosts"] == {} and payload["changed"] == []
    assert payload["checked"] == ["demo-web-1", "demo-web-2"]
    assert report.summary() == "no drift: 2 hosts match the playbooks"


def test_drift_is_exit_3_and_names_each_host_and_task():
    events = [START, NGINX_SITE, ENV_FILE, MODE, RELOAD_NGINX, END]
    report = drift.build_report("demo", True, events, recap(demo_web_1=2, demo_web_2=2), 0)
    assert report.exit_code == drift.Exit.DRIFT == 3
    payload = report.as_dict()
    assert payload["status"] == "drift" and payload["changed"] == ["demo-web-1", "demo-web-2"]
    web1 = payload["hosts"]["demo-web-1"]
    assert web1["changes"] == [
        {
            "play": "Serve the app with nginx and Unicorn",
            "role": "rails_unicorn",
            "task": "Write the nginx site",
            "action": "ansible.builtin.template",
            "path": "/etc/nginx/sites-available/bookshelf",
            "items": [],
            "diff": {"added": 0, "removed": 1, "attributes": []},
            "censored": False,
        }
    ]
    assert web1["handlers"] == ["Reload nginx"]  # a consequence of the change, not drift of its own
    web2 = payload["hosts"]["demo-web-2"]["changes"]
    assert [c["task"] for c in web2] == ["Write the app's env file", "Create the release layout"]
    assert web2[0]["censored"] is True and web2[0]["diff"] is None and web2[0]["path"] is None
    assert web2[1]["items"] == ["/srv/bookshelf/releases", "/srv/bookshelf/shared"]
    assert web2[1]["diff"] == {"added": 0, "removed": 0, "attributes": ["mode", "owner"]}
    assert report.summary() == (
        "2 hosts drifted: demo-web-1 (Write the nginx site), "
        "demo-web-2 (Write the app's env file, Create the release layout)"
    )


def test_a_template_in_check_mode_is_reported_by_its_file_on_the_host():
    """As a check run records it: no dest in the result, the rendered source in the after header."""
    event = {
        **NGINX_SITE,
        "path": None,
        "diff": [
            {
                **NGINX_SITE["diff"][0],
                "after_header": "/root/.ansible/tmp/ansible-local-29864_wxy8f78/tmpsa67h9_9/site.j2",
            }
        ],
    }
    report = drift.build_report("demo", True, [START, event, END], recap(demo_web_1=1), 0)
    (change,) = report.as_dict()["hosts"]["demo-web-1"]["changes"]
    assert change["path"] == "/etc/nginx/sites-available/bookshelf"


def test_the_summary_names_three_tasks_per_host_at_most():
    events = [START, *({**NGINX_SITE, "task": f"Task {n}"} for n in range(5)), END]
    report = drift.build_report("demo", True, events, recap(demo_web_1=5), 0)
    assert report.summary() == "1 host drifted: demo-web-1 (Task 0, Task 1, Task 2, +2 more)"


def test_the_report_never_carries_file_contents():
    report = drift.build_report("demo", True, [START, NGINX_SITE, END], recap(demo_web_1=1), 0)
    text = json.dumps(report.as_dict())
    assert "client_max_body_size" not in text and "listen 80" not in text


def test_a_converge_that_changes_is_exit_0_outside_check_mode():
    report = drift.build_report("demo", False, [START, NGINX_SITE, END], recap(demo_web_1=1), 0)
    assert report.exit_code == drift.Exit.OK
    assert report.summary() == "1 host changed: demo-web-1 (Write the nginx site)"


def test_an_unreachable_host_is_exit_1_even_with_drift_elsewhere():
    events = [START, NGINX_SITE, UNREACHABLE, END]
    counts = recap(demo_web_1=1, demo_db_1=0)
    counts["demo-db-1"]["unreachable"] = 1
    report = drift.build_report("demo", True, events, counts, 4)
    assert report.exit_code == drift.Exit.FAILED == 1
    payload = report.as_dict()
    assert payload["status"] == "failed" and payload["failed"] == ["demo-db-1"]
    assert payload["changed"] == ["demo-web-1"]
    (failure,) = payload["hosts"]["demo-db-1"]["failures"]
    assert failure["unreachable"] is True and failure["task"] == "Gathering Facts"
    assert failure["message"].startswith("Failed to connect") and "more" not in failure["message"]


def test_a_failure_rescued_by_a_block_is_not_a_failure():
    failed = {**UNREACHABLE, "event": "failed", "host": "demo-web-1", "msg": "rescued"}
    report = drift.build_report("demo", True, [START, failed, END], recap(demo_web_1=0), 0)
    assert report.exit_code == drift.Exit.OK and report.as_dict()["hosts"] == {}


def test_a_run_the_callback_never_saw_is_a_failure():
    report = drift.build_report("demo", True, [], {}, 0)
    assert report.exit_code == drift.Exit.FAILED


def test_a_host_the_recap_counts_changed_is_drift_even_without_its_task():
    report = drift.build_report("demo", True, [START, END], recap(demo_web_1=1), 0)
    assert report.exit_code == drift.Exit.DRIFT and report.changed_hosts == ["demo-web-1"]


def test_diff_summaries_count_lines_and_name_attributes():
    assert drift.summarize_diff([{"before": "a\nb\n", "after": "a\nc\nd\n"}]) == drift.DiffSummary(2, 1)
    assert drift.summarize_diff([{"prepared": "--- a\n+++ b\n+new\n-old\n-older\n"}]) == drift.DiffSummary(
        1, 2
    )
    assert drift.summarize_diff([{"before": {"state": "absent"}, "after": {"state": "file"}}]) == (
        drift.DiffSummary(attributes=("state",))
    )
    assert drift.summarize_diff([{"before": "same\n", "after": "same\n"}]) is None
    assert drift.summarize_diff([]) is None


# -- the callback in a real ansible-playbook run (localhost, no farm) ----------------------------

SECRET = "s3cr3t-Never-In-The-Report-42"
PLAYBOOK = """---
- name: Drift on localhost
  hosts: all
  gather_facts: false
  tasks:
    - name: Write the greeting
      ansible.builtin.copy:
        content: "hello\\n"
        dest: "{{ workdir }}/greeting"
        mode: "0600"
      notify: Announce the greeting

    - name: Write the password file
      ansible.builtin.copy:
        content: "{{ password }}\\n"
        dest: "{{ workdir }}/password"
        mode: "0600"
      no_log: true

    - name: Tighten the files
      ansible.builtin.file:
        path: "{{ workdir }}/{{ item }}"
        mode: "0600"
      loop: [greeting, untouched]

    - name: Try something that may fail
      ansible.builtin.command: /bin/false
      check_mode: false
      changed_when: false
      ignore_errors: true

  handlers:
    - name: Announce the greeting
      ansible.builtin.command: /bin/true
      check_mode: false
      changed_when: true
"""


def prepare(tmp_path: Path) -> Path:
    """A work dir the playbook finds out of shape: the greeting differs, its mode too."""
    work = tmp_path / "work"
    work.mkdir()
    for name, text, mode in (
        ("greeting", "hi\n", 0o644),
        ("password", "old\n", 0o644),
        ("untouched", "x\n", 0o600),
    ):
        (work / name).write_text(text)
        (work / name).chmod(mode)
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    (tmp_path / "ansible.cfg").write_text("[defaults]\nretry_files_enabled = false\n")
    return work


def run_local_playbook(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """PLAYBOOK against localhost with the farmhand_results callback enabled as `farm converge` does."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    base["ANSIBLE_CONFIG"] = str(tmp_path / "ansible.cfg")
    kept = tmp_path / "events.jsonl"
    with runner.recording(tmp_path, base) as (env, events):
        proc = subprocess.run(
            [
                str(Path(sys.executable).with_name("ansible-playbook")),
                *("-i", "localhost,", "-c", "local"),
                *("-e", f"ansible_python_interpreter={sys.executable}"),
                *("-e", f"workdir={tmp_path / 'work'}", "-e", f"password={SECRET}"),
                "site.yml",
                *args,
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        kept.write_text(events.read_text() if events.exists() else "")
    return proc, kept


def test_the_callback_records_what_check_mode_would_change_and_censors_no_log(tmp_path):
    work = prepare(tmp_path)
    proc, events_file = run_local_playbook(tmp_path, "--check", "--diff")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert SECRET not in events_file.read_text()
    events = drift.read_events(events_file)
    report = drift.build_report("local", True, events, {"localhost": {"changed": 3}}, proc.returncode)
    assert report.exit_code == drift.Exit.DRIFT
    payload = report.as_dict()
    assert SECRET not in json.dumps(payload)
    host = payload["hosts"]["localhost"]
    assert [(c["task"], c["censored"]) for c in host["changes"]] == [
        ("Write the greeting", False),
        ("Write the password file", True),
        ("Tighten the files", False),
    ]
    greeting, password, tighten = host["changes"]
    assert greeting["play"] == "Drift on localhost" and greeting["action"] == "ansible.builtin.copy"
    assert greeting["path"] == str(work / "greeting")
    assert greeting["diff"] == {"added": 1, "removed": 1, "attributes": []}
    assert password["path"] is None and password["diff"] is None and password["items"] == []
    assert tighten["items"] == ["greeting"]  # `untouched` is 0600 already
    assert tighten["diff"] == {"added": 0, "removed": 0, "attributes": ["mode"]}
    assert host["handlers"] == ["Announce the greeting"]
    assert host["failures"] == []  # the ignored error is not one
    assert (work / "greeting").read_text() == "hi\n"  # check mode changed nothing
    assert (work / "password").read_text() == "old\n"


def test_the_callback_reports_no_drift_once_applied(tmp_path):
    prepare(tmp_path)
    applied, events_file = run_local_playbook(tmp_path)
    assert applied.returncode == 0, applied.stdout
    assert drift.build_report("local", False, drift.read_events(events_file), {}, 0).changed_hosts == [
        "localhost"
    ]
    proc, events_file = run_local_playbook(tmp_path, "--check", "--diff")
    assert proc.returncode == 0, proc.stdout
    report = drift.build_report(
        "local", True, drift.read_events(events_file), {"localhost": {"changed": 0}}, proc.returncode
    )
    assert report.exit_code == drift.Exit.OK and report.as_dict()["hosts"] == {}


# -- the CLI, with a stand-in ansible-playbook replaying recorded callback output ----------------


def replaying(
    tmp_path: Path, events: list[dict], stats: dict[str, dict[str, int]], exit_code: int = 0
) -> str:
    """A fake ansible-playbook's body: print a PLAY RECAP of STATS, append EVENTS (the END one with
    STATS) to the callback's file."""
    recorded = tmp_path / "recorded.jsonl"
    lines = [{**e, "stats": stats} if e.get("event") == "end" else e for e in events]
    recorded.write_text("".join(json.dumps(e) + "\n" for e in lines))
    recap_lines = "".join(
        f"echo '{host} : {' '.join(f'{k}={v}' for k, v in c.items())}'\n" for host, c in stats.items()
    )
    return (
        f'echo "$ANSIBLE_CALLBACKS_ENABLED $ANSIBLE_CALLBACK_PLUGINS" > "{tmp_path}/callback-env"\n'
        f'/bin/cat "{recorded}" >> "$FARMHAND_RESULTS_FILE"\n'
        "echo 'TASK [rails_unicorn : Write the nginx site] *****'\n"
        "echo 'PLAY RECAP *****'\n"
        f"{recap_lines}"
        f"exit {exit_code}\n"
    )


def recap_line(
    host: str, changed: int = 0, failed: int = 0, unreachable: int = 0
) -> dict[str, dict[str, int]]:
    return {host: counts(changed=changed, failed=failed, unreachable=unreachable)}


CLEAN = recap_line("demo-web-1") | recap_line("demo-web-2")


def test_check_without_drift_exits_0_with_an_empty_report_alone_on_stdout(aws_env, farms, tmp_path):
    path, calls = fake_playbook(tmp_path, replaying(tmp_path, [START, END], CLEAN))
    proc = farm(
        "converge",
        "-f",
        "demo",
        "--role",
        "web",
        "--check",
        "--diff",
        "--json",
        env={**aws_env, "PATH": path},
    )
    assert_ok(proc)
    report = json.loads(proc.stdout)  # nothing else on stdout: progress went to stderr
    assert report == {
        "farm": "demo",
        "check": True,
        "status": "clean",
        "exit_code": 0,
        "checked": ["demo-web-1", "demo-web-2"],
        "changed": [],
        "failed": [],
        "hosts": {},
    }
    assert "PLAY RECAP" in proc.stderr and "no drift: 2 hosts match the playbooks" in proc.stderr
    assert calls.read_text().split() == [
        "playbooks/site.yml",
        "--limit",
        "farm_demo:&role_web",
        "--check",
        "--diff",
    ]
    enabled, plugins = (tmp_path / "callback-env").read_text().split()
    assert enabled == "farmhand_results"
    assert Path(plugins.split(os.pathsep)[0], "farmhand_results.py").is_file()


def test_check_with_drift_exits_3_and_reports_the_host_and_task(aws_env, farms, tmp_path):
    events = [START, NGINX_SITE, RELOAD_NGINX, END]
    path, _ = fake_playbook(
        tmp_path, replaying(tmp_path, events, recap_line("demo-web-1", 2) | recap_line("demo-web-2"))
    )
    env = {**aws_env, "PATH": path}
    proc = farm("converge", "-f", "demo", "--check", "--diff", "--json", env=env)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert not [line for line in proc.stderr.splitlines() if line.startswith("farm: error")]
    report = json.loads(proc.stdout)
    assert report["status"] == "drift" and report["exit_code"] == 3
    assert report["changed"] == ["demo-web-1"]
    assert [c["task"] for c in report["hosts"]["demo-web-1"]["changes"]] == ["Write the nginx site"]
    human = farm("converge", "-f", "demo", "--check", env=env)
    assert human.returncode == 3
    assert "1 host drifted: demo-web-1 (Write the nginx site)" in human.stdout
    assert human.stderr == ""


def test_a_failed_check_exits_1_and_still_prints_its_report(aws_env, farms, tmp_path):
    body = replaying(
        tmp_path,
        [START, NGINX_SITE, {**UNREACHABLE, "host": "demo-web-2"}, END],
        recap_line("demo-web-1", 1) | recap_line("demo-web-2", unreachable=1),
        exit_code=4,
    )
    path, _ = fake_playbook(tmp_path, body)
    proc = farm("converge", "-f", "demo", "--check", "--json", env={**aws_env, "PATH": path})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "failed" and report["failed"] == ["demo-web-2"]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("farm: error")]
    # The task comes from the callback's record of the failure, as from a real run's `fatal:` line.
    assert errors == ["farm: error: check failed on demo-web-2 (Gathering Facts)"]


def test_a_check_the_callback_never_saw_exits_1(aws_env, farms, tmp_path):
    # An ansible-playbook that never loads the callback: it prints a recap, records nothing.
    path, _ = fake_playbook(tmp_path, "echo 'PLAY RECAP *****'\necho 'demo-web-1 : ok=5 changed=2'\n")
    proc = farm("converge", "-f", "demo", "--check", env={**aws_env, "PATH": path})
    assert proc.returncode == 1
    assert "farm: error: no report: Ansible's farmhand_results callback recorded nothing" in proc.stderr


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("-f", "nope"), "unknown farm 'nope'"),
        (("-f", "Bad Farm"), "invalid farm name 'Bad Farm'"),
        (("-f", "demo", "--role", "console"), "farm 'demo' has no hosts with role 'console'"),
        (("-f", "demo", "--role", "bogus"), "unknown role 'bogus'"),
        (("-f", "halted"), "farm 'halted' has no running hosts"),
        (("-f", "demo", "--jsn"), "No such option '--jsn'"),
    ],
    ids=["unknown-farm", "bad-name", "role-without-hosts", "unknown-role", "all-stopped", "typo"],
)
def test_bad_input_to_a_check_is_exit_2_with_nothing_on_stdout(aws_env, farms, tmp_path, args, expect):
    path, calls = fake_playbook(tmp_path, OK_RECAP)
    proc = farm("converge", *args, "--check", "--diff", "--json", env={**aws_env, "PATH": path})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("farm: error: ") and expect in proc.stderr
    assert not calls.exists()  # ansible-playbook never ran


# -- Markdown for the job summary ----------------------------------------------------------------


def test_markdown_summary_of_a_drift_report(tmp_path):
    events = [START, NGINX_SITE, RELOAD_NGINX, ENV_FILE, MODE, UNREACHABLE, END]
    counts = recap(demo_web_1=2, demo_web_2=2, demo_db_1=0)
    counts["demo-db-1"]["unreachable"] = 1
    report = drift.build_report("demo", True, events, counts, 4).as_dict()
    (tmp_path / "drift-demo.json").write_text(json.dumps(report))
    markdown = drift_summary.render_file(tmp_path / "drift-demo.json")
    assert markdown.splitlines()[0] == "### demo: check failed"
    assert "3 hosts checked; 2 would change; 1 failed." in markdown
    assert (
        "| demo-web-1 | Write the nginx site | rails_unicorn | Serve the app with nginx and Unicorn "
        "| /etc/nginx/sites-available/bookshelf | +0 -1 lines |" in markdown
    )
    assert "| demo-web-2 | Write the app's env file (censored: no_log) | app_env |" in markdown
    assert "[/srv/bookshelf/releases, /srv/bookshelf/shared]" in markdown
    assert "- demo-web-1 would then run: Reload nginx" in markdown
    assert "| demo-db-1 | Gathering Facts (unreachable) | Failed to connect to the host via ssh:" in markdown


def test_markdown_summary_of_a_clean_report_and_of_no_report(tmp_path):
    clean = drift.build_report("prod", True, [START, END], recap(prod_web_1=0), 0).as_dict()
    (tmp_path / "drift-prod.json").write_text(json.dumps(clean))
    (tmp_path / "drift-empty.json").write_text("")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "farmhand.drift_summary",
            "drift-prod.json",
            "drift-empty.json",
            "drift-gone.json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "### prod: no drift\n\n1 hosts checked; 0 would change; 0 failed." in proc.stdout
    assert "| Host |" not in proc.stdout
    assert "### drift-empty.json: no report" in proc.stdout
    assert "### drift-gone.json: no report" in proc.stdout


def test_markdown_cells_escape_pipes():
    assert drift_summary.cell("a | b\nc") == "a \\| b c"
    assert drift_summary.cell(None) == "-"
