"""Roles refuse bad variables before changing anything (argument_specs and asserts).

These run the roles against the controller itself (connection local) in a temporary directory,
so they need no containers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOK_BIN = str(Path(sys.executable).with_name("ansible-playbook"))


def play(
    tmp_path: Path, role: str, variables: str, check: bool = False, entry: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Apply a role (or one entry point of it, by include_role tasks_from) to the controller."""
    playbook = tmp_path / "play.yml"
    lines = "".join(f"        {line}\n" for line in variables.splitlines())
    if entry is None:
        body = f"  roles:\n    - role: {role}\n      vars:\n{lines}"
    else:
        body = (
            f"  tasks:\n    - name: Run {role} {entry}\n      ansible.builtin.include_role:\n"
            f"        name: {role}\n        tasks_from: {entry}\n      vars:\n{lines}"
        )
    playbook.write_text("- hosts: localhost\n  connection: local\n  gather_facts: false\n" + body)
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
    }
    cmd = [PLAYBOOK_BIN, "-i", "localhost,", str(playbook)] + (["--check"] if check else [])
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_app_env_writes_a_file_the_shell_reads_back(tmp_path):
    target = tmp_path / "conf" / "app.env"
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout.strip()
    value = 'it\'s "quoted" $HOME `x` \\ a=b\nline two ✓'
    proc = play(
        tmp_path,
        "app_env",
        f"app_env_file: {target}\napp_env_group: {group}\napp_env_exec_path: {tmp_path / 'app-env'}\n"
        f"app_env_vars: {json.dumps({'TRICKY': value})}",
    )
    assert proc.returncode == 0, proc.stdout
    assert oct(target.stat().st_mode & 0o777) == "0o640"
    shell = subprocess.run(
        ["sh", "-c", f'set -a; . {target}; printf %s "$TRICKY"'], capture_output=True, text=True, check=True
    )
    assert shell.stdout == value
    # app-env runs a program with exactly that environment.
    runner = subprocess.run([str(tmp_path / "app-env"), "printenv", "TRICKY"], capture_output=True, text=True)
    assert runner.stdout == value + "\n"


def test_app_env_values_never_appear_in_output_even_verbose(tmp_path):
    target = tmp_path / "app.env"
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True, check=True).stdout.strip()
    secret = "s3cr3t-value-do-not-print"
    playbook_vars = (
        f"app_env_file: {target}\napp_env_group: {group}\napp_env_exec_path: {tmp_path / 'app-env'}\n"
        f"app_env_vars:\n  SECRET: {secret}"
    )
    proc = play(tmp_path, "app_env", playbook_vars + "\n")
    assert proc.returncode == 0, proc.stdout
    assert secret in target.read_text()
    target.write_text("changed\n")
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
    }
    verbose = subprocess.run(
        [PLAYBOOK_BIN, "-i", "localhost,", str(tmp_path / "play.yml"), "-vvv", "--diff"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert verbose.returncode == 0, verbose.stdout
    assert "changed=1" in verbose.stdout
    assert secret not in verbose.stdout + verbose.stderr


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ("app_env_vars:\n  1BAD: x", "Invalid environment variable names: 1BAD"),
        ("app_env_vars:\n  BAD-NAME: x", "Invalid environment variable names: BAD-NAME"),
        ("app_env_vars: [not, a, dict]", "app_env_vars"),
    ],
)
def test_app_env_refuses_bad_input_before_writing(tmp_path, variables, message):
    target = tmp_path / "app.env"
    proc = play(tmp_path, "app_env", f"app_env_file: {target}\n{variables}")
    assert proc.returncode != 0
    assert message in proc.stdout
    assert not target.exists()


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ("common_ssh_port: not-a-port", "common_ssh_port"),
        ("common_ssh_permit_root_login: 'yes'", "common_ssh_permit_root_login"),
        ("common_journald_persistent: maybe", "common_journald_persistent"),
        ("common_app_shared_dirs: {a: b}", "common_app_shared_dirs"),
    ],
)
def test_common_refuses_bad_variables_before_any_task(tmp_path, variables, message):
    proc = play(tmp_path, "common", variables, check=True)
    assert proc.returncode != 0
    assert "Validating arguments against arg spec" in proc.stdout
    assert message in proc.stdout
    assert "Install the base packages" not in proc.stdout


