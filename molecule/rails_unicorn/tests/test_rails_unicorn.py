"""The sample app answers through nginx and the socket, restarts without dropping a request,
and goes into maintenance without restarting Unicorn."""

import json
import shlex
import uuid

import pytest

ROOT = "/srv/bookshelf"
# podman exec is many times faster than a round trip through Ansible for every command.
testinfra_hosts = ["podman://molecule-rails-web"]


def curl(host, path, *opts):
    return host.run(
        f"curl -s -o /dev/null -w '%{{http_code}}' {' '.join(opts)} http://localhost{path}"
    ).stdout


def master_pid(host):
    return host.check_output(f"cat {ROOT}/shared/pids/unicorn.pid").strip()


def test_services_run(host):
    assert host.service("nginx").is_running
    assert host.service("unicorn-bookshelf").is_running
    assert host.service("unicorn-bookshelf").is_enabled


def test_unicorn_runs_as_the_app_user_with_the_configured_workers(host):
    master = master_pid(host)
    assert host.check_output(f"ps -o user= -p {master}").strip() == "app"
    assert int(host.check_output(f"pgrep -c -P {master}")) == 2
    assert host.file(f"{ROOT}/shared/config/unicorn.rb").contains("^worker_processes 2$")


def test_health_through_nginx_and_through_the_socket(host):
    assert curl(host, "/health") == "200"
    direct = host.run(f"curl -s --unix-socket {ROOT}/shared/sockets/unicorn.sock http://localhost/health")
    assert json.loads(direct.stdout)["database"] == "ok"


def test_create_then_list_books(host):
    created = host.run(
        "curl -s -X POST -H 'Content-Type: application/json' "
        '-d \'{"book": {"title": "Molecule", "pages": 42}}\' http://localhost/books'
    )
    book = json.loads(created.stdout)
    assert book["title"] == "Molecule"
    listing = json.loads(host.check_output("curl -s http://localhost/books"))
    assert any(b["id"] == book["id"] and b["pages"] == 42 for b in listing)


def test_env_file_is_private(host):
    env = host.file("/etc/farmhand/bookshelf.env")
    assert (env.user, env.group, env.mode) == ("root", "app", 0o640)


def test_release_layout(host):
    current = host.file(f"{ROOT}/current")
    assert current.is_symlink
    release = current.linked_to
    assert release.startswith(f"{ROOT}/releases/1-")
    assert (
        host.file(f"{release}/REVISION").content_string.strip()
        == host.file(f"{release}/.farmhand-built").content_string.strip()
    )
    for link, target in (("log", "log"), ("tmp", "tmp")):
        assert host.file(f"{release}/{link}").linked_to == f"{ROOT}/shared/{target}"
    assert host.socket(f"unix://{ROOT}/shared/sockets/unicorn.sock").is_listening


def test_zero_downtime_restart_drops_no_request(host):
    old = master_pid(host)
    # 300 requests spread over the restart, counted by status code.
    host.check_output(
        "rm -f /tmp/codes; (for i in $(seq 300); do curl -s -o /dev/null -w '%{http_code}\\n' "
        "http://localhost/books >> /tmp/codes; sleep 0.05; done) > /dev/null 2>&1 & echo started"
    )
    restart = host.run("/usr/local/sbin/unicorn-bookshelf-restart")
    assert restart.rc == 0, restart.stderr
    host.run("while [ $(wc -l < /tmp/codes) -lt 300 ]; do sleep 0.5; done")
    codes = host.check_output("sort /tmp/codes | uniq -c").split("\n")
    assert [line.split()[1] for line in codes] == ["200"], codes
    new = master_pid(host)
    assert new != old
    assert host.run(f"kill -0 {old}").rc != 0
    # systemd follows the new master: the unit is still active with it as its main PID.
    assert host.check_output("systemctl show -p MainPID --value unicorn-bookshelf") == new
    assert host.service("unicorn-bookshelf").is_running


def test_maintenance_mode_without_restarting_unicorn(host):
    master = master_pid(host)
    host.check_output(f"touch {ROOT}/shared/maintenance.on")
    try:
        assert curl(host, "/books") == "503"
        headers = host.check_output("curl -s -D - -o /dev/null http://localhost/books")
        assert "Retry-After: 600" in headers
        assert "maintenance" in host.check_output("curl -s http://localhost/anything").lower()
        assert curl(host, "/health") == "200"
    finally:
        host.check_output(f"rm -f {ROOT}/shared/maintenance.on")
    assert curl(host, "/books") == "200"
    assert master_pid(host) == master


