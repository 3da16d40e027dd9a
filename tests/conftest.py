"""Shared fixtures: an in-process moto server, a clean AWS environment, fake EC2 hosts, the real CLI.

Every test talks to moto on 127.0.0.1 only. The `farm` entry point runs as a subprocess, exactly as a
user runs it, with an environment that holds no real AWS settings.

Isolation from the checkout's own state: `farm` prefers a local farm of the same name when one is up
in this checkout (`.farm/local/<farm>/farm.json`), and a developer may well have `farm local up -f demo`
running here. So `aws_env` points FARMHAND_HOME at a project view in a temp dir (symlinks to this
checkout's ansible.cfg, inventory/, group_vars/, playbooks/, roles/, and an empty `.farm/`): the
project is the same, its local-farm state is empty.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
import farmlib
import pytest
from moto.server import ThreadedMotoServer  # a missing moto fails the run: no skip

REPO_ROOT = Path(__file__).resolve().parent.parent
FARM_BIN = Path(sys.executable).with_name("farm")
ANSIBLE_BIN = Path(sys.executable).parent
REGION = "us-east-1"
PROJECT_ENTRIES = (
    "ansible.cfg",
    "inventory",
    "group_vars",
    "playbooks",
    "roles",
    "requirements.yml",
    "examples",
)
# Variables of the developer's shell that would send calls elsewhere or pick a farm or project for us
# (every AWS_* variable goes too: profiles, tokens, endpoints, container credentials...).
DROPPED_VARS = ("FARMHAND_FARM", "FARMHAND_HOME", "ANSIBLE_INVENTORY", "ANSIBLE_CONFIG")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server in this process, on 127.0.0.1 and a port the OS picks."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def reset_moto(endpoint: str) -> None:
    # A hang guard, not a speed limit: `make test` runs these tests niced beside the whole-farm
    # tests, and moto's thread may wait its turn for the CPU (a reset once took over 10 s).
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200


@pytest.fixture(scope="session")
def project_view(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This checkout's project files without its local-farm state (see the module docstring)."""
    view = tmp_path_factory.mktemp("project")
    for name in PROJECT_ENTRIES:
        (view / name).symlink_to(REPO_ROOT / name)
    (view / ".farm").mkdir()
    return view


def make_project(root: Path, group_vars: Mapping[str, str]) -> Path:
    """A project laid out as Ansible reads it (inventory/group_vars -> ../group_vars) whose group_vars
    are this checkout's plus GROUP_VARS ({"farm_x/cron.yml": text}), with an empty `.farm/`."""
    root.mkdir()
    for name in ("ansible.cfg", "playbooks", "roles"):
        (root / name).symlink_to(REPO_ROOT / name)
    (root / "inventory").mkdir()
    (root / "inventory" / "aws_ec2.yml").symlink_to(REPO_ROOT / "inventory" / "aws_ec2.yml")
    (root / "inventory" / "group_vars").symlink_to("../group_vars")
    shutil.copytree(REPO_ROOT / "group_vars", root / "group_vars", symlinks=True)
    for path, text in group_vars.items():
        (root / "group_vars" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "group_vars" / path).write_text(text)
    (root / ".farm").mkdir()
    return root


