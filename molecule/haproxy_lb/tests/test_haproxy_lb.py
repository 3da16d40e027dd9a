"""The load balancer forwards to healthy web hosts and obeys the runtime API."""

# podman exec is many times faster than a round trip through Ansible for every command.
testinfra_hosts = ["podman://molecule-lb"]

SOCKET = "/run/haproxy/admin.sock"


def admin(host, command):
    script = (
        "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
        "s.sendall((sys.argv[2]+'\\n').encode()); print(s.makefile().read())"
    )
    return host.check_output(f'python3 -c "{script}" {SOCKET} "{command}"')


def server_state(host):
    # `show servers state` columns: ... srv_name(4) srv_addr(5) srv_op_state(6) srv_admin_state(7)
    for line in admin(host, "show servers state web").splitlines():
        fields = line.split()
        if len(fields) > 7 and fields[3] == "molecule-lb-web":
            return int(fields[5]), int(fields[6])
    raise AssertionError("server not found")


def wait_up(host):
    host.run("for i in $(seq 30); do curl -sf http://localhost/health && break; sleep 1; done")


def test_a_redirect_passes_the_health_check(host):
    """The stand-in app answers its health check with a 302, as a login redirect does."""
    wait_up(host)
    assert host.check_output("curl -s -o /dev/null -w '%{http_code}' http://localhost/health") == "302"
    assert server_state(host)[0] == 2  # SRV_ST_RUNNING


def test_the_app_gets_the_clients_host_and_scheme_as_an_aws_load_balancer_gives_them(host):
    wait_up(host)
    seen = host.check_output("curl -s -H 'Host: shop.example.test:8443' http://localhost/headers")
    fields = dict(field.split("=", 1) for field in seen.split())
    assert fields["host"] == "shop.example.test:8443"
    assert fields["proto"] == "http"
    assert fields["for"] == "127.0.0.1"
    # A client's own X-Forwarded-Proto does not reach the app: the load balancer says how it came.
    spoofed = host.check_output("curl -s -H 'X-Forwarded-Proto: https' http://localhost/headers")
    assert "proto=http " in spoofed


def test_requests_reach_the_web_host(host):
    wait_up(host)
    assert host.check_output("curl -s http://localhost/") == "served by molecule-lb-web"


def test_least_connections_and_health_checks_are_configured(host):
    cfg = host.file("/etc/haproxy/haproxy.cfg")
    assert cfg.contains("balance leastconn")
    assert cfg.contains("http-check send meth GET uri /health")
    assert cfg.contains(r"http-check expect rstatus \^\[23\]")
    assert host.run("haproxy -c -f /etc/haproxy/haproxy.cfg").rc == 0


def test_server_is_up_by_its_health_check(host):
    wait_up(host)
    op_state, admin_state = server_state(host)
    assert op_state == 2  # SRV_ST_RUNNING
    assert admin_state == 0


def test_drain_and_ready_through_the_runtime_api(host):
    wait_up(host)
    admin(host, "set server web/molecule-lb-web state drain")
    assert server_state(host)[1] & 0x08  # SRV_ADMF_DRAIN
    admin(host, "set server web/molecule-lb-web state ready")
    assert server_state(host)[1] == 0
    wait_up(host)
    assert host.check_output("curl -s -o /dev/null -w '%{http_code}' http://localhost/") == "200"
