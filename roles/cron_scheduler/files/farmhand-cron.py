#!/usr/bin/python3
# Installed by Ansible (role cron_scheduler): local changes are overwritten.
"""farmhand-cron: run the farm's scheduled jobs and keep their history.

    farmhand-cron list [--json]             jobs, schedule, last run, next run, last status
    farmhand-cron history [JOB] [-n N] [--json]
    farmhand-cron logs JOB [RUN]            the output of a run (default: the last one)
    farmhand-cron run JOB                   run now, output streamed, exit with the job's status
    farmhand-cron run --scheduled JOB       what the job's systemd timer runs

Every run is recorded in <runs_dir>/<job>/<n>.json (start, end, duration, exit status, host,
release) beside its own log, <n>.log; old runs are pruned by count and age. A job that does not
allow overlaps holds an flock for the whole run: a second run is refused (exit 75). A run that
outlives its timeout has its process group killed (TERM, then KILL) and is recorded as timed out
(exit 124). A failed or timed-out run is mailed through the configured SMTP relay. While a deploy
holds the jobs (its hold file exists), a run waits before it starts: it gets the new release's
code with the new release's config, never one without the other.

Python 3 standard library only. The configuration is the JSON file the role writes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import grp
import json
import os
import pwd
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import BinaryIO

CONFIG = Path(os.environ.get("FARMHAND_CRON_CONFIG", "/etc/farmhand/cron.json"))
EX_USAGE = 2
EX_LOCKED = 75
EX_TIMEOUT = 124
EX_INTERRUPTED = 130
MAIL_LOG_LINES = 40


class UsageError(Exception):
    """Something the caller got wrong: one line on stderr, exit 2."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def load_config() -> dict:
    try:
        return json.loads(CONFIG.read_text())
    except FileNotFoundError:
        raise UsageError(f"no configuration at {CONFIG}: is the cron_scheduler role applied?") from None
    except PermissionError:
        raise UsageError(f"cannot read {CONFIG}: run as root (sudo)") from None


def job_named(config: dict, name: str) -> dict:
    for job in config["jobs"]:
        if job["name"] == name:
            return job
    names = ", ".join(j["name"] for j in config["jobs"]) or "none"
    raise UsageError(f"unknown job {name!r} (jobs: {names})")


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- Run records -------------------------------------------------------------------------------


def job_dir(config: dict, name: str) -> Path:
    return Path(config["runs_dir"]) / name


def read_run(path: Path) -> dict | None:
    try:
        run = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if run.get("status") == "running" and not pid_alive(run.get("runner_pid")):
        run["status"] = "aborted"  # the runner itself was killed: the record was never finished
    return run


def runs_of(config: dict, name: str) -> list[dict]:
    """The job's runs, newest first."""
    directory = job_dir(config, name)
    if not directory.is_dir():
        return []
    numbers = sorted((int(p.stem) for p in directory.glob("*.json") if p.stem.isdigit()), reverse=True)
    runs = (read_run(directory / f"{n}.json") for n in numbers)
    return [run for run in runs if run]


