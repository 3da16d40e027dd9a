"""Whole-farm test of scheduled jobs and logs: `farm cron*` against the farm's active cron host,
failure mails caught by the local SMTP sink, every host's lines arriving at the farm's TLS logs
receiver (the local stand-in for Papertrail), and `farm logs` merging the hosts' journals.

The jobs are group_vars/farm_ci/cron.yml's. Runs on the session's local farm (tests/farmlib.py).
"""

from __future__ import annotations

import contextlib
import email
import json
import os
import queue
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from farmlib import (
    FARM,
    FARM_BIN,
    app_url,
    farm,
    first_with_role,
    get,
    hosts_with_role,
    on_host,
    start_job,
    wait_for,
)

pytestmark = pytest.mark.farm

RECEIVED = "/var/log/remote/papertrail.log"
MAILDIR = "/var/mail/sink/new"


def process_group(pgid: int) -> str:
    """Every process of group PGID (a command, its children, what they left behind), each thread of
    each with its state and where it waits: what a command that did not end was still doing."""
    rows = []
    for proc in sorted(Path("/proc").glob("[0-9]*"), key=lambda p: int(p.name)):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            rows.append(f"pid {proc.name} ppid {fields[1]} {fields[0]}: {args}")
            for task in sorted((proc / "task").iterdir(), key=lambda t: int(t.name)):
                state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
                wchan = (task / "wchan").read_text() or "-"
                rows.append(f"    thread {task.name} {state} waiting in {wchan}")
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile
    return "\n".join(rows) or "(none)"


def received() -> str:
    proc = on_host(first_with_role("logs"), "cat", RECEIVED)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_cron_lists_the_farms_jobs_with_their_schedules(deployed_app):
    jobs = {j["name"]: j for j in json.loads(farm("cron", "-f", FARM, "--json").stdout)["jobs"]}
    assert sorted(jobs) == ["always-fails", "count-books"]
    assert jobs["count-books"]["schedule"] == "every 10 minutes"
    assert jobs["count-books"]["next_run"]  # its timer is active on the cron host
    text = farm("cron", "-f", FARM).stdout
    assert "count-books" in text and "every 10 minutes" in text and "daily at 04:00" in text


def test_cron_run_streams_the_job_and_records_the_run(deployed_app):
    before = json.loads(farm("cron:history", "-f", FARM, "count-books", "--json").stdout)
    ran = farm("cron:run", "-f", FARM, "count-books")
    assert "books in production" in ran.stdout
    history = json.loads(farm("cron:history", "-f", FARM, "count-books", "--json").stdout)
    # The job is also scheduled every 10 minutes: a slot may fire while the test runs, so the run
    # made here is the one new manual run, not necessarily the newest run.
    new = [r for r in history if r["number"] > max((r["number"] for r in before), default=0)]
    manual = [r for r in new if r["trigger"] == "manual"]
    assert len(manual) == 1, new
    last = manual[0]
    assert (last["job"], last["status"], last["exit_code"]) == ("count-books", "succeeded", 0)
    cron_host = first_with_role("cron")
    assert last["host"] == cron_host
    current = on_host(cron_host, "readlink", "-f", "/srv/bookshelf/current").stdout.strip()
    assert last["release"] and current.endswith(last["release"])
    assert last["duration"] > 0
    by_number = farm("cron:logs", "-f", FARM, "count-books", str(last["number"]))
    assert "books in production" in by_number.stdout
    newest = max(r["number"] for r in history)  # the manual run unless a slot fired since
    logs = farm("cron:logs", "-f", FARM, "count-books")  # without a number: the newest run
    assert logs.stdout == farm("cron:logs", "-f", FARM, "count-books", str(newest)).stdout
    gone = farm("cron:logs", "-f", FARM, "count-books", "999999", ok=False)
    assert gone.returncode == 2 and "job count-books has no run 999999" in gone.stderr, gone.stderr
    text = farm("cron:history", "-f", FARM).stdout
    assert "count-books" in text and "succeeded" in text