def with_fake_tools(
    env: Mapping[str, str], tmp_path: Path, scripts: Mapping[str, str], bin_name: str
) -> dict[str, str]:
    """ENV with the programs SCRIPTS names ({"ssh": script}) first on PATH, each its script standing
    in for the real one, in tmp_path/BIN_NAME."""
    bin_dir = tmp_path / bin_name
    bin_dir.mkdir(exist_ok=True)
    for name, script in scripts.items():
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    return {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"}


def with_fake_ssh(env: Mapping[str, str], tmp_path: Path, script: str) -> dict[str, str]:
    """ENV with an `ssh` on PATH that is SCRIPT (a shell script standing in for the real one)."""
    return with_fake_tools(env, tmp_path, {"ssh": script}, "fake-ssh-bin")


def no_ssh_bin(tmp_path: Path) -> Path:
    """A directory of `ssh` and `scp` that say the unit tests reach no host and exit 255 (as ssh
    does when it cannot connect)."""
    bin_dir = tmp_path / "no-ssh-bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("ssh", "scp"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name}: unit tests reach no host" >&2\nexit 255\n')
        script.chmod(0o755)
    return bin_dir


@pytest.fixture
def aws_env(moto_endpoint: str, project_view: Path, tmp_path: Path) -> dict[str, str]:
    """An environment for `farm` and `ansible-inventory` that reaches only the test's moto, state reset."""
    reset_moto(moto_endpoint)
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_VARS and not k.startswith("AWS_")}
    aws_dir = tmp_path / "aws"
    aws_dir.mkdir()
    (aws_dir / "config").write_text("")
    (aws_dir / "credentials").write_text("")
    env.update(
        {
            "AWS_ENDPOINT_URL": moto_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            # Never read the developer's ~/.aws, never ask the instance metadata service.
            "AWS_CONFIG_FILE": str(aws_dir / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(aws_dir / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "ANSIBLE_INVENTORY_CACHE_CONNECTION": str(tmp_path / "inventory-cache"),
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path / "facts-cache"),
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
            "FARMHAND_HOME": str(project_view),
            # ssh and scp that fail at once: the fake hosts' addresses (10.77.0.x) are never
            # reached from a unit test (`farm ps` asks each host for its processes).
            "PATH": os.pathsep.join(
                [str(no_ssh_bin(tmp_path)), str(ANSIBLE_BIN), env.get("PATH", os.defpath)]
            ),
            "NO_COLOR": "1",
            "TERM": "dumb",
        }
    )
    return env


@functools.cache
def _boto3_session() -> boto3.session.Session:
    """One session for the tests' own clients: each new one parses the service's model again (the
    EC2 model alone cost 0.15-0.25 s of CPU per test, issue 17). Clients hold no state of moto's."""
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


@functools.cache
def _client(service: str, endpoint: str) -> Any:
    return _boto3_session().client(service, endpoint_url=endpoint)


def ec2_client(endpoint: str) -> Any:
    return _client("ec2", endpoint)


@pytest.fixture
def ec2(aws_env: dict[str, str]) -> Any:
    """A boto3 EC2 client on the test's (freshly reset) moto."""
    return ec2_client(aws_env["AWS_ENDPOINT_URL"])


class Fleet:
    """Registers fake EC2 instances in moto as the local farm (and AWS) would have them."""

    def __init__(self, ec2: Any) -> None:
        self.ec2 = ec2
        self.next_ip = 10
        vpc = ec2.create_vpc(CidrBlock="10.77.0.0/24")["Vpc"]["VpcId"]
        self.subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.0.0/24")["Subnet"]["SubnetId"]

    def add(self, farm: str, role: str, name: str, instance_type: str = "t3.small") -> dict[str, str]:
        """One instance tagged farm/role/Name, at the subnet's next address (.10, .11, ...)."""
        ip = f"10.77.0.{self.next_ip}"
        self.next_ip += 1
        tags = {"farm": farm, "role": role, "Name": name}
        instance = self.ec2.run_instances(
            ImageId="ami-12c6146b",
            InstanceType=instance_type,
            MinCount=1,
            MaxCount=1,
            SubnetId=self.subnet,
            PrivateIpAddress=ip,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ],
        )["Instances"][0]
        return {"id": instance["InstanceId"], "ip": ip, "name": name, "farm": farm, "role": role}

    def stop(self, *instance_ids: str) -> None:
        self.ec2.stop_instances(InstanceIds=list(instance_ids))


@pytest.fixture
def fleet(ec2: Any) -> Fleet:
    return Fleet(ec2)


def snapshot(ec2: Any) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """Every instance's id, state and tags: compared before and after a command that must change nothing."""
    rows = []
    for page in ec2.get_paginator("describe_instances").paginate():
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                tags = tuple(sorted((t["Key"], t["Value"]) for t in inst.get("Tags", [])))
                rows.append((inst["InstanceId"], inst["State"]["Name"], tags))
    return sorted(rows)