def next_number(directory: Path) -> int:
    """The job's next run number, from a counter kept under a lock (pruning never reuses one)."""
    with open(directory / ".counter.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        counter = directory / ".counter"
        try:
            last = int(counter.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            existing = [int(p.stem) for p in directory.glob("*.json") if p.stem.isdigit()]
            last = max(existing, default=0)
        counter.write_text(f"{last + 1}\n")
        return last + 1


def prune(config: dict, name: str, keep_number: int) -> None:
    """Keep the newest keep_runs runs and none older than keep_days (never a running one)."""
    cutoff = utcnow() - dt.timedelta(days=config["keep_days"])
    directory = job_dir(config, name)
    for index, run in enumerate(runs_of(config, name)):
        number = run.get("number")
        if number == keep_number or run.get("status") == "running":
            continue
        started = dt.datetime.fromisoformat(run["start"]) if run.get("start") else cutoff
        if index >= config["keep_runs"] or started < cutoff:
            for suffix in (".json", ".log"):
                with contextlib.suppress(FileNotFoundError):
                    (directory / f"{number}{suffix}").unlink()


# -- Running a job -----------------------------------------------------------------------------


def current_release(config: dict) -> tuple[str | None, Path | None]:
    """The release `current` points at (its directory name) and its real path."""
    current = Path(config["app_root"]) / "current"
    try:
        target = os.readlink(current)
    except OSError:
        return None, None
    return Path(target.rstrip("/")).name, Path(os.path.realpath(current))


def job_user(config: dict) -> dict:
    """Popen arguments that run the job as the app's user (when the runner runs as root)."""
    user = config["user"]
    if os.geteuid() != 0:
        if pwd.getpwuid(os.geteuid()).pw_name != user:
            raise UsageError(f"jobs run as {user}: run farmhand-cron as root (sudo)")
        return {}
    entry = pwd.getpwnam(user)
    gid = grp.getgrnam(config["group"]).gr_gid
    groups = sorted({g.gr_gid for g in grp.getgrall() if user in g.gr_mem} | {gid})
    return {"user": entry.pw_uid, "group": gid, "extra_groups": groups}


def job_env(config: dict, job: dict, number: int, release: str | None) -> dict:
    home = config["app_root"]
    with contextlib.suppress(KeyError):
        home = pwd.getpwnam(config["user"]).pw_dir
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": home,
        "USER": config["user"],
        "LOGNAME": config["user"],
        "LANG": "C.UTF-8",
        "FARMHAND_JOB": job["name"],
        "FARMHAND_RUN": str(number),
        "FARMHAND_RELEASE": release or "",
    }


class Lock:
    """The job's flock, held for the whole run; its file says who holds it."""

    def __init__(self, config: dict, name: str) -> None:
        directory = Path(config["lock_dir"])
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.path = directory / f"{name}.lock"
        self.file = open(self.path, "a+")  # noqa: SIM115 (held open for the run)

    def acquire(self) -> bool:
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def holder(self) -> str:
        self.file.seek(0)
        return self.file.read().strip() or "another run"

    def announce(self, text: str) -> None:
        self.file.seek(0)
        self.file.truncate()
        self.file.write(text + "\n")
        self.file.flush()


def copy_output(pipe: int, log: BinaryIO, echo: bool) -> None:
    """Copy the job's output to its log and, streamed, to our stdout."""
    out = sys.stdout.buffer
    while True:
        try:
            chunk = os.read(pipe, 65536)
        except OSError:
            break
        if not chunk:
            break
        log.write(chunk)
        log.flush()
        if echo:
            try:
                out.write(chunk)
                out.flush()
            except (BrokenPipeError, OSError):
                echo = False  # the caller went away; the run goes on and is recorded
    os.close(pipe)


def kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_for_deploy(config: dict) -> None:
    """Wait while a deploy holds the jobs (between writing the env file and switching current). A
    hold older than hold_max is ignored: a deploy that failed in between left it behind."""
    if not config.get("hold_file"):
        return
    hold, told = Path(config["hold_file"]), False
    while True:
        try:
            age = time.time() - hold.stat().st_mtime
        except FileNotFoundError:
            return
        if age > config["hold_max"]:
            print(f"farmhand-cron: ignoring a deploy's hold of {int(age)} s ({hold})", file=sys.stderr)
            return
        if not told:
            print("farmhand-cron: a deploy is switching releases; waiting", file=sys.stderr, flush=True)
            told = True
        time.sleep(1)


def execute(config: dict, job: dict, trigger: str) -> int:
    name = job["name"]
    directory = job_dir(config, name)
    directory.mkdir(mode=0o750, parents=True, exist_ok=True)
    host = socket.gethostname()
    lock = None
    if not job.get("overlap", False):
        lock = Lock(config, name)
        if not lock.acquire():
            print(
                f"farmhand-cron: job {name} is already running ({lock.holder()}); "
                "overlapping runs are not allowed, this run is skipped",
                file=sys.stderr,
            )
            number = next_number(directory)
            now = utcnow()
            write_json(
                directory / f"{number}.json",
                {"job": name, "number": number, "trigger": trigger, "host": host, "release": None,
                 "start": iso(now), "end": iso(now), "duration": 0.0, "status": "skipped",
                 "exit_code": EX_LOCKED, "reason": f"already running ({lock.holder()})",
                 "runner_pid": os.getpid(), "log": None},
            )  # fmt: skip
            return EX_LOCKED

    wait_for_deploy(config)
    number = next_number(directory)
    release, release_dir = current_release(config)
    start = utcnow()
    log_path = directory / f"{number}.log"
    record = {
        "job": name,
        "number": number,
        "trigger": trigger,
        "command": job["command"],
        "host": host,
        "release": release,
        "start": iso(start),
        "end": None,
        "duration": None,
        "status": "running",
        "exit_code": None,
        "timeout": job["timeout"],
        "runner_pid": os.getpid(),
        "log": str(log_path),
    }
    write_json(directory / f"{number}.json", record)
    if lock:
        lock.announce(f"run {number} since {iso(start)}, pid {os.getpid()}")

    timed_out = interrupted = False
    exit_code: int | None = None
    echo = True  # a terminal or SSH for `run`, the journal (the timer's service) otherwise
    with open(log_path, "wb") as log:
        os.chmod(log_path, 0o640)
        if release_dir is None or not release_dir.is_dir():
            log.write(b"farmhand-cron: no release is deployed (no current): nothing to run\n")
            exit_code = 1
        else:
            read_end, write_end = os.pipe()
            argv = [*config["wrapper"], "/bin/sh", "-c", job["command"]]
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=release_dir,
                    env=job_env(config, job, number, release),
                    stdin=subprocess.DEVNULL,
                    stdout=write_end,
                    stderr=write_end,
                    start_new_session=True,  # its own process group: a timeout kills all of it
                    **job_user(config),
                )
            except OSError as error:
                os.close(read_end)
                log.write(f"farmhand-cron: cannot start the job: {error}\n".encode())
                exit_code = 127
                proc = None
            finally:
                os.close(write_end)
            if proc is not None:
                reader = threading.Thread(target=copy_output, args=(read_end, log, echo), daemon=True)
                reader.start()

                def stop(signum: int, _frame: object) -> None:
                    nonlocal interrupted
                    interrupted = True
                    kill_group(proc.pid, signal.SIGTERM)

                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                    signal.signal(sig, stop)
                try:
                    proc.wait(timeout=job["timeout"])
                except subprocess.TimeoutExpired:
                    timed_out = True
                    kill_group(proc.pid, signal.SIGTERM)
                    try:
                        proc.wait(timeout=config["kill_grace"])
                    except subprocess.TimeoutExpired:
                        kill_group(proc.pid, signal.SIGKILL)
                        proc.wait()
                # The run ends with its command: whatever it left in its process group goes too.
                kill_group(proc.pid, signal.SIGTERM)
                reader.join(timeout=config["kill_grace"])
                if reader.is_alive():
                    kill_group(proc.pid, signal.SIGKILL)
                    reader.join(timeout=5)
                exit_code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
                if timed_out:
                    message = f"\nfarmhand-cron: timed out after {job['timeout']} s: process group killed\n"
                    log.write(message.encode())
                    if echo:
                        with contextlib.suppress(OSError):
                            sys.stdout.write(message)
                            sys.stdout.flush()

    end = utcnow()
    if timed_out:
        status, code = "timeout", EX_TIMEOUT
    elif interrupted:
        status, code = "interrupted", EX_INTERRUPTED
    else:
        status, code = ("succeeded" if exit_code == 0 else "failed"), exit_code
    record.update(
        end=iso(end),
        duration=round((end - start).total_seconds(), 3),
        status=status,
        exit_code=exit_code if not timed_out else None,
    )
    if status in ("failed", "timeout"):
        record["mail"] = send_mail(config, job, record, log_path)
    write_json(directory / f"{number}.json", record)
    prune(config, name, number)
    return code


