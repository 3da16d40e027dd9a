"""Sidekiq processes of the sample app run under systemd and never kill a job within its budget:
a stop waits for a long job, unfinished jobs go back to Redis, a release switch and the memory
watchdog let the old process finish its jobs first."""

import json
import secrets
import shlex
import time

import pytest

testinfra_hosts = ["podman://molecule-sidekiq"]

CTL = "/usr/local/sbin/sidekiq-bookshelf"
PSQL = "runuser -u postgres -- psql -X -At bookshelf -c {sql}"


def sql(host, query):
    return host.check_output(PSQL.format(sql=shlex.quote(query))).strip()


def new_book(host, title):
    inserted = sql(
        host,
        "insert into books (title, status, created_at, updated_at) "
        f"values ('{title}', 'new', now(), now()) returning id",
    )
    return int(inserted.splitlines()[0])


def status(host, book):
    return sql(host, f"select status from books where id = {book}")


def enqueue(host, job, args, queue):
    """Push a job the way Sidekiq's client does (what perform_async writes to Redis)."""
    now = time.time()
    payload = {"class": job, "args": args, "queue": queue, "jid": secrets.token_hex(12), "retry": False,
               "created_at": now, "enqueued_at": now}  # fmt: skip
    host.check_output(f"redis-cli SADD queues {queue}")
    host.check_output(f"redis-cli LPUSH queue:{queue} {shlex.quote(json.dumps(payload))}")


def wait_until(host, command, seconds):
    """Run a shell test on the host every half second until it succeeds (at most `seconds`)."""
    result = host.run(f"timeout {seconds} sh -c {shlex.quote(f'until {command}; do sleep 0.5; done')}")
    assert result.rc == 0, f"still not true after {seconds}s: {command}"


def wait_for_status(host, book, wanted, seconds):
    query = shlex.quote(f"select status from books where id = {book}")
    wait_until(host, f'[ "$(runuser -u postgres -- psql -X -At bookshelf -c {query})" = {wanted} ]', seconds)


def units(host, process):
    """Instances of a process systemd runs: {unit: (state, enabled, process title)}."""
    found = {}
    for line in host.check_output(f"{CTL} status {process}").splitlines():
        unit, state, enabled, title = [*line.split(" ", 3), "", "", ""][:4]
        found[unit] = (state, enabled, title)
    return found


def running(host, process):
    live = [
        u
        for u, (state, _, title) in units(host, process).items()
        if state == "active" and "stopping" not in title
    ]
    assert len(live) == 1, units(host, process)
    return live[0]


def wait_gone(host, unit, seconds):
    """Wait until the unit has exited (is-active is false already while it finishes its jobs)."""
    wait_until(host, f'[ "$(systemctl show -p ActiveState --value {unit})" = inactive ]', seconds)


@pytest.mark.parametrize(("process", "busy", "timeout"), [("books", 2, "2min"), ("urgent", 1, "35s")])
def test_each_process_runs_under_systemd_with_its_settings(host, process, busy, timeout):
    unit = running(host, process)
    _, enabled, title = units(host, process)[unit]
    assert enabled == "enabled"
    assert title.startswith(f"sidekiq 6.4.1 bookshelf-{process} [")
    assert f" of {busy} busy]" in title
    pid = host.check_output(f"systemctl show -p MainPID --value {unit}")
    assert host.check_output(f"ps -o user= -p {pid}") == "app"
    assert "MALLOC_ARENA_MAX=2" in host.check_output(f"systemctl show -p Environment --value {unit}").split()
    # systemd waits the Sidekiq timeout plus 30 s before it kills anything, and never restarts on a schedule.
    wanted = ("TimeoutStopUSec", "Restart", "RuntimeMaxUSec", "WatchdogUSec", "KillMode")
    shown = host.check_output(f"systemctl show {' '.join('-p ' + p for p in wanted)} {unit}")
    props = dict(line.split("=", 1) for line in shown.splitlines())
    assert props == {"TimeoutStopUSec": timeout, "Restart": "on-failure", "RuntimeMaxUSec": "infinity",
                     "WatchdogUSec": "0", "KillMode": "mixed"}  # fmt: skip


def test_a_process_with_a_config_file_reads_it_and_its_own_flags_win(host):
    commands = {
        p: host.check_output(f"systemctl show -p ExecStart --value {running(host, p)}")
        for p in ("books", "urgent")
    }
    assert " -C config/urgent.yml " in commands["urgent"]
    assert " -C " not in commands["books"]
    # What the running Sidekiq reports to Redis: the file's labels, the process's own concurrency
    # and queues (the file's concurrency, 9, loses to -c 1).
    pid = int(host.check_output(f"systemctl show -p MainPID --value {running(host, 'urgent')}"))
    reports = [
        json.loads(host.check_output(f"redis-cli HGET {shlex.quote(identity)} info"))
        for identity in host.check_output("redis-cli SMEMBERS processes").split()
    ]
    (info,) = [r for r in reports if r["pid"] == pid]
    assert (info["tag"], info["labels"], info["concurrency"]) == (
        "bookshelf-urgent",
        ["from-the-config-file"],
        1,
    )
    assert info["queues"] == ["urgent", "default"]


