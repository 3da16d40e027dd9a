"""The sender's lines reach the TLS receiver tagged by host and program, and an outage loses none."""

import collections
import time
import uuid

import pytest

# The tests run on the sender; the receiver is reached through it.
testinfra_hosts = ["podman://molecule-pt-sender"]

RECEIVED = "/var/log/remote/papertrail.log"
RAILS_LOG = "/srv/bookshelf/shared/log/production.log"
LINES = 10_000


@pytest.fixture
def receiver(host):
    return host.get_host("podman://molecule-pt-receiver")


def wait_for(what, check, seconds=60):
    """Poll check() until it returns something truthy (a deadline, not a timed assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"gave up waiting for {what} after {seconds} s")


def received(receiver, needle):
    return receiver.run(f"grep -a -F -- {needle!r} {RECEIVED}").stdout.splitlines()


def test_rsyslog_runs_with_the_forwarding_rules(host):
    assert host.service("rsyslog").is_running and host.service("rsyslog").is_enabled
    assert host.run("rsyslogd -N1").rc == 0
    conf = host.file("/etc/rsyslog.d/50-farmhand-papertrail.conf").content_string
    assert 'StreamDriverAuthMode="x509/name"' in conf and 'queue.saveOnShutdown="on"' in conf


def test_a_logged_line_arrives_tagged_with_host_and_program(host, receiver):
    marker = uuid.uuid4().hex
    assert host.run(f"logger -t probe 'hello {marker}'").rc == 0
    lines = wait_for("the logged line at the receiver", lambda: received(receiver, marker))
    assert lines == [f"molecule-pt-sender probe: hello {marker}"]


def test_a_line_appended_to_the_app_log_arrives_under_its_program_name(host, receiver):
    marker = uuid.uuid4().hex
    assert host.run(f"echo 'Started GET \"/books\" {marker}' >> {RAILS_LOG}").rc == 0
    lines = wait_for("the Rails log line at the receiver", lambda: received(receiver, marker))
    assert lines == [f'molecule-pt-sender rails: Started GET "/books" {marker}']


def test_the_receiver_takes_tls_only(host, receiver):
    address = receiver.check_output("hostname -I").split()[0]
    plain, after = uuid.uuid4().hex, uuid.uuid4().hex
    # Plain TCP syslog to the TLS port: the handshake fails, the line goes nowhere...
    host.run(f"logger --tcp --server {address} --port 6514 -t plain 'plaintext {plain}'")
    # ...while a line sent afterwards through rsyslog (TLS) arrives.
    assert host.run(f"logger -t probe 'after {after}'").rc == 0
    wait_for("the line sent over TLS", lambda: received(receiver, after))
    assert received(receiver, plain) == []


def test_an_outage_and_a_restart_of_rsyslog_lose_no_line(host, receiver):
    run = uuid.uuid4().hex[:8]
    since = host.check_output("date +%s")
    # The endpoint goes away (its socket too, or journald's next line would start it again).
    assert receiver.run("systemctl stop syslog.socket rsyslog.service").rc == 0
    try:
        # The first line after the endpoint closed its end goes into that dead TLS connection
        # (the kernel accepts it, nobody reads it: plain syslog has no acknowledgement), so
        # uncounted warm-up lines go first, until the sender has noticed the outage.
        noticed = f"journalctl -q -t rsyslogd --since @{since} --no-pager | grep -c 'suspended'"

        def outage_noticed():
            host.run(f"logger -t reltest 'warm-up-{run}'")
            return host.run(noticed).stdout.strip() not in ("", "0")

        wait_for("the sender to notice the outage", outage_noticed)
        logged = host.run(f"seq -f 'reliability-{run} n=%g' 1 {LINES} | logger -t reltest")
        assert logged.rc == 0, logged.stderr
        # Every line is in the journal (what rsyslog was handed), then rsyslog restarts with
        # the endpoint still away: what it holds must be saved to disk and read back.
        journal = f"journalctl -q -t reltest --no-pager | grep -c 'reliability-{run} '"
        wait_for("the lines in the sender's journal", lambda: host.run(journal).stdout.strip() == str(LINES))
        assert host.run("systemctl restart rsyslog").rc == 0
        spooled = host.run("ls /var/spool/rsyslog/").stdout.split()
        assert any(name.startswith("papertrail.") for name in spooled), spooled
    finally:
        assert receiver.run("systemctl start rsyslog.service").rc == 0

    def numbers():
        out = receiver.run(f"grep -a -o 'reliability-{run} n=[0-9]*' {RECEIVED}").stdout
        return [int(line.rsplit("=", 1)[1]) for line in out.splitlines()]

    # Until every number is there, or nothing new came for a minute: then count what did.
    seen, last_change, deadline = 0, time.monotonic(), time.monotonic() + 300
    while seen < LINES and time.monotonic() - last_change < 60 and time.monotonic() < deadline:
        time.sleep(2)
        now_seen = len(set(numbers()))
        if now_seen != seen:
            seen, last_change = now_seen, time.monotonic()
    got = collections.Counter(numbers())
    missing = sorted(set(range(1, LINES + 1)) - set(got))
    duplicates = {n: c - 1 for n, c in got.items() if c > 1}
    print(
        f"\nRELIABILITY: {LINES} lines logged during an outage and a restart of rsyslog: "
        f"{len(set(got))} arrived, {len(missing)} missing {missing[:20]}, "
        f"{sum(duplicates.values())} duplicates {sorted(duplicates)[:20]}"
    )
    assert not missing, f"{len(missing)} lines missing (first: {missing[:20]})"
