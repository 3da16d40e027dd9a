"""The env file is private, and systemd and the shell read every value back byte for byte."""

# podman exec is many times faster than a round trip through Ansible for every command.
testinfra_hosts = ["podman://molecule-app-env"]

ENV_FILE = "/etc/farmhand/bookshelf.env"
TRICKY = "a \"quoted\" $HOME `uname` back\\slash = 'single' and\nsecond line é ✓"


def test_env_file_is_readable_by_root_and_the_app_group_only(host):
    env = host.file(ENV_FILE)
    assert (env.user, env.group, env.mode) == ("root", "app", 0o640)
    assert host.file("/etc/farmhand").mode == 0o750


def test_shell_reads_values_back_exactly(host):
    out = host.check_output(f"sh -c 'set -a; . {ENV_FILE}; printf %s \"$TRICKY\"'")
    assert out == TRICKY
    assert (
        host.check_output(f"sh -c 'set -a; . {ENV_FILE}; printf %s \"$EQUALS|$PLAIN\"'")
        == "a=b=c|hello world"
    )


def test_systemd_reads_values_back_exactly(host):
    cmd = f"systemd-run --quiet --wait --pipe -p EnvironmentFile={ENV_FILE} /usr/bin/printenv TRICKY"
    assert host.check_output(cmd) == TRICKY
    cmd = f"systemd-run --quiet --wait --pipe -p EnvironmentFile={ENV_FILE} /usr/bin/printenv EQUALS"
    assert host.check_output(cmd) == "a=b=c"


def test_app_env_command_runs_a_program_with_the_environment(host):
    assert host.file("/usr/local/bin/app-env").mode == 0o755
    out = host.check_output("/usr/local/bin/app-env printenv TRICKY")
    assert out == TRICKY
    # The app's user may use it (it reads the file through the app group); others may not.
    assert host.check_output("runuser -u app -- /usr/local/bin/app-env printenv EQUALS") == "a=b=c"
    assert host.run("runuser -u nobody -- /usr/local/bin/app-env true").rc != 0