def send_mail(config: dict, job: dict, record: dict, log_path: Path) -> str:
    recipients = job.get("mail_to") or config.get("mail_to") or []
    if not recipients:
        return "no recipients"
    smtp = config["smtp"]
    host = record["host"]
    what = (
        f"timed out after {job['timeout']} s"
        if record["status"] == "timeout"
        else f"failed (exit status {record['exit_code']})"
    )
    try:
        tail = log_path.read_text(errors="replace").splitlines()[-MAIL_LOG_LINES:]
    except OSError:
        tail = []
    message = EmailMessage()
    message["Subject"] = f"[farmhand cron] {job['name']} {what} on {host}"
    message["From"] = smtp.get("from") or f"farmhand-cron@{socket.getfqdn()}"
    message["To"] = ", ".join(recipients)
    message["X-Farmhand-Job"] = job["name"]
    message["X-Farmhand-Run"] = str(record["number"])
    message.set_content(
        f"Job {job['name']} {what}.\n\n"
        f"Command:   {job['command']}\n"
        f"Host:      {host}\n"
        f"Release:   {record['release']}\n"
        f"Run:       {record['number']} ({record['trigger']})\n"
        f"Started:   {record['start']}\n"
        f"Ended:     {record['end']}\n"
        f"Duration:  {record['duration']} s\n"
        f"Log:       {log_path}  (farm cron:logs {job['name']} {record['number']})\n\n"
        f"Last {len(tail)} lines of output:\n\n" + "\n".join(tail) + "\n"
    )
    try:
        with smtplib.SMTP(smtp["host"], smtp["port"], timeout=30) as client:
            if smtp.get("starttls"):
                client.starttls()
            if smtp.get("user"):
                client.login(smtp["user"], smtp.get("password", ""))
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        print(f"farmhand-cron: could not send the failure mail: {error}", file=sys.stderr)
        return f"not sent: {error}"
    return "sent to " + ", ".join(recipients)