def farm(
    *args: str, env: Mapping[str, str], cwd: Path | str = REPO_ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real `farm` entry point (the venv's console script) as a subprocess."""
    return subprocess.run(
        [str(FARM_BIN), *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run(
    cmd: Sequence[str], env: Mapping[str, str], cwd: Path | str = REPO_ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run another command of the venv (ansible-inventory...) the same way."""
    return subprocess.run(
        list(cmd), cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )


def plain(value: Any) -> Any:
    """ansible-inventory's JSON without its `{"__ansible_unsafe": ...}` wrappers."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def ansible_inventory(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """`ansible-inventory -i inventory/aws_ec2.yml ARGS` in the checkout, as a user runs it there."""
    return run([str(ANSIBLE_BIN / "ansible-inventory"), "-i", "inventory/aws_ec2.yml", *args], env)


def inventory_list(env: Mapping[str, str]) -> dict[str, Any]:
    proc = ansible_inventory("--list", env=env)
    assert proc.returncode == 0, proc.stderr
    return plain(json.loads(proc.stdout))


def ssm_client(endpoint: str) -> Any:
    return _client("ssm", endpoint)


def parameters(endpoint: str) -> dict[str, str]:
    """Every SSM parameter's name and value (releases, secrets): compared before and after."""
    ssm = ssm_client(endpoint)
    found = {}
    for page in ssm.get_paginator("get_parameters_by_path").paginate(
        Path="/", Recursive=True, WithDecryption=True
    ):
        found.update({p["Name"]: p["Value"] for p in page["Parameters"]})
    return found


@pytest.fixture
def farms(fleet: Fleet) -> dict[str, dict[str, str]]:
    """Running farms (demo with a `worker,cron` host, staging, dbonly without web hosts, pgf with a
    primary and a follower) and one whose hosts are all stopped."""
    hosts = [
        fleet.add("demo", "web", "demo-web-1"),
        fleet.add("demo", "web", "demo-web-2"),
        fleet.add("demo", "worker,cron", "demo-worker-cron-1"),
        fleet.add("demo", "db", "demo-db-1"),
        fleet.add("staging", "web", "staging-web-1"),
        fleet.add("staging", "worker", "staging-worker-1"),
        fleet.add("halted", "web", "halted-web-1"),
        fleet.add("halted", "worker", "halted-worker-1"),
        fleet.add("dbonly", "db", "dbonly-db-1"),
        fleet.add("pgf", "db", "pgf-db-1"),
        fleet.add("pgf", "db_follower", "pgf-db-follower-1"),
    ]
    by_name = {h["name"]: h for h in hosts}
    fleet.stop(by_name["halted-web-1"]["id"], by_name["halted-worker-1"]["id"])
    return by_name


def assert_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr


def fake_playbook(tmp_path: Path, body: str) -> tuple[str, Path]:
    """A PATH whose ansible-playbook records its arguments and the release file it was given."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls.log"
    (bin_dir / "git").symlink_to(shutil.which("git") or "/usr/bin/git")
    fake = bin_dir / "ansible-playbook"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{calls}"\n'
        'for a in "$@"; do case "$a" in @*) /bin/cat "${a#@}" >> "'
        + str(calls)
        + '.json"; echo >> "'
        + str(calls)
        + '.json";; esac; done\n'
        + body
    )
    fake.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{ANSIBLE_BIN}", calls


def counts(
    ok: int = 5, changed: int = 0, unreachable: int = 0, failed: int = 0, skipped: int = 0
) -> dict[str, int]:
    """A host's counts as the farmhand_results callback records them (the PLAY RECAP's)."""
    return {
        "ok": ok,
        "changed": changed,
        "unreachable": unreachable,
        "failed": failed,
        "skipped": skipped,
        "rescued": 0,
        "ignored": 0,
    }


def recorded(*events: Mapping[str, Any]) -> str:
    """Shell lines for a stand-in ansible-playbook or ansible: append EVENTS to the file the CLI
    names for the farmhand_results callback, as a real run's callback writes them."""
    return "".join(f'echo {shlex.quote(json.dumps(e))} >> "$FARMHAND_RESULTS_FILE"\n' for e in events)


def failed_task(host: str, task: str, role: str | None = None) -> dict[str, Any]:
    """The callback's line for TASK failing on HOST."""
    return {
        "event": "failed",
        "host": host,
        "play": "",
        "role": role,
        "task": task,
        "censored": False,
        "msg": "",
    }


def ran(
    stats: Mapping[str, Mapping[str, int]],
    *events: Mapping[str, Any],
    custom: Mapping[str, Any] | None = None,
) -> str:
    """Shell lines for a stand-in ansible-playbook: the PLAY RECAP it prints, and what the callback
    records of the same run (its start, EVENTS, each host's counts, and CUSTOM: what the playbook
    handed over with set_stats)."""
    lines = ["echo 'PLAY RECAP *****'\n"]
    for host, c in stats.items():
        text = " ".join(f"{k}={v}" for k, v in c.items())
        lines.append(f"echo '{host} : {text}'\n")
    end = {"event": "end", "stats": stats, **({"custom": {"_run": dict(custom)}} if custom else {})}
    return "".join(lines) + recorded({"event": "start"}, *events, end)


OK_RECAP = ran({"demo-web-1": counts(changed=2)})


# -- the whole-farm tests' local farm (tests/farmlib.py) -------------------------------------------


@pytest.fixture(scope="session")
def local_farm() -> Iterator[subprocess.CompletedProcess[str]]:
    """The local farm every test_local_farm*.py module runs on, brought up once (from scratch) per
    session; the test marked `farm_last` takes it down, and this takes down what an error left."""
    if not farmlib.REUSE:
        farmlib.farm("local", "down", "-f", farmlib.FARM)  # leftovers of an interrupted run
    first = farmlib.farm("local", "up", "-f", farmlib.FARM)
    yield first
    if not farmlib.REUSE:
        farmlib.farm("local", "down", "-f", farmlib.FARM, ok=False)


@pytest.fixture(scope="session")
def converged_farm(local_farm: subprocess.CompletedProcess[str]) -> None:
    """The local farm, converged (once per session: test_local_farm.py's converge test counts)."""
    if not farmlib.STATE["converged"]:
        farmlib.farm("converge", "-f", farmlib.FARM)
        farmlib.STATE["converged"] = True


@pytest.fixture(scope="session")
def app_repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The sample app in a git repository of its own (see farmlib.make_app_repo)."""
    return farmlib.make_app_repo(tmp_path_factory.mktemp("bookshelf"))


@pytest.fixture(scope="session")
def deployed_app(converged_farm: None, app_repo: dict[str, str]) -> dict[str, str]:
    """The converged local farm running the sample app's v1 (deploying the running commit is a no-op)."""
    farmlib.farm("deploy", "-f", farmlib.FARM, "--repo", app_repo["path"], "--ref", app_repo["v1"])
    return app_repo


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `farm_last` (the local farm's teardown) run after every other test."""
    items.sort(key=lambda item: item.get_closest_marker("farm_last") is not None)


# -- shared by the command tests (tests/commands/test_<topic>.py) ---------------------------


def demo_hosts(farms: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    return {name: h for name, h in farms.items() if h["farm"] == "demo"}


def head_of_sample_app() -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO_ROOT / "examples/bookshelf"), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


GUARDED = ("ansible-playbook", "podman", "ssh", "ssh-keygen", "debootstrap")


@pytest.fixture
def guard(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A PATH where the venv's tools stand, but the commands that act on hosts record their call and fail.

    With it, a bad invocation that got past validation could neither run a playbook against the fake
    hosts' addresses nor touch Podman: it would fail its test instead.
    """
    bin_dir = tmp_path / "guard-bin"
    bin_dir.mkdir()
    log = tmp_path / "guard.log"
    (bin_dir / "git").symlink_to(shutil.which("git") or "/usr/bin/git")  # reading the app's repo is harmless
    for name in GUARDED:
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit 99\n')
        script.chmod(0o755)
    yield f"{bin_dir}{os.pathsep}{ANSIBLE_BIN}", log


def assert_one_line_error(proc: subprocess.CompletedProcess[str], expect: str) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in output
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("farm: error: "), lines[0]
    assert expect in lines[0], lines[0]


FAKE = """#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_SSH_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *args]) + "\\n")
dest = args[args.index("--") - 1] if "--" in args else args[-1]
address = dest.split("@")[-1].split(":")[0]
given = sys.stdin.read() if os.environ.get("FAKE_SSH_STDIN") else ""
print(f"out from {address}{': ' + given if given else ''}")
print(f"err from {address}", file=sys.stderr)
sys.exit(json.loads(os.environ.get("FAKE_SSH_EXIT", "{}")).get(address, 0))
"""


@pytest.fixture
def fake_ssh(aws_env, farms, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment with `ssh` and `scp` standing in for the real ones, and their call log."""
    log = tmp_path / "ssh.log"
    env = with_fake_tools(aws_env, tmp_path, {"ssh": FAKE, "scp": FAKE}, "fake-ssh-bin")
    return {**env, "FAKE_SSH_LOG": str(log)}, log


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def remote_of(call: list[str]) -> list[str]:
    """The remote command words of an ssh call (after `--`, as the remote shell splits them)."""
    return shlex.split(call[call.index("--") + 1])


def one_line_error(proc: subprocess.CompletedProcess[str], expect: str) -> None:
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("farm: error: "), proc.stderr
    assert expect in lines[0], lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