def test_maintenance_entry_point_turns_the_flag_on_and_off_and_check_mode_changes_nothing(tmp_path):
    flag = tmp_path / "maintenance.on"
    on = f"rails_unicorn_maintenance: true\nrails_unicorn_maintenance_file: {flag}"
    checked = play(tmp_path, "rails_unicorn", on, check=True, entry="maintenance")
    assert checked.returncode == 0, checked.stdout
    assert "changed=1" in checked.stdout and not flag.exists()
    assert play(tmp_path, "rails_unicorn", on, entry="maintenance").returncode == 0
    assert flag.exists()
    again = play(tmp_path, "rails_unicorn", on, entry="maintenance")
    assert "changed=0" in again.stdout
    off = f"rails_unicorn_maintenance: false\nrails_unicorn_maintenance_file: {flag}"
    assert play(tmp_path, "rails_unicorn", off, entry="maintenance").returncode == 0
    assert not flag.exists()


@pytest.mark.parametrize(
    ("role", "entry", "variables", "message"),
    [
        ("rails_unicorn", "maintenance", "rails_unicorn_maintenance: maybe", "rails_unicorn_maintenance"),
        ("rails_unicorn", "maintenance", "rails_unicorn_root: /srv/x", "missing required arguments"),
        ("haproxy_lb", "server", "haproxy_lb_server_name: w1\nhaproxy_lb_server_state: drain", "drain"),
        ("haproxy_lb", "server", "haproxy_lb_server_state: enabled", "haproxy_lb_server_name"),
        (
            "haproxy_lb",
            "server",
            "haproxy_lb_server_name: w1\nhaproxy_lb_server_wait: soon",
            "haproxy_lb_server_wait",
        ),
        ("rails_unicorn", "restart", "rails_unicorn_listen_port: http", "rails_unicorn_listen_port"),
        ("cron_scheduler", "hold", "cron_scheduler_hold_state: paused", "cron_scheduler_hold_state"),
    ],
)
def test_entry_points_refuse_bad_variables_before_any_task(tmp_path, role, entry, variables, message):
    proc = play(tmp_path, role, variables, entry=entry)
    assert proc.returncode != 0
    assert "Validating arguments against arg spec" in proc.stdout
    assert message in proc.stdout
    assert "changed=" in proc.stdout and "changed=0" in proc.stdout


PGBACKREST_OK = "pgbackrest_s3_bucket: b\npgbackrest_cipher_pass: a-cipher-pass-of-24-chars"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (f"{PGBACKREST_OK}\npgbackrest_s3_uri_style: virtual", "pgbackrest_s3_uri_style"),
        (f"{PGBACKREST_OK}\npgbackrest_s3_key_type: static", "pgbackrest_s3_key_type"),
        (f"{PGBACKREST_OK}\npgbackrest_retention_full: many", "pgbackrest_retention_full"),
        (f"{PGBACKREST_OK}\npgbackrest_schedules: {{weekly: Sun}}", "weekly"),
        (f"{PGBACKREST_OK}\npgbackrest_compress_type: xz", "pgbackrest_compress_type"),
        (f"{PGBACKREST_OK}\npgbackrest_backup_standby: sometimes", "pgbackrest_backup_standby"),
        (f"{PGBACKREST_OK}\npgbackrest_peers: [{{name: bk-db-follower-1}}]", "address"),
        (f"{PGBACKREST_OK}\npgbackrest_tls_port: eighty", "pgbackrest_tls_port"),
    ],
)
def test_pgbackrest_refuses_bad_variables_before_any_task(tmp_path, variables, message):
    proc = play(tmp_path, "pgbackrest", variables, check=True)
    assert proc.returncode != 0
    assert "Validating arguments against arg spec" in proc.stdout
    assert message in proc.stdout
    assert "Install pgBackRest" not in proc.stdout


