"""Scheduled jobs run on the active host, are recorded, refuse overlaps, time out and mail failures."""

import json
import time

import pytest

# The tests run once, against the active host; the standby is reached through it.
testinfra_hosts = ["podman://molecule-cron"]

RUNNER = "/usr/local/bin/farmhand-cron"
RELEASE = "7-abc1234"
MAILDIR = "/var/mail/sink/new"


@pytest.fixture
def active(host):
    return host.get_host("podman://molecule-cron")


@pytest.fixture
def standby(host):
    return host.get_host("podman://molecule-cron-standby")


def runner_json(host, *args):
    result = host.run(" ".join([RUNNER, *args, "--json"]))
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def wait_for(what, check, seconds=60):
    """Poll check() until it returns something truthy (a deadline, not a timed assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"gave up waiting for {what} after {seconds} s")


def mails(host, needle):
    """The mails in the sink's Maildir that contain needle."""
    found = host.run(f"grep -l -F -- {needle!r} {MAILDIR}/* 2>/dev/null")
    return [host.file(path).content_string for path in found.stdout.split()]


def test_timers_run_on_the_active_host_only(active, standby):
    for job in ("tick", "fail", "hang", "parallel", "quick"):
        unit = f"farmhand-cron-{job}.timer"
        assert active.run(f"systemctl is-active {unit}").stdout.strip() == "active"
        assert active.run(f"systemctl is-enabled {unit}").stdout.strip() == "enabled"
        assert standby.run(f"systemctl is-active {unit}").stdout.strip() == "inactive"
        assert standby.run(f"systemctl is-enabled {unit}").stdout.strip() == "disabled"
    assert runner_json(active, "list")["active"] is True
    assert runner_json(standby, "list")["active"] is False
    # Even started by hand, the standby's timer service does not run the job.
    out = standby.run(f"{RUNNER} run --scheduled tick")
    assert out.rc == 0 and "not the active cron host" in out.stdout
    assert runner_json(standby, "history", "tick") == []


def test_a_job_runs_on_schedule_in_the_current_release_and_is_recorded(active):
    def scheduled_run():
        runs = runner_json(active, "history", "tick")
        return next((r for r in runs if r["trigger"] == "schedule" and r["status"] != "running"), None)

    run = wait_for("a scheduled run of tick", scheduled_run)
    assert run["status"] == "succeeded" and run["exit_code"] == 0
    assert run["host"] == "molecule-cron"
    assert run["release"] == RELEASE
    assert run["start"] <= run["end"] and run["duration"] >= 0
    log = active.check_output(f"{RUNNER} logs tick {run['number']}")
    assert log == f"tick, hello from the env file, as app in /srv/bookshelf/releases/{RELEASE}"
    record = json.loads(active.file(f"/var/log/farmhand-cron/tick/{run['number']}.json").content_string)
    assert record["log"] == f"/var/log/farmhand-cron/tick/{run['number']}.log"
    # The output reaches the journal too, under the job's program name.
    assert "hello from the env file" in active.check_output("journalctl -q -t cron-tick --no-pager")


def test_list_shows_each_jobs_schedule_last_and_next_run(active):
    wait_for("a first run of tick", lambda: runner_json(active, "history", "tick"))
    jobs = {job["name"]: job for job in runner_json(active, "list")["jobs"]}
    assert set(jobs) == {"tick", "fail", "hang", "parallel", "quick"}
    assert jobs["fail"]["schedule"] == "daily at 03:00"
    assert jobs["fail"]["calendar"] == ["*-*-* 03:00:00"]
    assert jobs["fail"]["next_run"].endswith("T03:00:00+00:00")
    assert jobs["quick"]["calendar"] == ["*-*-* *:00/10:00"]
    assert jobs["tick"]["timer"] == "active" and jobs["tick"]["next_run"]
    assert jobs["tick"]["last_status"] in ("succeeded", "running")
    text = active.check_output(f"{RUNNER} list")
    assert "daily at 03:00" in text and "NEXT RUN" in text


def test_a_failing_job_streams_its_output_returns_its_status_and_sends_a_mail(active):
    result = active.run(f"{RUNNER} run fail")
    assert result.rc == 3
    assert "boom" in result.stdout
    last = runner_json(active, "history", "fail")[0]
    assert (last["status"], last["exit_code"], last["trigger"]) == ("failed", 3, "manual")
    mail = wait_for("the failure mail", lambda: mails(active, "fail failed (exit status 3)"), 120)[0]
    assert "To: oncall@example.com" in mail
    assert "From: cron@molecule.test" in mail
    assert "boom" in mail and f"Release:   {RELEASE}" in mail


