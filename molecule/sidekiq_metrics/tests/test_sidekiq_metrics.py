"""The backlog publisher reads the farm's queues as Sidekiq keeps them in Redis: jobs waiting per
queue, the oldest one's age, and the backlog per worker host taking work."""

import json
import time

testinfra_hosts = ["podman://molecule-sidekiq-metrics"]

CLI = "REDISCLI_AUTH=molecule-only-redis-password redis-cli --no-auth-warning"
STATS = "/usr/local/bin/farmhand-sidekiq-stats"


def redis(host, *args):
    return host.check_output(" ".join([CLI, *args]))


def stats(host):
    return json.loads(host.check_output(f"sudo -u app {STATS}"))


def test_the_timer_is_installed_and_off_when_publishing_is(host):
    assert host.file("/etc/systemd/system/farmhand-sidekiq-metrics.timer").exists
    assert not host.service("farmhand-sidekiq-metrics.timer").is_enabled
    assert host.file("/etc/farmhand-sidekiq-metrics/publisher.env").mode == 0o640


def test_the_drain_timer_is_installed_and_off_when_the_drain_is(host):
    assert host.file("/etc/systemd/system/farmhand-sidekiq-drain.timer").exists
    assert not host.service("farmhand-sidekiq-drain.timer").is_enabled


def test_counts_queued_jobs_and_the_oldest_ones_age(host):
    redis(host, "FLUSHALL")
    enqueued = time.time() - 42
    for n, queue in enumerate(["books", "books", "default"]):
        job = json.dumps({"class": "BookJob", "jid": f"j{n}", "enqueued_at": enqueued + n})
        redis(host, "SADD", "queues", queue)
        redis(host, "LPUSH", f"queue:{queue}", f"'{job}'")
    found = stats(host)
    assert found["queued"] == {"books": 2, "default": 1}
    assert found["queued_total"] == 3
    assert 40 <= found["oldest_job_age"] < 600
    # No Sidekiq process takes work: the backlog is divided by one host.
    assert found["worker_hosts"] == 0
    assert found["backlog_per_instance"] == 3


def test_divides_the_backlog_by_the_hosts_whose_sidekiq_takes_work(host):
    redis(host, "FLUSHALL")
    redis(host, "SADD", "queues", "default")
    for n in range(6):
        redis(host, "LPUSH", "queue:default", f"""'{{"jid": "j{n}", "enqueued_at": {time.time()}}}'""")
    taking = [("a:1:x", "a", "false"), ("b:1:y", "b", "false"), ("c:1:z", "c", "true")]
    for identity, hostname, quiet in taking:
        info = json.dumps({"hostname": hostname, "concurrency": 5, "queues": ["default"]})
        redis(host, "SADD", "processes", identity)
        redis(host, "HSET", identity, "info", f"'{info}'", "busy", "2", "quiet", quiet)
    found = stats(host)
    assert found["worker_hosts"] == 2
    assert found["backlog_per_instance"] == 3
    assert found["busy_total"] == 6