@pytest.mark.parametrize(
    "variables",
    [
        "pgbackrest_s3_bucket: b\npgbackrest_cipher_pass: short",
        "pgbackrest_cipher_pass: a-cipher-pass-of-24-chars",
        f"{PGBACKREST_OK}\npgbackrest_s3_key_type: shared",
    ],
)
def test_pgbackrest_refuses_no_bucket_a_short_cipher_pass_or_no_key_pair_without_showing_them(
    tmp_path, variables
):
    proc = play(tmp_path, "pgbackrest", variables, check=True)
    assert proc.returncode != 0
    assert "pgbackrest needs the bucket (pgbackrest_s3_bucket), a cipher pass of at least 20" in proc.stdout
    assert "a-cipher-pass-of-24-chars" not in proc.stdout
    assert "Install pgBackRest" not in proc.stdout


@pytest.mark.parametrize(
    "variables",
    [
        # A primary with no follower to read from.
        "pgbackrest_backup_standby: true\npgbackrest_tls_ca_cert: CA\npgbackrest_tls_ca_key: CA-KEY-0123",
        # A follower, but not the farm's CA.
        "pgbackrest_backup_standby: true\npgbackrest_peers: [{name: bk-db-follower-1, address: 10.0.0.2}]",
    ],
)
def test_pgbackrest_refuses_backups_from_a_follower_without_one_or_without_the_ca(tmp_path, variables):
    proc = play(tmp_path, "pgbackrest", f"{PGBACKREST_OK}\n{variables}", check=True)
    assert proc.returncode != 0
    assert "pgbackrest_backup_standby needs the farm's other database hosts" in proc.stdout
    assert "CA-KEY-0123" not in proc.stdout
    assert "Install pgBackRest" not in proc.stdout


@pytest.mark.parametrize(
    ("role", "variables", "message"),
    [
        ("redis", "redis_maxmemory_policy: allkeys-everything", "redis_maxmemory_policy"),
        ("redis", "redis_port: six-three-seven-nine", "redis_port"),
        ("redis", "redis_settings: [maxclients]", "redis_settings"),
        ("redis", "redis_appendonly: sometimes", "redis_appendonly"),
        (
            "pdf_toolchain",
            "pdf_toolchain_book_pages_renderer: wkhtmltopdf",
            "pdf_toolchain_book_pages_renderer",
        ),
        ("pdf_toolchain", "pdf_toolchain_imagemagick_limits: [2GiB]", "pdf_toolchain_imagemagick_limits"),
        ("pdf_toolchain", "pdf_toolchain_book_pages_timeout: soon", "pdf_toolchain_book_pages_timeout"),
        ("sidekiq_worker", "sidekiq_worker_processes: [{queues: [books]}]", "name"),
        ("sidekiq_worker", "sidekiq_worker_timeout: forever", "sidekiq_worker_timeout"),
        (
            "sidekiq_metrics",
            "sidekiq_metrics_farm: f\nsidekiq_metrics_lifecycle_drain: sometimes",
            "sidekiq_metrics_lifecycle_drain",
        ),
        (
            "sidekiq_metrics",
            "sidekiq_metrics_farm: f\nsidekiq_metrics_drain_interval: often",
            "sidekiq_metrics_drain_interval",
        ),
        (
            "sidekiq_worker",
            "sidekiq_worker_processes: [{name: books, queues: [b], concurrency: lots}]",
            "concurrency",
        ),
    ],
)
def test_new_roles_refuse_bad_variables_before_any_task(tmp_path, role, variables, message):
    proc = play(tmp_path, role, variables, check=True)
    assert proc.returncode != 0
    assert "Validating arguments against arg spec" in proc.stdout
    assert message in proc.stdout
    assert "changed=0" in proc.stdout