def test_overlapping_runs_are_refused_and_a_timeout_kills_the_process_group(active):
    started = active.run(f"systemd-run --quiet --collect --unit=molecule-hang {RUNNER} run hang")
    assert started.rc == 0, started.stderr

    def running():
        runs = runner_json(active, "history", "hang")
        return next((r for r in runs if r["status"] == "running"), None)

    first = wait_for("the first run of hang to start", running, 20)  # its timeout is 25 s
    second = active.run(f"{RUNNER} run hang")
    assert second.rc == 75
    assert "already running" in second.stderr and f"run {first['number']}" in second.stderr

    def finished():
        runs = {r["number"]: r for r in runner_json(active, "history", "hang")}
        return runs[first["number"]] if runs[first["number"]]["status"] != "running" else None

    run = wait_for("the first run of hang to end", finished, 120)
    assert run["status"] == "timeout" and run["exit_code"] is None
    assert "timed out after 25 s" in active.check_output(f"{RUNNER} logs hang {run['number']}")
    # Both sleeps were in the job's process group: neither survives it.
    assert active.run("pgrep -f 'sleep 30[01]'").rc == 1
    statuses = [r["status"] for r in runner_json(active, "history", "hang")]
    assert "skipped" in statuses
    assert wait_for("the timeout mail", lambda: mails(active, "hang timed out after 25 s"), 120)


def test_a_job_that_allows_overlaps_runs_side_by_side(active):
    both = active.run(f"sh -c '{RUNNER} run parallel & {RUNNER} run parallel & wait'")
    assert both.rc == 0
    assert both.stdout.count("parallel") == 2
    runs = runner_json(active, "history", "parallel")[:2]
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    first, second = sorted(runs, key=lambda r: r["start"])
    assert second["start"] < first["end"]


def test_a_run_waits_while_a_deploy_holds_the_jobs(active):
    """deploy.yml holds the jobs (the role's `hold` entry point writes this file) from writing the
    env file until current points at the new release: a run starting meanwhile waits, then runs."""
    hold = "/run/farmhand-cron/deploy.hold"
    last = max((r["number"] for r in runner_json(active, "history", "quick")), default=0)
    assert active.run(f"install -m 0644 /dev/null {hold}").rc == 0
    try:
        started = active.run(f"systemd-run --quiet --collect --unit=molecule-held {RUNNER} run quick")
        assert started.rc == 0, started.stderr
        waiting = "journalctl -q -u molecule-held --no-pager | grep -c 'a deploy is switching releases'"
        wait_for(
            "the run to wait for the deploy", lambda: active.run(waiting).stdout.strip() not in ("", "0"), 60
        )
        held = [
            r
            for r in runner_json(active, "history", "quick")
            if r["number"] > last and r["trigger"] == "manual"
        ]
        assert held == []  # not started: no record, no release read yet
        assert active.run("systemctl is-active molecule-held").stdout.strip() == "active"
    finally:
        assert active.run(f"rm -f {hold}").rc == 0

    def ran():
        runs = [
            r
            for r in runner_json(active, "history", "quick")
            if r["number"] > last and r["trigger"] == "manual"
        ]
        return runs if runs and runs[0]["status"] != "running" else None

    runs = wait_for("the held run to run once the deploy let go", ran, 60)
    assert [(r["status"], r["release"]) for r in runs] == [("succeeded", RELEASE)]


def test_an_unknown_job_is_refused(active):
    result = active.run(f"{RUNNER} run nope")
    assert result.rc == 2
    assert "unknown job 'nope'" in result.stderr
    assert "tick" in result.stderr


def test_old_runs_are_pruned_by_count(active):
    for _ in range(7):
        assert active.run(f"{RUNNER} run quick").rc == 0
    runs = runner_json(active, "history", "quick")
    numbers = [r["number"] for r in runs]
    assert len(numbers) == 5 and numbers == sorted(numbers, reverse=True)
    oldest_kept = numbers[-1]
    assert not active.file(f"/var/log/farmhand-cron/quick/{oldest_kept - 1}.log").exists
    assert active.file(f"/var/log/farmhand-cron/quick/{oldest_kept}.log").exists


def test_runs_older_than_keep_days_are_pruned(active):
    """cron_scheduler_keep_days (30): a run that started 40 days ago goes at the next run of its job,
    however few runs the job has."""
    runs = runner_json(active, "history", "parallel")
    assert 1 < len(runs) < 5, runs  # fewer than keep_runs: only age prunes here
    old = runs[-1]["number"]
    path = f"/var/log/farmhand-cron/parallel/{old}.json"
    aged = (
        "import json, sys, datetime as dt; p = sys.argv[1]; r = json.load(open(p)); "
        "when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=40); "
        "r['start'] = when.isoformat(timespec='seconds'); json.dump(r, open(p, 'w'))"
    )
    assert active.run(f'python3 -c "{aged}" {path}').rc == 0
    assert active.run(f"{RUNNER} run parallel").rc == 0
    numbers = [r["number"] for r in runner_json(active, "history", "parallel")]
    assert old not in numbers and len(numbers) == len(runs)  # the aged one went, the new one came
    assert not active.file(path).exists
    assert not active.file(f"/var/log/farmhand-cron/parallel/{old}.log").exists


def test_history_and_logs_are_readable_by_root_only(active):
    runs_dir = active.file("/var/log/farmhand-cron")
    assert (runs_dir.user, runs_dir.mode) == ("root", 0o750)
    config = active.file("/etc/farmhand/cron.json")
    assert (config.user, config.mode) == ("root", 0o600)