# -- Timers ------------------------------------------------------------------------------------


def utc_moment(text: str) -> str | None:
    """An ISO time from systemd's "Tue 2026-11-24 03:00:00 UTC" (its tools run with TZ=UTC here)."""
    with contextlib.suppress(ValueError):
        _day, date, clock, zone = text.split()
        if zone in ("UTC", "GMT"):
            return iso(dt.datetime.fromisoformat(f"{date}T{clock}+00:00"))
    return None


def systemd_tool(*cmd: str) -> str:
    env = {**os.environ, "TZ": "UTC", "LC_ALL": "C", "SYSTEMD_PAGER": ""}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def timer_state(config: dict, job: dict) -> dict:
    """Whether the job's timer is active and when it next elapses (systemctl show; while the job
    runs systemd has no next elapse yet, so it is worked out from the calendar)."""
    unit = f"{config['unit_prefix']}{job['name']}.timer"
    props = ["--property=ActiveState", "--property=NextElapseUSecRealtime"]
    out = systemd_tool("systemctl", "show", unit, *props)
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    active = values.get("ActiveState", "unknown")
    if active != "active":
        return {"timer": active, "next_run": None}
    next_run = utc_moment(values.get("NextElapseUSecRealtime", "").strip())
    if next_run is None:
        analyzed = systemd_tool("systemd-analyze", "calendar", *job["on_calendar"])
        elapses = [
            utc_moment(line.split(":", 1)[1].strip())
            for line in analyzed.splitlines()
            if line.strip().startswith("Next elapse:")
        ]
        next_run = min((e for e in elapses if e), default=None)
    return {"timer": active, "next_run": next_run}


# -- Commands ----------------------------------------------------------------------------------


def brief(run: dict | None) -> dict | None:
    if not run:
        return None
    keys = ("job", "number", "trigger", "start", "end", "duration", "status", "exit_code", "host", "release")
    return {k: run.get(k) for k in keys}


