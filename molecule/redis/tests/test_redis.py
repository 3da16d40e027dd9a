"""Redis keeps the farm's queued jobs: only clients with the password, nothing evicted, and what
was written is still there after a restart."""

testinfra_hosts = ["podman://molecule-redis"]

CLI = "REDISCLI_AUTH=molecule-only-redis-password redis-cli --no-auth-warning -h {address}"


def redis(host, *args, address="127.0.0.1"):
    return host.run(" ".join([CLI.format(address=address), *args]))


def own_address(host):
    return host.check_output("hostname -I").split()[0]


def test_service_runs_under_systemd_and_is_enabled(host):
    service = host.service("redis-server")
    assert service.is_running and service.is_enabled
    assert host.check_output("systemctl show -p Type --value redis-server") == "notify"


def test_answers_with_the_password_on_loopback_and_its_own_address(host):
    assert redis(host, "PING").stdout.strip() == "PONG"
    assert redis(host, "PING", address=own_address(host)).stdout.strip() == "PONG"


def test_refuses_clients_without_the_password(host):
    refused = host.run("redis-cli -h 127.0.0.1 PING")
    assert "NOAUTH" in refused.stdout + refused.stderr


def test_never_evicts_queued_jobs(host):
    assert redis(host, "CONFIG GET maxmemory-policy").stdout.split() == ["maxmemory-policy", "noeviction"]
    assert redis(host, "CONFIG GET maxmemory").stdout.split() == ["maxmemory", str(64 * 1024 * 1024)]


def test_a_queued_job_survives_a_restart(host):
    assert redis(host, "DEL queue:molecule").rc == 0
    assert redis(host, 'LPUSH queue:molecule \'{"jid":"abc"}\'').stdout.strip() == "1"
    host.check_output("systemctl restart redis-server")
    host.check_output(
        "timeout 30 sh -c 'until REDISCLI_AUTH=molecule-only-redis-password redis-cli --no-auth-warning "
        "PING | grep -q PONG; do sleep 0.5; done'"
    )
    assert redis(host, "LRANGE queue:molecule 0 -1").stdout.strip() == '{"jid":"abc"}'
    assert redis(host, "CONFIG GET appendonly").stdout.split() == ["appendonly", "yes"]


def test_config_file_is_private(host):
    conf = host.file("/etc/redis/redis.conf")
    assert (conf.user, conf.group, conf.mode) == ("redis", "redis", 0o640)
