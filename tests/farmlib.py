"""What the whole-farm tests share: the farm they run on, the real `farm` CLI, Podman and moto.

Every `tests/test_local_farm*.py` module runs on a local farm brought up once per pytest session by
the `local_farm` fixture (tests/conftest.py) and torn down by the test marked `farm_last` (or by the
fixture). The farm is `ci` (group_vars/farm_ci) unless FARMHAND_TEST_FARM names another one:
`make test` runs the workers and scaling modules on the farm `jobs` (group_vars/farm_jobs: one web
host, no follower) beside the others on `ci`, and two engineers' test runs on one machine never touch
each other's hosts when one of them names a farm of his own shaped as `ci`.

Modules other than test_local_farm.py find hosts by role (`hosts_with_role`), never by name.

While working on one module, FARMHAND_TEST_REUSE=1 keeps the farm: the session neither takes down
what it finds nor what it leaves (run it with `-k 'not test_down'`). CI never sets it.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import boto3
import pytest

from farmhand.core.inventory import roles_of

ROOT = Path(__file__).resolve().parents[1]
FARM = os.environ.get("FARMHAND_TEST_FARM", "ci")
REUSE = os.environ.get("FARMHAND_TEST_REUSE") == "1"
FARM_BIN = str(Path(sys.executable).with_name("farm"))

# Whether this session converged the farm already (test_local_farm.py's first converge sets it).
STATE: dict[str, Any] = {"converged": False}
# What the session reads once while the farm runs: its environment, boto3 clients, the app's URL.
_CACHE: dict[Any, Any] = {}


# A hang guard for one command, not a speed limit. The first converge of a farm starts while the
# unit tests take most of the CPU (make test's weights): on a slow day it took past 30 minutes
# (19 on a fast one), and the 1800 s guard then failed it and every test after it.
HANG_GUARD = 3600


def run(
    *args: str, env: dict[str, str] | None = None, timeout: int = HANG_GUARD, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        cwd=ROOT,
        env=env or os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


def wait_for(
    predicate: Callable[[], Any], seconds: float, what: str | Callable[[], str], every: float = 2
) -> Any:
    """The predicate's first true value, asked every EVERY seconds; fails the test after SECONDS
    saying WHAT (a callable is asked then, to say what was last seen). The farm tests' one way to
    wait for a state: a deadline in seconds sized for a loaded machine, never a number of tries.
    A predicate that runs `farm` costs over a second of CPU: ask it less often (every=5)."""
    deadline = time.monotonic() + seconds
    while not (value := predicate()):
        if time.monotonic() >= deadline:
            pytest.fail(f"still not true after {seconds:.0f}s: {what() if callable(what) else what}")
        time.sleep(every)
    return value


def farm(*args: str, ok: bool = True, timeout: int = HANG_GUARD) -> subprocess.CompletedProcess[str]:
    """The real `farm` CLI, as a user runs it in the checkout; asserts exit 0 unless ok=False."""
    if args[:1] == ("local",) and args[1:2] in (("up",), ("down",)):
        _CACHE.clear()  # the farm's moto may start, stop or move: read its environment again
    proc = run(FARM_BIN, *args, timeout=timeout)
    if ok:
        assert proc.returncode == 0, (
            f"farm {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


@dataclass
class Job:
    """A command started as a shell starts a job: in a process group of its own (a terminal's Ctrl-C
    goes to the group, and what it leaves behind can be found by the group), its stdout lines queued
    and its stderr collected by daemon threads, so that a test never blocks reading either."""

    proc: subprocess.Popen[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    errors: list[str] = field(default_factory=list)
    said: threading.Thread | None = None


def _as_a_foreground_job() -> None:
    """What an interactive shell does for a foreground job: Ctrl-C and Ctrl-\\ at their defaults.

    A shell without job control starts background commands with SIGINT ignored, and an ignored
    signal stays ignored across exec (Python then installs no KeyboardInterrupt handler): a test run
    started in the background (`make test &`, a CI runner's script) would send its Ctrl-C to a
    process that cannot receive it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def start_job(argv: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> Job:
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        process_group=0,
        preexec_fn=_as_a_foreground_job,
    )
    job = Job(proc)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout, proc.stderr
    threading.Thread(target=lambda: [job.lines.put(line) for line in out], daemon=True).start()
    job.said = threading.Thread(target=lambda: job.errors.extend(err), daemon=True)
    job.said.start()
    return job


def farm_env() -> dict[str, str]:
    """The environment `eval "$(farm local env -f FARM)"` gives: AWS_ENDPOINT_URL, key, inventory.
    Read once while the farm runs (`farm` reads it again after a `local up` or `local down`)."""
    if "env" not in _CACHE:
        _CACHE["env"] = _read_farm_env()
    return dict(_CACHE["env"])


def _read_farm_env() -> dict[str, str]:
    exported = farm("local", "env", "-f", FARM).stdout
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_SESSION_TOKEN")}
    for line in exported.splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = subprocess.run(
                ["sh", "-c", f"printf %s {value}"], capture_output=True, text=True
            ).stdout
    return env


def podman_json(*args: str) -> list[dict]:
    return json.loads(run("podman", *args).stdout or "[]")


def farm_containers() -> dict[str, dict]:
    found = podman_json("ps", "-a", "--format", "json", "--filter", f"label=farmhand.farm={FARM}")
    return {c["Labels"]["farmhand.host"]: c for c in found}


def container(host: str) -> str:
    """The Podman container that plays HOST (its Name tag)."""
    return f"farmhand-{host}"


def on_host(host: str, *command: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run COMMAND as root inside HOST's container (the test's back door, not the user's way in)."""
    return run("podman", "exec", container(host), *command, timeout=timeout)


def aws(service: str, env: dict[str, str] | None = None) -> Any:
    """A boto3 client for the local farm's moto, from the farm's environment (one per service and
    endpoint: making one loads the service's model, 0.15-0.25 s of CPU)."""
    env = env or farm_env()
    key = ("client", service, env["AWS_ENDPOINT_URL"], env["AWS_REGION"], env["AWS_ACCESS_KEY_ID"])
    if key not in _CACHE:
        _CACHE[key] = boto3.client(
            service,
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
    return _CACHE[key]


def ec2_instances(
    env: dict[str, str] | None = None, states: tuple[str, ...] = ("pending", "running")
) -> dict[str, dict]:
    """The farm's instances in STATES as moto describes them: {Name tag: {id, ip, tags}}."""
    ec2 = aws("ec2", env)
    found = {}
    for res in ec2.describe_instances(Filters=[{"Name": "tag:farm", "Values": [FARM]}])["Reservations"]:
        for inst in res["Instances"]:
            if inst["State"]["Name"] in states:
                tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
                found[tags["Name"]] = {"id": inst["InstanceId"], "ip": inst["PrivateIpAddress"], "tags": tags}
    return found


SUMMARY_COLUMNS = ["HOST", "OK", "CHANGED", "FAILED", "UNREACHABLE", "SKIPPED"]


def summary_table(output: str) -> dict[str, dict[str, int]]:
    """The per-host counts of `farm converge`'s Summary table (built from the run's recorded results)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == SUMMARY_COLUMNS) + 1
    counts: dict[str, dict[str, int]] = {}
    for line in lines[start:]:
        fields = line.split()
        if len(fields) != len(SUMMARY_COLUMNS) or not all(f.isdigit() for f in fields[1:]):
            break
        counts[fields[0]] = {k.lower(): int(v) for k, v in zip(SUMMARY_COLUMNS[1:], fields[1:], strict=True)}
    return counts


def hosts_with_role(role: str) -> list[str]:
    """Names of the farm's running hosts whose role tag carries ROLE, sorted: from the tags the
    inventory groups by (`role_<role>`), as moto holds them. The tests' way to find a host; asking
    `farm ps` each time cost 1.2-1.7 s of CPU a call, in helpers some tests call every 2 s."""
    running = ec2_instances(states=("running",))
    return sorted(name for name, i in running.items() if role in roles_of(i["tags"].get("role", "")))


def first_with_role(role: str) -> str:
    hosts = hosts_with_role(role)
    assert hosts, f"farm {FARM} has no host with role {role}"
    return hosts[0]


# -- the sample app ------------------------------------------------------------------------------

MIGRATION = """# frozen_string_literal: true

class AddAuthorToBooks < ActiveRecord::Migration[6.1]
  def change
    add_column :books, :author, :string
  end
end
"""

FAILING_MIGRATION = """# frozen_string_literal: true

class FailHalfway < ActiveRecord::Migration[6.1]
  def change
    raise "this migration always fails"
  end
end
"""


# The sample app with a Procfile (the `procfile` branch of the test's app repository): its Sidekiq
# queues as one type whose settings are in the app's own Sidekiq config file (-C, as teams keep
# them; the line's -t is over it), a clock that is no Sidekiq (plain Ruby, stopping on TERM), and a
# release command that leaves a mark in shared/tmp on the one host it runs on.
CLOCK = (
    'ruby -e \'STDOUT.sync = true; stop = false; trap("TERM") { stop = true }; '
    'until stop; puts "clock tick #{ENV.fetch(%(RAILS_ENV))}"; sleep 2; end; puts "clock stopping"\''
)
PROCFILE = (
    "web: bundle exec unicorn -p $PORT -c ./config/unicorn.rb\n"
    "worker: bundle exec sidekiq -C config/sidekiq_workers.yml -t 60\n"
    f"clock: {CLOCK}\n"
    "release: bin/rails db:migrate && touch tmp/release-phase-ran\n"
)
SIDEKIQ_CONFIG = ":concurrency: 3\n:queues:\n  - books\n  - default\nproduction:\n  :timeout: 5\n"


def git(repo: Path, *args: str) -> str:
    proc = run("git", "-C", str(repo), *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _branch(repo: Path, name: str, message: str, files: dict[str, str]) -> str:
    """A branch NAME off main whose one commit writes FILES (path: text); its commit. Main stays
    checked out."""
    git(repo, "checkout", "-qb", name, "main")
    for path, text in files.items():
        (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    return sha


def make_app_repo(repo: Path) -> dict[str, str]:
    """The sample app in a repository of its own: v1, v2 (adds a migration), a broken build and a
    failing migration. Returns the path and each one's commit."""
    shutil.copytree(ROOT / "examples/bookshelf", repo, dirs_exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@farmhand.invalid")
    git(repo, "config", "user.name", "Farmhand CI")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "Bookshelf v1")
    shas = {"path": str(repo), "v1": git(repo, "rev-parse", "HEAD")}
    (repo / "db/migrate/20250101000000_add_author_to_books.rb").write_text(MIGRATION)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "Books have authors")
    shas["v2"] = git(repo, "rev-parse", "HEAD")
    gemfile = (repo / "Gemfile").read_text() + 'gem "farmhand_no_such_gem"\n'
    shas["broken"] = _branch(repo, "broken", "Needs a gem nobody has", {"Gemfile": gemfile})
    shas["badmigration"] = _branch(
        repo,
        "badmigration",
        "A migration that fails",
        {"db/migrate/20250201000000_fail_halfway.rb": FAILING_MIGRATION},
    )
    shas["procfile"] = _branch(
        repo,
        "procfile",
        "A Procfile: one Sidekiq type with its config file, a clock, a release command",
        {"Procfile": PROCFILE, "config/sidekiq_workers.yml": SIDEKIQ_CONFIG},
    )
    return shas


def app_url() -> str:
    """The app's URL through the farm's load balancer, published on the controller's loopback (read
    once while the farm runs: tests poll the app through it)."""
    if "app_url" not in _CACHE:
        ports = run("podman", "port", container(first_with_role("lb")), "80/tcp").stdout.split()
        assert ports, "the load balancer publishes no port"
        _CACHE["app_url"] = f"http://{ports[0]}"
    return _CACHE["app_url"]


def get(url: str) -> tuple[int, Message, str]:
    """Status, headers (names case-insensitive) and body of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()