@pytest.mark.parametrize(
    ("role", "variables", "message"),
    [
        (
            "sidekiq_worker",
            "sidekiq_worker_processes: [{name: books, queues: [a]}, {name: books, queues: [b]}]",
            "each with a unique name",
        ),
        ("sidekiq_worker", "sidekiq_worker_processes: [{name: Books-1, queues: [a]}]", "lowercase letters"),
        (
            "sidekiq_worker",
            "sidekiq_worker_processes: [{name: books, queues: []}]",
            "non-empty list of queues",
        ),
        (
            "sidekiq_worker",
            "sidekiq_worker_processes: [{name: books, queues: [a], timeout: 0}]",
            "at least 1",
        ),
        (
            "sidekiq_worker",
            "sidekiq_worker_processes: [{name: books, queues: [a], config: ../shared/sidekiq.yml}]",
            "a config (if any) that is a path in the release",
        ),
        (
            "pdf_toolchain",
            "pdf_toolchain_book_pages_renderer: phantomjs\npdf_toolchain_phantomjs_enabled: false",
            "enable that renderer",
        ),
        ("pdf_toolchain", "pdf_toolchain_book_pages_viewport: wide", "WIDTHxHEIGHT"),
        ("sidekiq_metrics", "sidekiq_metrics_farm: f\nsidekiq_metrics_drain_command: []", "a drain command"),
        (
            "sidekiq_metrics",
            "sidekiq_metrics_farm: f\nsidekiq_metrics_drain_interval: 1",
            "a drain interval of 5 s",
        ),
    ],
)
def test_new_roles_refuse_inconsistent_settings_before_installing(tmp_path, role, variables, message):
    proc = play(tmp_path, role, variables, check=True)
    assert proc.returncode != 0
    assert message in proc.stdout
    assert "changed=0" in proc.stdout
    assert "Install" not in proc.stdout.split(message)[0].split("TASK")[-1]


