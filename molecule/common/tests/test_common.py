"""What the common role promises, checked on the converged host."""

import pytest

# podman exec is many times faster than a round trip through Ansible for every command.
testinfra_hosts = ["podman://molecule-common"]

APP_ROOT = "/srv/bookshelf"


def test_base_packages_installed(host):
    for name in ("acl", "curl", "git", "rsync", "sudo", "chrony", "jq"):
        assert host.package(name).is_installed, name


def test_time_zone_is_utc(host):
    assert host.file("/etc/localtime").linked_to.endswith("Etc/UTC")
    assert host.check_output("date +%Z") == "UTC"


def test_chrony_uses_amazon_time_sync_first(host):
    conf = host.file("/etc/chrony/chrony.conf")
    assert conf.contains("^server 169.254.169.123 prefer iburst")
    assert host.service("chrony").is_enabled


def test_app_user_is_a_locked_system_account(host):
    user = host.user("app")
    assert user.group == "app"
    assert user.home == APP_ROOT
    assert user.shell == "/bin/bash"
    assert user.uid < 1000
    assert host.check_output("passwd -S app").split()[1] == "L"


@pytest.mark.parametrize(
    "path", ["", "/releases", "/shared", "/shared/log", "/shared/pids", "/shared/sockets"]
)
def test_release_layout(host, path):
    directory = host.file(APP_ROOT + path)
    assert directory.is_directory
    assert directory.user == "app"
    assert directory.group == "app"


def test_config_dir_is_private_to_root_and_app_group(host):
    conf = host.file("/etc/farmhand")
    assert conf.is_directory
    assert (conf.user, conf.group, conf.mode) == ("root", "app", 0o750)


def test_app_user_can_write_shared_but_not_config(host):
    with host.sudo("app"):
        assert host.run(f"touch {APP_ROOT}/shared/tmp/probe").rc == 0
        assert host.run("ls /etc/farmhand").rc == 0
        assert host.run("touch /etc/farmhand/probe").rc != 0


def test_journal_is_persistent(host):
    assert host.file("/var/log/journal").is_directory
    assert host.file("/etc/systemd/journald.conf.d/50-farmhand.conf").contains("^Storage=persistent")
    # journald writes to disk: a machine-id directory appears under /var/log/journal
    host.run("systemd-cat -t farmhand-probe echo persisted")
    host.run("journalctl --flush")
    assert host.run("ls /var/log/journal/$(cat /etc/machine-id)").rc == 0


def test_sshd_effective_config_is_hardened(host):
    settings = dict(
        line.split(" ", 1) for line in host.check_output("/usr/sbin/sshd -T").splitlines() if " " in line
    )
    assert settings["passwordauthentication"] == "no"
    assert settings["kbdinteractiveauthentication"] == "no"
    assert settings["permitrootlogin"] == "no"
    assert settings["pubkeyauthentication"] == "yes"
    assert settings["x11forwarding"] == "no"
    assert settings["maxauthtries"] == "3"


def test_key_login_works_and_passwords_are_refused(host):
    # A key for the login user, as on EC2, then a real SSH login over the loopback.
    host.run("rm -f /tmp/probe_key /tmp/probe_key.pub")
    host.check_output("ssh-keygen -q -t ed25519 -N '' -f /tmp/probe_key")
    host.check_output(
        "install -d -m 700 -o admin -g admin /home/admin/.ssh && "
        "cat /tmp/probe_key.pub > /home/admin/.ssh/authorized_keys && "
        "chown admin: /home/admin/.ssh/authorized_keys && chmod 600 /home/admin/.ssh/authorized_keys"
    )
    opts = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes"
    login = host.run(f"ssh {opts} -i /tmp/probe_key admin@127.0.0.1 'sudo -n id -u'")
    assert login.rc == 0, login.stderr
    assert login.stdout.strip() == "0"
    refused = host.run(
        f"ssh {opts} -o PreferredAuthentications=password,keyboard-interactive admin@127.0.0.1 true"
    )
    assert refused.rc != 0
    assert "Permission denied" in refused.stderr


def test_ansibles_modules_are_compiled_once_for_root(host):
    site = "/usr/local/lib/python3.11/dist-packages"
    importer = host.file(f"{site}/farmhand_ansiballz.py")
    assert (importer.user, importer.mode) == ("root", 0o644)
    assert host.file(f"{site}/farmhand-ansiballz.pth").content_string == "import farmhand_ansiballz\n"
    # Every interpreter on the host starts with the importer before zipimport...
    hooked = "import sys, farmhand_ansiballz as f; print(sys.path_hooks.index(f.PayloadImporter))"
    assert host.check_output(f"python3 -c '{hooked}'") == "0"
    # ...and the converge's tasks (root's) filled the cache: module_utils and the modules.
    cache = host.file("/var/cache/farmhand/ansiballz")
    assert (cache.user, cache.mode) == ("root", 0o700)
    assert len(cache.listdir()) > 50
    assert host.file("/etc/tmpfiles.d/farmhand-ansiballz.conf").contains(
        "^d /var/cache/farmhand/ansiballz 0700 root root 30d$"
    )
