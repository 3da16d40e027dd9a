"""`farm run`, `console`, `ssh`, `scp`, `help` and shell completion, against moto's fake hosts with a
stand-in `ssh` and `scp` that record how they were called (as tests/core/test_cutover.py does)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import FARM_BIN, farm

from farmhand.cli import HerokuGroup, cli
from farmhand.commands.help import split_help
from farmhand.core.inventory import Host
from farmhand.core.ssh import connection, host_connection, remote_argv, scp_argv, ssh_argv

FAKE = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_SSH_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *args]) + "\\n")
dest = args[args.index("--") - 1] if "--" in args else args[-1]
address = dest.split("@")[-1].split(":")[0]
given = sys.stdin.read() if os.environ.get("FAKE_SSH_STDIN") else ""
print(f"out from {address}{': ' + given if given else ''}")
print(f"err from {address}", file=sys.stderr)
sys.exit(json.loads(os.environ.get("FAKE_SSH_EXIT", "{}")).get(address, 0))
"""


@pytest.fixture
def fake_ssh(aws_env, farms, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment with `ssh` and `scp` standing in for the real ones, and their call log."""
    bin_dir = tmp_path / "fake-ssh-bin"
    bin_dir.mkdir()
    for name in ("ssh", "scp"):
        (bin_dir / name).write_text(FAKE)
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "ssh.log"
    env = {**aws_env, "PATH": f"{bin_dir}{os.pathsep}{aws_env['PATH']}", "FAKE_SSH_LOG": str(log)}
    return env, log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def remote_of(call: list[str]) -> list[str]:
    """The remote command words of an ssh call (after `--`, as the remote shell splits them)."""
    return shlex.split(call[call.index("--") + 1])


def one_line_error(proc: subprocess.CompletedProcess[str], expect: str) -> None:
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("farm: error: "), proc.stderr
    assert expect in lines[0], lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr


# -- farm run and farm console -------------------------------------------------------------------


def test_run_falls_back_to_the_first_worker_and_says_so(fake_ssh, farms):
    env, log = fake_ssh
    worker = farms["demo-worker-cron-1"]["ip"]
    proc = farm("run", "-f", "demo", "--", "echo", "$GREETING", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"out from {worker}\n"
    assert proc.stderr.splitlines() == [
        "farm: farm 'demo' has no console host: using demo-worker-cron-1 (worker)",
        f"err from {worker}",
    ]
    (call,) = calls(log)
    assert call[0] == "ssh" and "-T" in call and f"admin@{worker}" in call
    remote = remote_of(call)
    assert remote[:5] == ["sudo", "-n", "-u", "app", "--"]
    # In the release, with app-env, the command line run by a shell there ($GREETING expands there).
    assert "/srv/bookshelf" in remote
    assert remote[-4:] == ["/usr/local/bin/app-env", "/bin/sh", "-c", "echo $GREETING"]


def test_run_exits_with_the_remote_status_and_pipes_stdin(fake_ssh, farms):
    env, _ = fake_ssh
    web = farms["demo-web-1"]["ip"]
    env = {**env, "FAKE_SSH_EXIT": json.dumps({web: 3}), "FAKE_SSH_STDIN": "1"}
    proc = subprocess.run(
        [str(FARM_BIN), "run", "-f", "demo", "-r", "web", "--", "cat"],
        env=env,
        input="rows\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 3
    assert proc.stdout == f"out from {web}: rows\n\n"
    assert proc.stderr == f"err from {web}\n"  # no note: the role was asked for


def test_console_is_rails_console_in_the_release(fake_ssh):
    env, log = fake_ssh
    proc = farm("console", "-f", "staging", "--", "--sandbox", env=env)
    assert proc.returncode == 0, proc.stderr
    assert remote_of(calls(log)[0])[-1] == "bin/rails console --sandbox"


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("run", "-f", "demo"), "no command given: farm run -f FARM -- COMMAND"),
        (("run", "-f", "demo", "-r", "db", "--", "ls"), "role 'db' does not run the app"),
        (("run", "-f", "demo", "-r", "console", "--", "ls"), "farm 'demo' has no hosts with role 'console'"),
        (("run", "-f", "demo", "-r", "nope", "--", "ls"), "unknown role 'nope'"),
        (("run", "-f", "dbonly", "--", "ls"), "farm 'dbonly' has no console, worker or web host"),
        (
            ("ssh", "-f", "demo", "nope"),
            "unknown host 'nope' in farm 'demo': hosts are demo-db-1, demo-web-1",
        ),
        (("ssh", "-f", "demo", "-r", "db_follower"), "farm 'demo' has no hosts with role 'db_follower'"),
        (("ssh", "-f", "demo", "-r", "web", "demo-web-1"), "give a HOST or -r ROLE, not both"),
        (("ssh", "-f", "demo", "--all"), "--all needs a command"),
        (("ssh", "-f", "demo", "--all", "demo-web-1", "--", "ls"), "--all runs on every host"),
        (("scp", "-f", "demo", "a", "b"), "neither 'a' nor 'b' names a host: write HOST:path on one side"),
        (("scp", "-f", "demo", "nope:/x", "."), "unknown host 'nope' in farm 'demo'"),
        (("scp", "-f", "demo", "demo-web-1:/x", "demo-web-2:/x"), "both sides name a host"),
        (("help", "nope"), "unknown command 'nope'"),
        (("completion", "tcsh"), "Invalid value for '{bash|zsh|fish}'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_reaches_no_host(fake_ssh, args, expect):
    env, log = fake_ssh
    one_line_error(farm(*args, env=env), expect)
    assert calls(log) == []


# -- farm ssh and farm scp -----------------------------------------------------------------------


def test_ssh_to_a_named_host_runs_the_command_line_there(fake_ssh, farms):
    env, log = fake_ssh
    proc = farm("ssh", "-f", "demo", "demo-web-2", "--", "df", "-h", "|", "tail", "-1", env=env)
    assert proc.returncode == 0, proc.stderr
    (call,) = calls(log)
    assert call[call.index("--") - 1] == f"admin@{farms['demo-web-2']['ip']}"
    assert call[call.index("--") + 1] == "df -h | tail -1"  # as ssh does: the remote shell parses it


def test_ssh_to_a_role_opens_a_shell_on_its_first_host(fake_ssh, farms):
    env, log = fake_ssh
    assert farm("ssh", "-f", "demo", "-r", "web", env=env).returncode == 0
    (call,) = calls(log)
    assert call[-1] == f"admin@{farms['demo-web-1']['ip']}" and "--" not in call


def test_ssh_with_only_a_command_goes_where_run_goes(fake_ssh, farms):
    env, log = fake_ssh
    proc = farm("ssh", "-f", "demo", "--", "uptime", env=env)
    assert proc.returncode == 0
    assert "using demo-worker-cron-1 (worker)" in proc.stderr
    assert calls(log)[0][-3:] == [f"admin@{farms['demo-worker-cron-1']['ip']}", "--", "uptime"]


def test_ssh_all_prefixes_every_line_and_fails_if_any_host_failed(fake_ssh, farms):
    env, log = fake_ssh
    ips = {
        name: farms[name]["ip"] for name in ("demo-web-1", "demo-web-2", "demo-worker-cron-1", "demo-db-1")
    }
    env = {**env, "FAKE_SSH_EXIT": json.dumps({ips["demo-web-2"]: 4})}
    proc = farm("ssh", "-f", "demo", "--all", "--", "uptime", env=env)
    assert proc.returncode == 4
    assert sorted(proc.stdout.splitlines()) == sorted(f"{n}: out from {ip}" for n, ip in ips.items())
    errors = proc.stderr.splitlines()
    assert sorted(errors[:-1]) == sorted(f"{n}: err from {ip}" for n, ip in ips.items())
    assert errors[-1] == "farm: error: failed on demo-web-2 (exit 4)"
    assert all("BatchMode=yes" in call and call[-1] == "uptime" for call in calls(log))

    web = farm("ssh", "-f", "demo", "-r", "web", "--all", "--", "uptime", env={**env, "FAKE_SSH_EXIT": "{}"})
    assert web.returncode == 0
    assert sorted(line.split(":")[0] for line in web.stdout.splitlines()) == ["demo-web-1", "demo-web-2"]


def test_scp_both_directions_and_recursive(fake_ssh, farms):
    env, log = fake_ssh
    ip = farms["demo-db-1"]["ip"]
    assert farm("scp", "-f", "demo", "demo-db-1:/etc/hostname", "./here", env=env).returncode == 0
    assert farm("scp", "-f", "demo", "-r", "./dir", "demo-db-1:", env=env).returncode == 0
    assert farm("scp", "-f", "demo", "./a:b", "demo-db-1:/tmp/a", env=env).returncode == 0
    down, up, colon = calls(log)
    assert down[0] == "scp" and down[-2:] == [f"admin@{ip}:/etc/hostname", "./here"] and "-r" not in down
    assert up[-3:] == ["-r", "./dir", f"admin@{ip}:."]
    assert colon[-2:] == ["./a:b", f"admin@{ip}:/tmp/a"]  # a slash before the colon: a local path


# -- reaching hosts as Ansible does ----------------------------------------------------------------


def test_host_vars_win_over_the_environment_as_in_ansible():
    hostvars = {
        "ansible_host": "10.0.0.9",
        "login": "deploy",
        "ansible_user": "{{ login }}",
        "ansible_port": 2222,
        "ansible_ssh_private_key_file": "/keys/farm",
        "ansible_ssh_common_args": "-o ProxyJump=bastion.example.com",
        "ansible_ssh_extra_args": "-o ServerAliveInterval=5",
    }
    env = {
        "ANSIBLE_PRIVATE_KEY_FILE": "/other",
        "ANSIBLE_SSH_COMMON_ARGS": "-o X=y",
        "ANSIBLE_REMOTE_USER": "nobody",
    }
    conn = connection("web-1", hostvars, env)
    assert ssh_argv(conn, tty=False)[5:] == [
        "-T", "-p", "2222", "-i", "/keys/farm", "-o", "ProxyJump=bastion.example.com",
        "-o", "ServerAliveInterval=5", "deploy@10.0.0.9",
    ]  # fmt: skip
    assert scp_argv(conn, ["web-1:x"], "y")[-8:] == [
        "-P", "2222", "-i", "/keys/farm", "-o", "ProxyJump=bastion.example.com", "web-1:x", "y",
    ]  # fmt: skip
    assert conn.scp_path("/tmp") == "deploy@10.0.0.9:/tmp"


def test_the_environment_fills_in_what_the_host_does_not_set():
    host = Host("db-1", ("db",), "i-1", "10.0.0.4", "running", "t3.small")
    env = {"ANSIBLE_REMOTE_USER": "admin", "ANSIBLE_REMOTE_PORT": "2200", "ANSIBLE_PRIVATE_KEY_FILE": "/k"}
    argv = remote_argv(host_connection(host, env), ["echo", "a b"])
    assert argv[0] == "ssh" and "StrictHostKeyChecking=accept-new" in argv
    assert argv[-7:] == ["-p", "2200", "-i", "/k", "admin@10.0.0.4", "--", "echo 'a b'"]


def test_a_template_that_cannot_be_worked_out_is_a_clear_error():
    from farmhand.core.errors import FarmError

    with pytest.raises(FarmError, match="cannot work out ansible_user for web-1"):
        connection("web-1", {"ansible_user": "{{ nowhere }}"}, {})


# -- help and completion ---------------------------------------------------------------------------


def test_every_command_has_help_with_an_example():
    ctx = cli.make_context("farm", [], resilient_parsing=True)
    assert isinstance(cli, HerokuGroup)
    missing = [name for name, cmd in cli.list_all(ctx) if not split_help(cmd.help or "").examples]
    assert missing == []


def test_help_is_herokus_layout(aws_env):
    proc = farm("help", "config:set", env=aws_env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Set config vars")
    assert lines[lines.index("USAGE") + 1].startswith("  $ farm config:set [OPTIONS]")
    assert "OPTIONS" in lines and "EXAMPLES" in lines
    examples = lines[lines.index("EXAMPLES") + 1 :]
    assert examples and all(e.startswith("  $ farm config:set") for e in examples if e.strip())
    assert "  $ farm local up -f demo" in farm("help", "local", "up", env=aws_env).stdout


@pytest.mark.parametrize(
    ("shell", "marker"), [("bash", "complete -o nosort -F"), ("zsh", "compdef"), ("fish", "complete")]
)
def test_completion_scripts(aws_env, shell, marker):
    proc = farm("completion", shell, env=aws_env)
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout and "_FARM_COMPLETE" in proc.stdout
    if shell == "bash":
        assert subprocess.run(["bash", "-n"], input=proc.stdout, text=True, check=False).returncode == 0


def bash_complete(env: dict[str, str], line: str) -> list[str]:
    """What bash offers for LINE<TAB>: the script sourced in a real bash, its function called as bash
    calls it (COMP_WORDS split at bash's word breaks, `:` among them)."""
    script = farm("completion", "bash", env=env).stdout
    driver = (
        f"{script}\n"
        f"COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}\n"
        "COMP_WORDS=(); COMP_CWORD=0\n"
        "_farm_completion farm\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    bin_dir = str(FARM_BIN.parent)
    env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"}
    proc = subprocess.run(["bash", "-c", driver], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


def test_bash_completes_commands_with_colons(aws_env):
    # Bash replaces only `s` (after the `:` word break): offering `set` makes the line config:set.
    assert bash_complete(aws_env, "farm config:s") == ["set"]
    assert "config:set" in bash_complete(aws_env, "farm conf")
    assert bash_complete(aws_env, "farm pg:backups:c") == ["capture"]
    assert bash_complete(aws_env, "farm help config:g") == ["get"]


def test_farms_roles_and_hosts_complete(aws_env, farms):
    assert bash_complete(aws_env, "farm ps -f d") == ["demo"]
    assert bash_complete(aws_env, "farm logs -f demo -r db_") == ["db_follower", "db_restore"]
    assert bash_complete(aws_env, "farm ssh -f demo demo-w") == []  # nothing listed the farm yet
    assert farm("ps", "-f", "demo", env=aws_env).returncode == 0  # fills the inventory's cache
    assert bash_complete(aws_env, "farm ssh -f demo demo-w") == [
        "demo-web-1",
        "demo-web-2",
        "demo-worker-cron-1",
    ]
    assert bash_complete(aws_env, "farm scp -f demo ./x demo-d") == ["demo-db-1:"]
    assert "staging" in bash_complete(aws_env, "farm ps -f ")  # a farm seen in the cache
    env = {**aws_env, "FARMHAND_FARM": "demo"}
    assert bash_complete(env, "farm pg:follow demo-db") == ["demo-db-1"]
