"""`farm ssh` and `farm scp`, against moto's fake hosts with a stand-in `ssh` and `scp` that record
how they were called."""

from __future__ import annotations

import json

from conftest import calls, farm


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