def test_the_procfile_tasks_read_the_apps_sidekiq_config_in_the_live_release(tmp_path):
    """playbooks/tasks/procfile.yml on a worker host: the live release's Procfile, and the Sidekiq config
    file its line names (-C), read as `farm deploy` reads them; a file the release lacks is refused."""
    release = tmp_path / "app" / "current"
    (release / "config").mkdir(parents=True)
    (release / "Procfile").write_text(
        "web: bundle exec unicorn\nworker: bundle exec sidekiq -C config/workers.yml -t 90\n"
        "mailer: bundle exec sidekiq\n"
    )
    (release / "config" / "workers.yml").write_text(
        ":queues:\n  - books\n  - [default, 2]\nstaging:\n  :concurrency: 3\n"
    )
    result = tmp_path / "procfile.json"
    variables = {
        "farmhand_app_root": str(tmp_path / "app"),
        "farmhand_formation": {"mailer": {"count": 2}},
        "farmhand_rails_env": "staging",
    }
    save = {"content": "{{ farmhand_procfile | to_json }}", "dest": str(result), "mode": "0600"}
    tasks = [
        {"ansible.builtin.import_tasks": str(ROOT / "playbooks/tasks/procfile.yml")},
        {"name": "Keep what it read", "ansible.builtin.copy": save},
    ]
    play = {"name": "Read the Procfile", "hosts": "localhost", "connection": "local", "gather_facts": False}
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{**play, "vars": variables, "tasks": tasks}]))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    cmd = [PLAYBOOK_BIN, "-i", "localhost,", str(playbook)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout
    assert json.loads(result.read_text()) == {
        "declared": True,
        "sidekiq": [
            {
                "name": "worker",
                "config": "config/workers.yml",
                "timeout": 90,
                "queues": ["books", "default,2"],
                "concurrency": 3,
            },
            {"name": "mailer_1", "queues": ["default"]},
            {"name": "mailer_2", "queues": ["default"]},
        ],
        "services": [],
    }
    (release / "config" / "workers.yml").unlink()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "Procfile line 2 (worker): sidekiq -C config/workers.yml: the app has no such file" in proc.stdout


@pytest.mark.parametrize(
    ("entry", "variables", "message"),
    [
        ("restart", "sidekiq_worker_restart_processes: {books: 1}", "sidekiq_worker_restart_processes"),
        ("stop", "sidekiq_worker_stop_wait: maybe", "sidekiq_worker_stop_wait"),
    ],
)
def test_sidekiq_worker_entry_points_refuse_bad_variables(tmp_path, entry, variables, message):
    proc = play(tmp_path, "sidekiq_worker", variables, entry=entry)
    assert proc.returncode != 0
    assert "Validating arguments against arg spec" in proc.stdout
    assert message in proc.stdout


def _load(name: str, path: Path):
    """A Python file of a role (a filter plugin, a script it installs) as a module."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.SourceFileLoader(name, str(path))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(name, loader))
    loader.exec_module(module)
    return module


def _cron_filters():
    """The cron_scheduler role's schedule conversion (roles/cron_scheduler/filter_plugins/)."""
    return _load("cron_scheduler_filters", ROOT / "roles/cron_scheduler/filter_plugins/cron_scheduler.py")


@pytest.mark.parametrize(
    ("schedule", "calendars"),
    [
        ("every 10 minutes", ["*-*-* *:00/10:00"]),
        ("every minute", ["*-*-* *:*:00"]),
        ("every 2 hours", ["*-*-* 00/2:00:00"]),
        ("hourly", ["*-*-* *:00:00"]),
        ("Hourly at :15", ["*-*-* *:15:00"]),
        ("daily", ["*-*-* 00:00:00"]),
        ("daily at 7:30", ["*-*-* 07:30:00"]),
        ("every day at 23:05", ["*-*-* 23:05:00"]),
        ("*/15 * * * 1-5", ["Mon,Tue,Wed,Thu,Fri *-*-* *:0/15:00"]),
        ("0 3 * * *", ["*-*-* 03:00:00"]),
        ("5 4 * jan-mar mon", ["Mon *-1,2,3-* 04:05:00"]),
        ("0 0 * * 0,7", ["Sun *-*-* 00:00:00"]),
        # cron runs when the day of month OR the day of week matches: two calendars.
        ("30 2 1,15 * sun", ["*-*-1,15 02:30:00", "Sun *-*-* 02:30:00"]),
        ("@weekly", ["Sun *-*-* 00:00:00"]),
        ("@monthly", ["*-*-1 00:00:00"]),
    ],
)
def test_cron_schedules_become_calendars_systemd_reads(schedule, calendars):
    assert _cron_filters().to_calendar(schedule) == calendars
    checked = subprocess.run(["systemd-analyze", "calendar", *calendars], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        (
            '[{name: tick, schedule: "every 7 parsecs", command: "true"}]',
            "Invalid cron schedules: job tick: schedule 'every 7 parsecs': not cron syntax",
        ),
        ('[{name: a, schedule: "61 * * * *", command: "true"}]', "minute 61 is out of range 0-59"),
        ('[{name: a, schedule: "daily at 25:00", command: "true"}]', "'25:00' is not a time of day"),
        ('[{name: a, schedule: "@reboot", command: "true"}]', "@reboot is not supported"),
        ('[{name: a, command: "true"}]', "job a: give a schedule"),
        (
            '[{name: a, schedule: hourly, command: "true"}, {name: a, schedule: daily, command: "false"}]',
            "Duplicate cron job names: a",
        ),
        ('[{name: "Bad Name", schedule: hourly, command: "true"}]', "Invalid cron job names: Bad Name"),
        ('[{name: a, calendar: "not a calendar", command: "true"}]', "systemd cannot read the calendar of a"),
        ('[{name: a, schedule: hourly, command: "true", timeout: soon}]', "timeout"),
        ("[{name: a, schedule: hourly}]", "command"),
    ],
)
def test_cron_scheduler_refuses_bad_jobs_before_changing_anything(tmp_path, jobs, message):
    runner = tmp_path / "farmhand-cron"
    proc = play(
        tmp_path,
        "cron_scheduler",
        f"cron_scheduler_jobs: {jobs}\ncron_scheduler_runner_path: {runner}\n"
        f"cron_scheduler_config_file: {tmp_path / 'cron.json'}\ncron_scheduler_runs_dir: {tmp_path / 'runs'}",
    )
    assert proc.returncode != 0
    assert message in proc.stdout
    assert "changed=0" in proc.stdout
    assert not runner.exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("role", "variables", "message"),
    [
        ("papertrail", "papertrail_port: 6514", "Set papertrail_host and papertrail_port"),
        ("papertrail", "papertrail_host: logs.example.com", "Set papertrail_host and papertrail_port"),
        ("papertrail", "papertrail_host: logs.example.com\npapertrail_port: tls", "papertrail_port"),
        (
            "papertrail",
            "papertrail_host: h\npapertrail_port: 1\npapertrail_files: [{path: log/x.log, tag: rails}]",
            "Bad papertrail_files entries",
        ),
        (
            "papertrail",
            "papertrail_host: h\npapertrail_port: 1\npapertrail_files: [{path: /x.log, tag: 'two words'}]",
            "Bad papertrail_files entries",
        ),
        ("papertrail", "papertrail_host: h\npapertrail_port: 1\npapertrail_files: [{path: /x.log}]", "tag"),
        ("syslog_receiver", "syslog_receiver_port: 6514", "the receiver speaks TLS only"),
    ],
)
def test_log_roles_refuse_bad_variables_before_changing_anything(tmp_path, role, variables, message):
    proc = play(tmp_path, role, variables)
    assert proc.returncode != 0
    assert message in proc.stdout
    assert "changed=0" in proc.stdout
    assert "Install rsyslog" not in proc.stdout