def test_scheduled_runs_ran_once_per_slot_across_the_farms_deploys(deployed_app):
    """By now (after the core module) the farm has been deployed, rolled back, re-configured and
    restarted many times while count-books' timer kept its 10-minute slots: every slot ran at most
    once, on the active cron host, and every run since the first deploy ran a release's code."""
    history = json.loads(farm("cron:history", "-f", FARM, "count-books", "-n", "500", "--json").stdout)
    scheduled = sorted((r for r in history if r["trigger"] == "schedule"), key=lambda r: r["number"])
    first = next((i for i, r in enumerate(scheduled) if r["release"]), None)
    assert first is not None, history  # the farm lived through slots after its first deploy
    slots = [r["start"][:15] for r in scheduled]  # 2026-11-24T06:1 is the slot 06:10 to 06:19
    assert len(set(slots)) == len(slots), slots
    assert {r["host"] for r in scheduled} == {first_with_role("cron")}
    assert all(r["release"] for r in scheduled[first:]), scheduled


def test_a_failing_job_exits_with_its_status_and_mails_its_recipients(deployed_app):
    cron_host = first_with_role("cron")
    before = set(on_host(cron_host, "ls", MAILDIR).stdout.split())
    failed = farm("cron:run", "-f", FARM, "always-fails", ok=False)
    assert failed.returncode == 3, failed.stdout + failed.stderr
    assert "cannot reach the partner API" in failed.stdout + failed.stderr
    new = wait_for(
        lambda: set(on_host(cron_host, "ls", MAILDIR).stdout.split()) - before, 30, f"a new mail in {MAILDIR}"
    )
    assert len(new) == 1, new
    mail = email.message_from_string(on_host(cron_host, "cat", f"{MAILDIR}/{new.pop()}").stdout)
    assert mail["To"] == "oncall@farmhand.invalid"
    assert "always-fails" in mail["Subject"]
    assert "cannot reach the partner API" in mail.get_payload()
    history = json.loads(farm("cron:history", "-f", FARM, "always-fails", "-n", "1", "--json").stdout)
    assert (history[0]["status"], history[0]["exit_code"]) == ("failed", 3)


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("cron:run", "-f", FARM, "no-such-job"), "unknown job 'no-such-job' on farm"),
        (("cron:logs", "-f", FARM, "no-such-job"), "unknown job 'no-such-job' on farm"),
        (("cron:run", "-f", FARM, "Bad Name"), "invalid job name 'Bad Name'"),
    ],
)
def test_cron_bad_input_is_refused_in_one_line(deployed_app, args, expect):
    before = farm("cron:history", "-f", FARM, "--json").stdout
    proc = farm(*args, ok=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and expect in proc.stderr, proc.stderr
    assert farm("cron:history", "-f", FARM, "--json").stdout == before


def test_every_hosts_lines_reach_the_logs_receiver_over_tls(deployed_app):
    marker = f"farmhand-probe-{uuid.uuid4().hex[:12]}"
    hosts = sorted({h for role in ("web", "db", "db_follower", "lb") for h in hosts_with_role(role)})
    for host in hosts:
        assert on_host(host, "logger", "-t", "probe", f"{marker} from {host}").returncode == 0
    wanted = {f"{host} probe: {marker} from {host}" for host in hosts}

    def arrived() -> bool:
        return wanted <= set(received().splitlines())

    wait_for(arrived, 90, lambda: f"lines not received: {sorted(wanted - set(received().splitlines()))}")
    # The receiver takes TLS only: the senders' connections are to its TLS port.
    assert on_host(first_with_role("logs"), "ss", "-Htn", "state", "established", "sport", "= :6514").stdout


def test_the_apps_log_lines_arrive_under_their_program_names(deployed_app):
    """The Rails log is Unicorn's unit's journal (RAILS_LOG_TO_STDOUT, as on Heroku): the receiver
    gets it under the unit's name, and `farm logs --grep` finds it as the README greps for it."""
    marker = uuid.uuid4().hex[:12]
    assert get(f"{app_url()}/books?probe={marker}")[0] == 200
    lines = wait_for(lambda: [ln for ln in received().splitlines() if marker in ln], 90, f"line {marker}")
    web = hosts_with_role("web")
    assert any(ln.split()[0] in web and ln.split()[1] == "unicorn-bookshelf:" for ln in lines), lines
    found = farm(
        "logs", "-f", FARM, "-r", "web", "-n", "2000", "--grep", f"Started GET ./books.probe={marker}"
    )
    assert len(found.stdout.splitlines()) == 1, found.stdout
    completed = farm(
        "logs", "-f", FARM, "-r", "web", "-n", "50", "--grep", "Completed 200"
    ).stdout.splitlines()
    assert completed and all(line.split()[1] in web for line in completed), completed
    # The other processes' lines come through the journal under their own names: Sidekiq's on the
    # worker host (it logs each start, and every deploy started new processes), the scheduled
    # runs' output on the cron host.
    programs = {tuple(ln.split()[:2]) for ln in received().splitlines() if len(ln.split()) > 2}
    worker, cron = first_with_role("worker"), first_with_role("cron")
    assert (worker, "sidekiq-bookshelf-default:") in programs, sorted(p for p in programs if p[0] == worker)
    assert (cron, "cron-count-books:") in programs, sorted(p for p in programs if p[0] == cron)


def test_farm_logs_merges_the_hosts_journals_with_host_and_program(deployed_app):
    marker = f"farmhand-logs-{uuid.uuid4().hex[:12]}"
    web = hosts_with_role("web")
    for host in web:
        on_host(host, "logger", "-t", "probe", marker)
    on_host(first_with_role("db"), "logger", "-t", "probe", marker)
    everything = farm("logs", "-f", FARM, "-n", "500", "--grep", marker).stdout.splitlines()
    tagged = {(line.split()[1], line.split()[2]) for line in everything}
    assert {(h, "probe:") for h in web} | {(first_with_role("db"), "probe:")} <= {
        (h, p.split("[")[0].rstrip(":") + ":") for h, p in tagged
    }
    only_web = farm("logs", "-f", FARM, "-r", "web", "-n", "500", "--grep", marker).stdout.splitlines()
    assert {line.split()[1] for line in only_web} == set(web)
    bad = farm("logs", "-f", FARM, "-r", "nosuchrole", ok=False)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_farm_logs_tail_prints_new_lines_as_they_come(deployed_app):
    """`farm logs --tail`, like `heroku logs --tail`: the backlog, then each new line of the hosts'
    journals as it is written, until interrupted."""
    marker = f"farmhand-tail-{uuid.uuid4().hex[:12]}"
    web = hosts_with_role("web")
    # A job of its own: what it leaves behind can be found (and listed if it does not end) by its
    # process group, even once reparented.
    job = start_job([FARM_BIN, "logs", "-f", FARM, "-r", "web", "-n", "1", "--tail"])
    tail, lines, errors = job.proc, job.lines, job.errors
    try:
        seen: set[str] = set()
        deadline = time.monotonic() + 120
        while len(seen) < len(web) and time.monotonic() < deadline:
            for host in web:  # again until it shows: the follow starts after the backlog is read
                on_host(host, "logger", "-t", "probe", f"{marker} on {host}")
            # A few seconds of lines, then the marker again: the web hosts' journals are never
            # quiet for long (the app logs each health check there), so waiting for a pause would
            # never log it again once the first went by before the follow began.
            again = min(deadline, time.monotonic() + 5)
            with contextlib.suppress(queue.Empty):
                while len(seen) < len(web) and time.monotonic() < again:
                    line = lines.get(timeout=max(0.1, again - time.monotonic()))
                    if marker in line:
                        seen.add(line.split()[1])
        assert seen == set(web), seen
        assert tail.poll() is None  # still following
    finally:
        tail.send_signal(signal.SIGINT)
        try:
            tail.wait(timeout=30)
        except subprocess.TimeoutExpired:
            still = process_group(tail.pid)
            os.killpg(tail.pid, signal.SIGKILL)
            tail.wait()
            pytest.fail(f"farm logs --tail still ran 30 s after SIGINT; its processes then:\n{still}")
    assert job.said is not None
    job.said.join(timeout=30)
    assert tail.returncode == 0, "".join(errors)  # Ctrl-C ends a tail, as heroku logs --tail
    assert process_group(tail.pid) == "(none)"  # and its ssh processes with it