@pytest.mark.parametrize("path", ["/etc/nginx/sites-enabled/bookshelf.conf"])
def test_nginx_config_is_valid(host, path):
    assert host.file(path).is_symlink
    assert host.run("nginx -t").rc == 0
    assert not host.file("/etc/nginx/sites-enabled/default").exists


def test_the_release_name_comes_from_the_release(host):
    health = json.loads(host.check_output("curl -s http://localhost/health"))
    assert health["release"] == "v1"
    assert host.file(f"{ROOT}/current/RELEASE").content_string.strip() == "v1"


def test_a_restart_picks_up_a_changed_env_file(host):
    """USR2 inherits the old master's environment: unicorn.rb reloads the env file on re-exec."""
    env_file = "/etc/farmhand/bookshelf.env"
    original = host.file(env_file).content_string
    probe = 'changed "value" with $dollar'
    escaped = probe.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    added = f'FARMHAND_ENV_CHECK_KEYS="PROBE"\nPROBE="{escaped}"\n'
    host.check_output(f"printf %s {shlex.quote(added)} >> {env_file}")
    try:
        assert host.run("/usr/local/sbin/unicorn-bookshelf-restart").rc == 0
        seen = json.loads(host.check_output("curl -s 'http://localhost/env-check?key=PROBE'"))
        assert seen == {"key": "PROBE", "value": probe}
    finally:
        host.check_output(f"printf %s {shlex.quote(original)} > {env_file}")
    assert host.run("/usr/local/sbin/unicorn-bookshelf-restart").rc == 0
    # A key the file no longer has is gone from the new master too.
    gone = host.run("curl -s -o /dev/null -w '%{http_code}' 'http://localhost/env-check?key=PROBE'").stdout
    assert gone == "404"


def location(host, path, *headers):
    """The Location of the app's answer to PATH (sent with HEADERS), as the client gets it."""
    opts = " ".join(f"-H {shlex.quote(header)}" for header in headers)
    return host.check_output(f"curl -s -o /dev/null -w '%{{redirect_url}}' {opts} http://localhost{path}")


def test_redirects_keep_the_host_and_port_the_client_used(host):
    """Debian's proxy_params sends Host without the port: a redirect behind a load balancer on
    another port lost it."""
    assert location(host, "/request-check/redirect", "Host: shop.example.test:8080") == (
        "http://shop.example.test:8080/books"
    )
    assert (
        location(host, "/request-check/redirect", "Host: shop.example.test")
        == "http://shop.example.test/books"
    )


def test_the_scheme_the_load_balancer_received_reaches_the_app(host):
    """An HTTPS listener's X-Forwarded-Proto (and -Port) is kept, not replaced by nginx's http."""
    behind_https = ("Host: shop.example.test", "X-Forwarded-Proto: https", "X-Forwarded-Port: 443")
    assert location(host, "/request-check/redirect", *behind_https) == "https://shop.example.test/books"
    seen = json.loads(
        host.check_output(
            "curl -s "
            + " ".join(f"-H {shlex.quote(h)}" for h in behind_https)
            + " http://localhost/request-check"
        )
    )
    assert seen["ssl"] is True
    assert seen["base_url"] == "https://shop.example.test"


def test_the_apps_site_is_the_only_one_nginx_serves(host):
    """side_effect.yml left another app's default server enabled: the role disabled it."""
    assert host.check_output("ls -A /etc/nginx/sites-enabled").split() == ["bookshelf.conf"]
    assert curl(host, "/books") == "200"


def test_no_reload_of_nginx_is_left_pending(host):
    assert not host.file("/run/farmhand-nginx-reload-pending").exists


def test_the_apps_log_lines_are_the_units_journal(host):
    """As a dyno's: the Rails log on STDOUT reaches the journal under the unit's name, where
    `farm logs` and the log drain read it."""
    marker = uuid.uuid4().hex[:12]
    assert curl(host, f"/books?probe={marker}") == "200"
    command = "journalctl -q -o cat -u unicorn-bookshelf -t unicorn-bookshelf --grep {}"
    host.run(f"for i in $(seq 20); do {command.format(marker)} && break; sleep 0.5; done")
    started = host.check_output(command.format(marker))
    assert f'Started GET "/books?probe={marker}"' in started
    assert host.run(command.format(shlex.quote("Completed 200 OK"))).rc == 0