def _cron_runner():
    """The cron_scheduler role's runner (files/farmhand-cron.py)."""
    return _load("farmhand_cron_runner", ROOT / "roles/cron_scheduler/files/farmhand-cron.py")


def test_a_run_waits_while_a_deploy_holds_the_jobs_and_ignores_a_stale_hold(tmp_path, capsys):
    """farmhand-cron's wait: no hold, no wait; a fresh hold, wait until the deploy lets go; a hold
    older than hold_max (a deploy failed before letting go), no wait."""
    runner = _cron_runner()
    hold = tmp_path / "deploy.hold"
    config = {"hold_file": str(hold), "hold_max": 300}
    runner.wait_for_deploy(config)
    assert capsys.readouterr().err == ""

    hold.write_text("held by a deploy\n")
    releases = threading.Timer(2.0, hold.unlink)
    releases.start()
    started = time.monotonic()
    runner.wait_for_deploy(config)
    waited = time.monotonic() - started
    releases.join()
    assert waited >= 1.5, waited
    assert "a deploy is switching releases; waiting" in capsys.readouterr().err

    hold.write_text("held by a deploy that failed\n")
    stale = time.time() - 600
    os.utime(hold, (stale, stale))
    started = time.monotonic()
    runner.wait_for_deploy(config)
    assert time.monotonic() - started < 1
    assert "ignoring a deploy's hold of 600 s" in capsys.readouterr().err


def _tasks(items: list) -> list[dict]:
    """Every task of a task file, blocks opened."""
    found = []
    for task in items or []:
        found.append(task)
        for key in ("block", "rescue", "always"):
            found.extend(_tasks(task.get(key, [])))
    return found


def test_every_package_a_role_installs_comes_without_its_recommends():
    """A host gets the packages its roles name and their dependencies, never what they recommend
    (for Ruby that was a C toolchain: 171 packages instead of 53); what a role needs, it names."""
    apt_tasks = [
        (path.relative_to(ROOT), task)
        for path in sorted(ROOT.glob("roles/*/tasks/*.yml"))
        for task in _tasks(yaml.safe_load(path.read_text()))
        if "ansible.builtin.apt" in task and task["ansible.builtin.apt"].get("name")
    ]
    assert len(apt_tasks) >= 15
    assert [
        str(path)
        for path, task in apt_tasks
        if task["ansible.builtin.apt"].get("install_recommends") is not False
    ] == []