def cmd_list(config: dict, args: argparse.Namespace) -> int:
    jobs = []
    for job in config["jobs"]:
        runs = runs_of(config, job["name"])
        last = runs[0] if runs else None
        jobs.append(
            {
                "name": job["name"],
                "schedule": job["schedule"],
                "calendar": job["on_calendar"],
                "command": job["command"],
                "timeout": job["timeout"],
                "overlap": job.get("overlap", False),
                **timer_state(config, job),
                "last_run": brief(last),
                "last_status": last["status"] if last else None,
            }
        )
    if args.json:
        print(json.dumps({"host": socket.gethostname(), "active": config["active"], "jobs": jobs}, indent=2))
        return 0
    if not config["active"]:
        print(f"(not the active cron host: timers stopped here; active: {config['active_host']})")
    rows = [("JOB", "SCHEDULE", "LAST RUN", "STATUS", "NEXT RUN")]
    for job in jobs:
        last = job["last_run"] or {}
        status = job["last_status"] or "-"
        rows.append((job["name"], job["schedule"], last.get("start") or "-", status, job["next_run"] or "-"))
    print_table(rows)
    return 0


def cmd_history(config: dict, args: argparse.Namespace) -> int:
    names = [job_named(config, args.job)["name"]] if args.job else [j["name"] for j in config["jobs"]]
    runs = [brief(run) for name in names for run in runs_of(config, name)]
    runs.sort(key=lambda r: (r["start"] or "", r["number"]), reverse=True)
    runs = runs[: args.n]
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    rows = [("JOB", "RUN", "STARTED", "DURATION", "STATUS", "EXIT", "RELEASE", "TRIGGER")]
    for run in runs:
        rows.append(
            (
                run["job"],
                str(run["number"]),
                run["start"] or "-",
                f"{run['duration']:.1f}s" if run["duration"] is not None else "-",
                run["status"],
                "-" if run["exit_code"] is None else str(run["exit_code"]),
                run["release"] or "-",
                run["trigger"],
            )
        )
    print_table(rows)
    return 0


def cmd_logs(config: dict, args: argparse.Namespace) -> int:
    job = job_named(config, args.job)
    runs = runs_of(config, job["name"])
    if args.run is None:
        run = next((r for r in runs if r.get("log")), None)
        if run is None:
            raise UsageError(f"job {job['name']} has not run yet")
    else:
        run = next((r for r in runs if r["number"] == args.run), None)
        if run is None:
            kept = ", ".join(str(r["number"]) for r in runs[:20]) or "none"
            raise UsageError(f"job {job['name']} has no run {args.run} (kept runs, newest first: {kept})")
    if not run.get("log"):
        print(f"run {run['number']} was {run['status']}: {run.get('reason', 'no output')}")
        return 0
    try:
        data = Path(run["log"]).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"the log of run {run['number']} is gone") from None
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return 0


def cmd_run(config: dict, args: argparse.Namespace) -> int:
    job = job_named(config, args.job)
    if args.scheduled and not config["active"]:
        active = config["active_host"]
        print(f"farmhand-cron: not the active cron host ({active} is): not running {job['name']}")
        return 0
    return execute(config, job, "schedule" if args.scheduled else "manual")


def print_table(rows: list[tuple]) -> None:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="farmhand-cron", description="The farm's scheduled jobs.")
    sub = top.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="jobs, schedule, last run, next run, last status")
    listing.add_argument("--json", action="store_true")
    history = sub.add_parser("history", help="runs, newest first")
    history.add_argument("job", nargs="?")
    history.add_argument("-n", type=int, default=50, help="at most N runs (default 50)")
    history.add_argument("--json", action="store_true")
    logs = sub.add_parser("logs", help="the output of a run")
    logs.add_argument("job")
    logs.add_argument("run", nargs="?", type=int)
    run = sub.add_parser("run", help="run a job now (output streamed, exit status of the job)")
    run.add_argument("job")
    run.add_argument("--scheduled", action="store_true", help=argparse.SUPPRESS)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = {"list": cmd_list, "history": cmd_history, "logs": cmd_logs, "run": cmd_run}
    try:
        return commands[args.command](load_config(), args)
    except UsageError as error:
        print(f"farmhand-cron: {error}", file=sys.stderr)
        return EX_USAGE
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