def test_a_job_enqueued_is_processed(host):
    book = new_book(host, "Enqueued")
    enqueue(host, "BookProcessingJob", [book], "books")
    wait_for_status(host, book, "processed", 60)


def test_redis_deprecation_warnings_are_silenced(host):
    log = host.check_output(
        "journalctl -q --no-pager -o cat -t sidekiq-bookshelf-books -t sidekiq-bookshelf-urgent"
    )
    assert "Processing" in log or "start" in log.lower()
    assert "deprecated" not in log
    assert "Redis#sadd" not in log


def test_the_role_drops_redis_deprecations_whatever_the_app_does(host):
    """The app's initializer silences them too; the role's filter works without it."""
    script = (
        'warn "Passing the timeout as a positional argument is deprecated, it should be passed"; '
        'warn "Redis#sadd will always return an Integer in Redis 5.0.0."; warn "a warning that stays"'
    )
    result = host.run(f"ruby -r/usr/local/lib/farmhand/sidekiq_quiet_redis.rb -e {shlex.quote(script)}")
    assert result.rc == 0
    assert result.stderr.strip() == "a warning that stays"


def test_stop_waits_for_a_long_job_to_finish(host):
    unit = running(host, "books")
    book = new_book(host, "Long stop")
    enqueue(host, "HoldJob", [book, 40], "books")
    wait_for_status(host, book, "processing", 60)
    stopped = host.run(f"systemctl stop {unit}")
    assert stopped.rc == 0, stopped.stderr
    # systemctl returned: the process has exited, and only after the job finished.
    assert status(host, book) == "processed"
    log = host.check_output(f"journalctl -q --no-pager -o cat -u {unit}")
    assert "Pausing to allow workers to finish" in log and "Bye!" in log
    assert "busy worker threads" not in log and "Work still in progress" not in log
    assert "started" in host.check_output(f"{CTL} start books")


def test_a_stop_pushes_unfinished_jobs_back_to_redis(host):
    unit = running(host, "urgent")
    book = new_book(host, "Too long for urgent")
    enqueue(host, "HoldJob", [book, 120], "urgent")
    wait_for_status(host, book, "processing", 60)
    assert host.run(f"systemctl stop {unit}").rc == 0
    queued = host.check_output("redis-cli LRANGE queue:urgent 0 -1")
    assert json.loads(queued)["args"] == [book, 120]
    host.check_output("redis-cli DEL queue:urgent")
    assert "started" in host.check_output(f"{CTL} start urgent")


def test_a_release_switch_lets_the_old_process_finish_its_job(host):
    old = running(host, "books")
    book = new_book(host, "Long deploy")
    # Held until released, not for a number of seconds: on a loaded machine the checks below may
    # take longer than any fixed hold, and the old process must still be running its job for them.
    release_key = f"hold_job:release:{secrets.token_hex(8)}"
    enqueue(host, "HoldJob", [book, 1, release_key], "books")
    wait_for_status(host, book, "processing", 60)
    switched = host.run(f"{CTL} restart books")
    assert switched.rc == 0, switched.stderr
    new = running(host, "books")
    assert new != old
    # The old one is on its way out (Sidekiq shows "stopping" in its title at its next heartbeat),
    # no longer the one a reboot starts.
    wait_until(host, f"{CTL} status books | grep {old} | grep -q -e deactivating -e stopping", 30)
    assert units(host, "books")[old][1] == "disabled"
    assert units(host, "books")[new][1] == "enabled"
    # New work goes to the new process while the old one finishes.
    fresh = new_book(host, "After the switch")
    enqueue(host, "BookProcessingJob", [fresh], "books")
    wait_for_status(host, fresh, "processed", 60)
    assert status(host, book) == "processing"  # still held by the old process
    host.check_output(f"redis-cli SET {release_key} 1 EX 3600")
    wait_gone(host, old, 120)
    assert status(host, book) == "processed"
    assert "busy worker threads" not in host.check_output(f"journalctl -q --no-pager -o cat -u {old}")


def test_reload_quiets_a_process_and_start_replaces_it(host):
    unit = running(host, "urgent")
    assert host.run(f"systemctl reload {unit}").rc == 0
    wait_until(host, f"{CTL} status urgent | grep {unit} | grep -q stopping", 30)
    assert "started" in host.check_output(f"{CTL} start urgent")
    assert running(host, "urgent") != unit
    wait_gone(host, unit, 60)


def test_the_memory_ceiling_replaces_a_process_once_its_job_is_done(host):
    old = running(host, "books")
    book = new_book(host, "Long memory")
    enqueue(host, "HoldJob", [book, 15], "books")
    wait_for_status(host, book, "processing", 60)
    checked = host.check_output(f"{CTL} memcheck")
    assert f"{old} uses" in checked and "over its 1 MB ceiling" in checked
    assert running(host, "books") != old
    wait_gone(host, old, 90)
    assert status(host, book) == "processed"


def test_units_and_timer_are_in_place(host):
    assert host.service("sidekiq-bookshelf-memwatch.timer").is_enabled
    for process in ("books", "urgent"):
        assert host.file(f"/etc/systemd/system/sidekiq-bookshelf-{process}@.service").exists
