"""The worker hosts' drain on a scale-in by the Auto Scaling group (sidekiq_metrics, `--drain`).

The role's script is installed and its settings written by Ansible with the role's defaults (its
copy and template), then it is run as the drain's systemd unit runs it, against:
- a fake instance metadata service on 127.0.0.1 (IMDSv2: a token first, then the target lifecycle
  state and the instance id);
- moto for Auto Scaling, behind a small proxy that answers the two calls moto 5.2 does not
  implement (RecordLifecycleActionHeartbeat, CompleteLifecycleAction) and records them;
- a stand-in `redis` module holding Sidekiq's process records (`processes`, each process's hash with
  `info`, `busy`, `quiet`), the way Sidekiq keeps them and the script reads them;
- a stand-in for sidekiq_worker's control command that records that it was asked to quiet.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import REGION

ROOT = Path(__file__).resolve().parents[1]
ROLE = ROOT / "roles" / "sidekiq_metrics"
PLAYBOOK_BIN = str(Path(sys.executable).with_name("ansible-playbook"))
TOKEN = "imds-token-0123"
GROUP = "drain-worker-asg"
UNSUPPORTED = ("RecordLifecycleActionHeartbeat", "CompleteLifecycleAction")

FAKE_REDIS = '''"""A stand-in for redis-py: the data the test wrote to FAKE_REDIS_STATE, read-only."""
import json
import re
import os


class Redis:
    @classmethod
    def from_url(cls, url, **kwargs):
        return cls()

    def __init__(self):
        with open(os.environ["FAKE_REDIS_STATE"], encoding="utf-8") as handle:
            self.data = json.load(handle)

    def smembers(self, key):
        return {v.encode() for v in self.data.get("sets", {}).get(key, [])}

    def llen(self, key):
        return len(self.data.get("lists", {}).get(key, []))

    def lrange(self, key, start, end):
        items = self.data.get("lists", {}).get(key, [])
        return [i.encode() for i in items[start : (None if end == -1 else end + 1)]]

    def hgetall(self, key):
        return {k.encode(): str(v).encode() for k, v in self.data.get("hashes", {}).get(key, {}).items()}
'''


class FakeAws:
    """IMDS on GET/PUT /latest/..., Auto Scaling on POST /: moto, but for the two calls it lacks."""

    def __init__(self, moto: str) -> None:
        self.moto = moto
        self.state = "InService"
        self.instance_id = ""
        self.refuse = False  # answer the lifecycle calls as AWS does once the action is over
        self.imds: list[str] = []
        self.aws: list[dict[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def actions(self) -> list[str]:
        return [call["Action"] for call in self.aws]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:
                fake.imds.append(f"PUT {self.path}")
                if self.path == "/latest/api/token" and self.headers.get(
                    "X-aws-ec2-metadata-token-ttl-seconds"
                ):
                    self._send(200, TOKEN.encode())
                else:
                    self._send(400, b"")

            def do_GET(self) -> None:
                fake.imds.append(f"GET {self.path}")
                if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                    self._send(401, b"")  # IMDSv2: no token, no answer
                    return
                answers = {
                    "/latest/meta-data/autoscaling/target-lifecycle-state": fake.state,
                    "/latest/meta-data/instance-id": fake.instance_id,
                }
                if self.path in answers:
                    self._send(200, answers[self.path].encode())
                else:
                    self._send(404, b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                params = dict(urllib.parse.parse_qsl(body.decode()))
                fake.aws.append(params)
                action = params.get("Action", "")
                if action in UNSUPPORTED and fake.refuse:
                    error = (
                        "<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code>"
                        "<Message>No active Lifecycle Action found with instance ID "
                        f"{fake.instance_id}</Message>"
                        "</Error><RequestId>1</RequestId></ErrorResponse>"
                    )
                    self._send(400, error.encode(), "text/xml")
                    return
                if action in UNSUPPORTED:
                    xml = (
                        f'<{action}Response xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
                        f"<{action}Result/><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>"
                        f"</{action}Response>"
                    )
                    self._send(200, xml.encode(), "text/xml")
                    return
                request = urllib.request.Request(
                    fake.moto + self.path,
                    data=body,
                    method="POST",
                    headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
                )
                with urllib.request.urlopen(request, timeout=30) as response:
                    self._send(response.status, response.read(), response.headers.get("Content-Type", ""))

        return Handler


@pytest.fixture
def fake_aws(aws_env: dict[str, str]) -> Iterator[FakeAws]:
    fake = FakeAws(aws_env["AWS_ENDPOINT_URL"])
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on: an IMDS that does not answer."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def render(tmp_path: Path, imds_url: str, ctl: Path) -> tuple[Path, Path]:
    """The role's script and its settings, as Ansible's copy and template modules install them with
    the role's defaults."""
    script = tmp_path / "farmhand-sidekiq-stats"
    config = tmp_path / "stats.json"
    playbook = tmp_path / "render.yml"
    playbook.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n"
        f"  vars_files: [{ROLE / 'defaults/main.yml'}, {ROLE / 'vars/main.yml'}]\n"
        "  tasks:\n    - name: Install the script\n      ansible.builtin.copy:\n"
        f"        src: {ROLE / 'files/farmhand-sidekiq-stats.py'}\n"
        f"        dest: {script}\n        mode: '0755'\n"
        "    - name: Write its settings\n      ansible.builtin.template:\n"
        f"        src: {ROLE / 'templates/farmhand-sidekiq-stats.json.j2'}\n"
        f"        dest: {config}\n        mode: '0644'\n"
    )
    extra = {
        "sidekiq_metrics_farm": "drain",
        "sidekiq_metrics_imds_url": imds_url,
        "sidekiq_metrics_drain_command": [str(ctl), "stop"],
        "sidekiq_metrics_env_file": str(tmp_path / "app.env"),
    }
    proc = subprocess.run(
        [PLAYBOOK_BIN, "-i", "localhost,", str(playbook), "-e", json.dumps(extra)],
        cwd=tmp_path,
        env={
            "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return script, config


class Host:
    """One worker host: the rendered drain, its Sidekiq records in the fake Redis, its control command."""

    def __init__(self, tmp_path: Path, aws_env: dict[str, str], imds_url: str, endpoint: str) -> None:
        self.tmp = tmp_path
        self.quiet_calls = tmp_path / "quiet.log"
        self.ctl = tmp_path / "sidekiq-app"
        self.ctl.write_text(f'#!/bin/sh\necho "$*" >> "{self.quiet_calls}"\necho stopped\n')
        self.ctl.chmod(0o755)
        lib = tmp_path / "fakelib"
        lib.mkdir()
        (lib / "redis.py").write_text(FAKE_REDIS)
        self.state = tmp_path / "redis.json"
        self.sidekiq([])
        self.script, config = render(tmp_path, imds_url, self.ctl)
        self.env = {
            **aws_env,
            "FARMHAND_SIDEKIQ_STATS_CONFIG": str(config),
            "PYTHONPATH": str(lib),
            "FAKE_REDIS_STATE": str(self.state),
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "FARMHAND_METRICS_ENDPOINT_URL": endpoint,
            "FARMHAND_METRICS_FARM": "drain",
        }

    def sidekiq(self, processes: list[dict[str, Any]]) -> None:
        """Sidekiq's records: each process's host, busy threads and quiet flag."""
        hashes = {
            f"{p['hostname']}:{n}:abc": {
                "info": json.dumps({"hostname": p["hostname"], "concurrency": 5, "queues": ["default"]}),
                "busy": p["busy"],
                "quiet": "true" if p["quiet"] else "false",
            }
            for n, p in enumerate(processes)
        }
        self.state.write_text(
            json.dumps({"sets": {"processes": sorted(hashes), "queues": []}, "hashes": hashes})
        )

    def drain(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(self.script), "--drain", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def quieted(self) -> list[str]:
        return self.quiet_calls.read_text().splitlines() if self.quiet_calls.exists() else []


def worker_group(env: dict[str, str]) -> str:
    """A worker group in moto with one instance; that instance's id."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    ec2 = session.client("ec2", endpoint_url=env["AWS_ENDPOINT_URL"])
    asg = session.client("autoscaling", endpoint_url=env["AWS_ENDPOINT_URL"])
    vpc = ec2.create_vpc(CidrBlock="10.78.0.0/24")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.78.0.0/24")["Subnet"]["SubnetId"]
    ec2.create_launch_template(
        LaunchTemplateName=GROUP, LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.small"}
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName=GROUP,
        LaunchTemplate={"LaunchTemplateName": GROUP, "Version": "$Latest"},
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=1,
        VPCZoneIdentifier=subnet,
    )
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    return group["Instances"][0]["InstanceId"]


@pytest.fixture
def host(tmp_path: Path, aws_env: dict[str, str], fake_aws: FakeAws) -> Host:
    fake_aws.instance_id = worker_group(aws_env)
    return Host(tmp_path, aws_env, fake_aws.url, fake_aws.url)


HERE = socket.gethostname()
OTHER = "some-other-worker"


def test_without_an_instance_metadata_service_the_drain_does_nothing_quietly(tmp_path, aws_env, fake_aws):
    host = Host(tmp_path, aws_env, f"http://127.0.0.1:{closed_port()}", fake_aws.url)
    host.sidekiq([{"hostname": HERE, "busy": 2, "quiet": False}])
    proc = host.drain()
    assert proc.returncode == 0, proc.stderr
    assert (proc.stdout, proc.stderr) == ("", "")
    assert fake_aws.aws == [] and host.quieted() == []
    # --debug: one line says why, no more.
    debug = host.drain("--debug")
    assert debug.returncode == 0 and debug.stdout == ""
    assert len(debug.stderr.strip().splitlines()) == 1 and "no instance metadata" in debug.stderr


def test_an_instance_in_service_is_left_alone(host, fake_aws):
    host.sidekiq([{"hostname": HERE, "busy": 2, "quiet": False}])
    proc = host.drain()
    assert proc.returncode == 0, proc.stderr
    assert (proc.stdout, proc.stderr) == ("", "")
    # IMDSv2: a token first, then the state and the id with it.
    assert fake_aws.imds[0] == "PUT /latest/api/token"
    assert "GET /latest/meta-data/autoscaling/target-lifecycle-state" in fake_aws.imds
    assert fake_aws.aws == [] and host.quieted() == []


def test_a_terminating_instance_with_a_busy_job_is_quieted_and_heartbeats_without_completing(host, fake_aws):
    fake_aws.state = "Terminated"
    host.sidekiq(
        [
            {"hostname": HERE, "busy": 1, "quiet": False},
            {"hostname": HERE, "busy": 0, "quiet": False},
            {"hostname": OTHER, "busy": 3, "quiet": False},
        ]
    )
    proc = host.drain()
    assert proc.returncode == 0, proc.stderr
    assert host.quieted() == ["stop"]
    assert "CompleteLifecycleAction" not in fake_aws.actions()
    (beat,) = [c for c in fake_aws.aws if c["Action"] == "RecordLifecycleActionHeartbeat"]
    assert (beat["LifecycleHookName"], beat["AutoScalingGroupName"], beat["InstanceId"]) == (
        "farmhand-drain",
        GROUP,
        fake_aws.instance_id,
    )
    assert "quieted 2 Sidekiq processes" in proc.stderr

    # The next step: quiet now, a job still running: a heartbeat, no second quiet, no completion.
    host.sidekiq(
        [{"hostname": HERE, "busy": 1, "quiet": True}, {"hostname": OTHER, "busy": 3, "quiet": False}]
    )
    fake_aws.aws.clear()
    proc = host.drain()
    assert proc.returncode == 0, proc.stderr
    assert host.quieted() == ["stop"]
    assert fake_aws.actions().count("RecordLifecycleActionHeartbeat") == 1
    assert "CompleteLifecycleAction" not in fake_aws.actions()
    assert "1 jobs still running" in proc.stderr


@pytest.mark.parametrize(
    "processes",
    [
        # Quieted, its jobs done (another host's busy jobs do not count).
        [{"hostname": HERE, "busy": 0, "quiet": True}, {"hostname": OTHER, "busy": 3, "quiet": False}],
        # Its processes have exited (ps:scale drained it, or the drain's stop finished).
        [{"hostname": OTHER, "busy": 3, "quiet": False}],
    ],
)
def test_a_terminating_instance_with_no_busy_job_completes_the_action(host, fake_aws, processes):
    fake_aws.state = "Terminated"
    host.sidekiq(processes)
    proc = host.drain()
    assert proc.returncode == 0, proc.stderr
    assert host.quieted() == []
    (done,) = [c for c in fake_aws.aws if c["Action"] == "CompleteLifecycleAction"]
    assert (
        done["LifecycleHookName"],
        done["AutoScalingGroupName"],
        done["InstanceId"],
        done["LifecycleActionResult"],
    ) == ("farmhand-drain", GROUP, fake_aws.instance_id, "CONTINUE")
    # The group was found through Auto Scaling (moto), as the instance profile allows.
    assert fake_aws.actions() == ["DescribeAutoScalingInstances", "CompleteLifecycleAction"]
    assert "lifecycle action completed" in proc.stderr


def _camel(call: str) -> str:
    return "".join(part.title() for part in call.split("_"))


def test_the_example_worker_policy_allows_exactly_what_the_worker_hosts_call():
    """examples/iam/worker-instance-profile.json against the code that runs on worker hosts: the
    role's script (boto3: CloudWatch and Auto Scaling) and the sample app's S3 calls."""
    policy = json.loads((ROOT / "examples/iam/worker-instance-profile.json").read_text())
    allowed = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        allowed |= {actions} if isinstance(actions, str) else set(actions)
    script = (ROLE / "files/farmhand-sidekiq-stats.py").read_text()
    # Every method called on a client in the script that is an operation of an AWS service a host
    # might call (the Redis client's calls are none).
    session = boto3.session.Session(region_name=REGION)
    operations = {
        svc: set(
            session.client(svc, aws_access_key_id="x", aws_secret_access_key="x").meta.method_to_api_mapping
        )
        for svc in ("cloudwatch", "autoscaling", "s3", "ssm", "ec2", "sts")
    }
    boto_calls = {
        f"{svc}:{_camel(call)}"
        for call in re.findall(r"client\.([a-z_]+)\(", script)
        for svc, names in operations.items()
        if call in names
    }
    assert boto_calls == {
        "cloudwatch:PutMetricData",
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:RecordLifecycleActionHeartbeat",
        "autoscaling:CompleteLifecycleAction",
    }
    storage = (ROOT / "examples/bookshelf/app/services/book_storage.rb").read_text()
    s3_calls = set(re.findall(r"@client\.([a-z_]+)\(", storage))
    called = boto_calls | {f"s3:{_camel(c)}" for c in s3_calls}
    assert allowed == called
    bucket = next(s for s in policy["Statement"] if s["Sid"] == "AppFilesBucketObjects")
    assert bucket["Resource"] == "arn:aws:s3:::APP-files-FARM/*"  # farmhand_app_bucket's pattern


def test_a_refused_lifecycle_call_is_one_line_and_a_failed_step(host, fake_aws):
    """After the action is over (completed, or timed out) AWS refuses the calls: the step fails with
    one line in the journal, no traceback; the next timer run tries again."""
    fake_aws.state = "Terminated"
    fake_aws.refuse = True
    host.sidekiq([])
    proc = host.drain()
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "the drain failed" in lines[0] and "No active Lifecycle Action" in lines[0]
    assert "Traceback" not in proc.stderr
