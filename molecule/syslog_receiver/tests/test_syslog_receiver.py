"""The receiver takes syslog over TLS only, verifiable against its CA, and writes each line as
`<host> <program>: <message>` to its one file."""

import shlex
import time
import uuid

RECEIVED = "/var/log/remote/papertrail.log"
CA = "/etc/rsyslog-farmhand-receiver/ca.pem"

# As root inside the container: podman exec is many times faster than a round trip through Ansible
# for every command, and the checks read root's files.
testinfra_hosts = ["podman://molecule-syslog-receiver"]

# Sends one RFC 5424 line to the receiver, over TLS (verified: the certificate's name and CA) or
# over plain TCP, from the host itself.
SEND = """
import socket, ssl, sys
tls, line = sys.argv[1] == "tls", sys.argv[2]
sock = socket.create_connection(("127.0.0.1", 6514), timeout=10)
if tls:
    context = ssl.create_default_context(cafile=sys.argv[3])
    sock = context.wrap_socket(sock, server_hostname="molecule-syslog-receiver")
sock.sendall(("<14>1 2026-11-23T00:00:00Z probe-host probe - - - " + line + "\\n").encode())
sock.close()
"""


def send(host, mode, line):
    return host.run(f"python3 -c {shlex.quote(SEND)} {mode} {shlex.quote(line)} {CA}")


def arrived(host, needle, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = host.run(f"grep -aF -- {needle!r} {RECEIVED}").stdout.splitlines()
        if found:
            return found
        time.sleep(1)
    return []


def test_rsyslog_listens_on_the_tls_port(host):
    assert host.service("rsyslog").is_running and host.service("rsyslog").is_enabled
    assert host.run("rsyslogd -N1").rc == 0
    assert host.socket("tcp://6514").is_listening


def test_the_key_is_private(host):
    key = host.file("/etc/rsyslog-farmhand-receiver/key.pem")
    assert (key.user, key.mode) == ("root", 0o600)


def test_a_line_over_tls_is_written_with_host_and_program(host):
    marker = uuid.uuid4().hex
    sent = send(host, "tls", f"hello {marker}")
    assert sent.rc == 0, sent.stderr
    assert arrived(host, marker) == [f"probe-host probe: hello {marker}"]


def test_a_line_over_plain_tcp_is_refused(host):
    marker = uuid.uuid4().hex
    send(host, "plain", f"plain {marker}")
    later = uuid.uuid4().hex
    assert send(host, "tls", f"after {later}").rc == 0
    assert arrived(host, later)  # the TLS line after it arrived, the plain one never did
    assert host.run(f"grep -caF -- {marker!r} {RECEIVED}").stdout.strip() == "0"


def test_the_receivers_own_logs_stay_out_of_the_file(host):
    marker = uuid.uuid4().hex
    host.run(f"logger -t local-probe {marker}")
    later = uuid.uuid4().hex
    assert send(host, "tls", f"after {later}").rc == 0
    assert arrived(host, later)
    assert host.run(f"grep -caF -- {marker!r} {RECEIVED}").stdout.strip() == "0"
