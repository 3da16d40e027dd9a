"""The app's process types other than web and Sidekiq run under systemd as the role left them after
the side effect: ticker alone (scaled from two instances to one) in the second release, clock and
the type that could not boot gone, the Procfile command quoted exactly, secrets out of sight."""

import shlex

import pytest

testinfra_hosts = ["podman://molecule-app-processes"]

SECRET = "molecule-only-secret-4f1c9b2e7a"
TICKER = "demo-ticker@1.service"


def show(host, unit, *properties):
    out = host.check_output(f"systemctl show {' '.join('-p ' + p for p in properties)} {unit}")
    return dict(line.split("=", 1) for line in out.splitlines())


def main_pid(host, unit):
    pid = show(host, unit, "MainPID")["MainPID"]
    assert pid != "0", f"{unit} has no main process"
    return pid


def as_app(host, command):
    """Read a process's /proc entry as its own user: the container's root lacks CAP_SYS_PTRACE."""
    return host.check_output(f"runuser -u app -- {command}")


def test_ticker_runs_one_instance_as_the_app_user_in_the_second_release(host):
    assert show(host, TICKER, "ActiveState", "SubState", "UnitFileState") == {
        "ActiveState": "active",
        "SubState": "running",
        "UnitFileState": "enabled",
    }
    pid = main_pid(host, TICKER)
    assert host.check_output(f"ps -o user= -p {pid}") == "app"
    assert as_app(host, f"readlink /proc/{pid}/cwd") == "/srv/demo/releases/2"


def test_the_procfile_command_reaches_the_process_exactly(host):
    """Quotes, a $VARIABLE the shell expands, a % systemd leaves alone; bash replaced
    itself with the command."""
    pid = main_pid(host, TICKER)
    argv = as_app(host, f"cat /proc/{pid}/cmdline").split("\0")[:-1]
    assert argv == ["/bin/sh", "bin/tick", 'ticker said "hi"', "/srv/demo", "100%i"]


def test_the_unit_stops_with_term_and_gives_up_on_a_process_that_cannot_boot(host):
    props = show(host, TICKER, "KillMode", "KillSignal", "TimeoutStopUSec", "Restart", "RestartUSec",
                 "StartLimitBurst", "StartLimitIntervalUSec", "WorkingDirectory", "User", "Group",
                 "SyslogIdentifier", "PartOf")  # fmt: skip
    assert props == {
        "KillMode": "control-group",
        "KillSignal": "15",
        "TimeoutStopUSec": "20s",
        "Restart": "on-failure",
        "RestartUSec": "2s",
        "StartLimitBurst": "5",
        "StartLimitIntervalUSec": "35s",
        "WorkingDirectory": "/srv/demo/current",
        "User": "app",
        "Group": "app",
        "SyslogIdentifier": "demo-ticker",
        "PartOf": "demo-processes.target",
    }


def test_scaling_down_stopped_and_disabled_the_second_instance(host):
    assert show(host, "demo-ticker@2.service", "ActiveState", "UnitFileState") == {
        "ActiveState": "inactive",
        "UnitFileState": "disabled",
    }
    assert host.check_output("systemctl show -p Wants --value demo-processes.target") == TICKER
    assert host.service("demo-processes.target").is_enabled


@pytest.mark.parametrize("process_type", ["clock", "broken"])
def test_dropped_types_have_no_unit_and_no_process(host, process_type):
    assert not host.file(f"/etc/systemd/system/demo-{process_type}@.service").exists
    assert host.check_output(f"systemctl list-units --all --plain --no-legend 'demo-{process_type}@*'") == ""
    assert host.run(f"pgrep -f 'bin/(tick {process_type}|crash)'").rc == 1
    assert host.check_output("systemctl list-units --failed --plain --no-legend 'demo-*'") == ""


def test_a_unit_the_role_did_not_write_is_left_alone(host):
    assert host.file("/etc/systemd/system/demo-foreign@.service").exists


def test_each_type_logs_to_the_journal_under_its_name(host):
    ticker = host.check_output("journalctl -q --no-pager -o cat -t demo-ticker")
    assert 'ticker said "hi": tick in /srv/demo/releases/1 home=/srv/demo load=100%i every=1' in ticker
    assert 'ticker said "hi": tick in /srv/demo/releases/2 home=/srv/demo load=100%i every=1' in ticker
    # The release switch sent TERM, which the process handled itself.
    assert 'ticker said "hi": stopping' in ticker
    clock = host.check_output("journalctl -q --no-pager -o cat -t demo-clock")
    assert "clock: tick in /srv/demo/releases/2 home=/srv/demo load=0% every=2" in clock
    assert "clock: stopping" in clock
    broken = host.check_output("journalctl -q --no-pager -o cat -t demo-broken")
    assert "crash: cannot boot, no such queue" in broken


def test_the_process_gets_the_env_file(host):
    pid = main_pid(host, TICKER)
    environ = as_app(host, f"cat /proc/{pid}/environ").split("\0")
    assert f"DEMO_SECRET_TOKEN={SECRET}" in environ, "the env file's variables did not reach the process"
    assert "RAILS_ENV=production" in environ


def test_the_env_file_is_not_world_readable(host):
    env_file = host.file("/etc/farmhand/demo.env")
    assert env_file.user == "root"
    assert env_file.group == "app"
    assert env_file.mode & 0o007 == 0


def test_the_secret_is_in_no_journal_unit_or_world_readable_file(host):
    journal = host.run("journalctl -q --no-pager -o cat | grep -c -F -e " + shlex.quote(SECRET))
    assert journal.stdout.strip() == "0", "the secret is in the journal"
    units = host.run("grep -rl -F -e " + shlex.quote(SECRET) + " /etc/systemd /run/systemd/system")
    assert units.stdout == "", "the secret is in a unit file"
    assert SECRET not in host.check_output(f"systemctl show -p Environment {TICKER}")
    readable = host.run(
        "find /etc /srv /run /tmp /var /home /root -xdev -type f -perm -o=r -size -4M"
        " -exec grep -l -F -e " + shlex.quote(SECRET) + " {} +"
    )
    assert readable.stdout == "", f"world-readable files hold the secret: {readable.stdout}"
