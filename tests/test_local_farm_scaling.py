"""Whole-farm test of scaling: `farm ps:scale` adds a worker host that is converged and deployed
to before it takes work, and removes it again while it runs jobs: they finish, none is lost.
Bad requests change nothing. The backlog the workers publish shows up in moto's CloudWatch, and
`farm ps:autoscale` records its target-tracking policy on the group standing for the local
workers. Runs on the session's local farm (tests/farmlib.py) and leaves it as it found it: one
worker host, no policy.
"""

from __future__ import annotations

import json
import secrets
import shlex
import subprocess
import time
from typing import Any

import pytest
from farmlib import (
    FARM,
    aws,
    ec2_instances,
    farm,
    farm_containers,
    first_with_role,
    hosts_with_role,
    on_host,
    wait_for,
)

pytestmark = pytest.mark.farm

ENV_FILE = "/etc/farmhand/bookshelf.env"
HOLD_SECONDS = 150  # long enough for the scale-in to start while the jobs run, on a busy machine


def redis_host() -> str:
    """The host running the farm's Redis: tagged redis, else the first worker host."""
    return (hosts_with_role("redis") or hosts_with_role("worker"))[0]


def redis(*args: str) -> str:
    """redis-cli with the app's REDIS_URL, on the Redis host."""
    # redis-cli -u sends an empty user name with the password: give the password as REDISCLI_AUTH.
    command = (
        f". {ENV_FILE} && pass=${{REDIS_URL#redis://:}} && pass=${{pass%%@*}} && "
        "where=${REDIS_URL##*@} && host=${where%%:*} && "
        f'REDISCLI_AUTH="$pass" redis-cli --no-auth-warning -h "$host" {shlex.join(args)}'
    )
    proc = on_host(redis_host(), "sh", "-c", command)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def sql(query: str) -> str:
    proc = on_host(
        first_with_role("db"),
        "runuser",
        "-u",
        "postgres",
        "--",
        "psql",
        "-X",
        "-At",
        "bookshelf",
        "-c",
        query,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def new_book(title: str) -> int:
    inserted = sql(
        f"insert into books (title, status, created_at, updated_at) values ('{title}', 'new', now(), now()) "
        "returning id"
    )
    return int(inserted.splitlines()[0])


def enqueue(job: str, args: list[Any], queue: str) -> None:
    """Push a job the way Sidekiq's client does."""
    now = time.time()
    payload = {"class": job, "args": args, "queue": queue, "jid": secrets.token_hex(12), "retry": False,
               "created_at": now, "enqueued_at": now}  # fmt: skip
    redis("SADD", "queues", queue)
    redis("LPUSH", f"queue:{queue}", json.dumps(payload))


def statuses(books: list[int]) -> dict[int, str]:
    rows = sql(f"select id, status from books where id in ({','.join(map(str, books))})")
    return {int(i): s for i, s in (line.split("|") for line in rows.splitlines())}


def processes() -> dict[str, Any]:
    return json.loads(farm("ps", "-f", FARM, "--json").stdout)["processes"]


def by_host() -> dict[str, dict[str, Any]]:
    return {p["host"]: p for p in processes()["by_host"]}


def sidekiq_processes(host: str, seconds: float = 90) -> int:
    """How many Sidekiq processes `farm ps` reads on HOST. A host too busy to answer one probe in
    time is shown with the reason (`error`) instead of its counts: read it again, and say why if
    it never answers."""
    seen: list[dict[str, Any]] = []

    def answered() -> dict[str, Any] | None:
        seen.append(by_host()[host])
        return seen[-1] if "sidekiq_processes" in seen[-1] else None

    row = wait_for(answered, seconds, lambda: f"farm ps reading {host}: {seen[-1]}", every=5)
    return int(row["sidekiq_processes"])


def farm_state() -> tuple[list[str], list[str]]:
    """The farm's containers and the running instances moto describes: compared before and after."""
    return sorted(farm_containers()), sorted(ec2_instances(states=("running",)))


def one_line_error(proc: subprocess.CompletedProcess[str], expect: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("farm: error: ") and expect in lines[0], proc.stderr


def test_ps_counts_unicorn_workers_and_sidekiq_processes(deployed_app):
    found = processes()
    assert found["by_type"]["web"]["unicorn_workers"] >= len(hosts_with_role("web"))
    worker = found["by_type"]["worker"]
    assert worker["hosts"] == len(hosts_with_role("worker"))
    assert worker["sidekiq_processes"] >= 1
    assert worker["queued_total"] is not None
    text = farm("ps", "-f", FARM).stdout
    assert "Unicorn workers on" in text and "Sidekiq processes on" in text


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (("worker=-1",), "invalid count -1 for worker"),
        (("dyno=2",), "unknown process type 'dyno'"),
        (("worker=abc",), "invalid count 'abc' for worker"),
        (("worker=1",), "already: nothing to change"),
        (("worker=0",), "cannot scale worker to 0"),
    ],
)
def test_bad_scale_changes_nothing(deployed_app, args, expect):
    assert len(hosts_with_role("worker")) == 1
    before = farm_state()
    one_line_error(farm("ps:scale", "-f", FARM, *args, ok=False), expect)
    assert farm_state() == before


def test_autoscale_records_the_backlog_policy_in_moto(deployed_app):
    farm("ps:autoscale", "-f", FARM, "worker", "--min", "1", "--max", "3", "--target", "5")
    asg = aws("autoscaling")
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f"farmhand-{FARM}-worker"])[
        "AutoScalingGroups"
    ][0]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (1, 3, 1)
    tags = {t["Key"]: t["Value"] for t in group["Tags"]}
    assert (tags["farm"], tags["role"]) == (FARM, "worker")
    policy = asg.describe_policies(AutoScalingGroupName=group["AutoScalingGroupName"])["ScalingPolicies"][0]
    spec = policy["TargetTrackingConfiguration"]
    assert spec["TargetValue"] == 5.0
    assert spec["CustomizedMetricSpecification"]["MetricName"] == "BacklogPerInstance"
    # The drain hook, as on AWS (moto records it; the local hosts' drain is off).
    hooks = asg.describe_lifecycle_hooks(AutoScalingGroupName=group["AutoScalingGroupName"])["LifecycleHooks"]
    assert [(h["LifecycleHookName"], h["DefaultResult"]) for h in hooks] == [("farmhand-drain", "CONTINUE")]
    assert "target 5 on Farmhand/BacklogPerInstance" in farm("ps:autoscale", "-f", FARM).stdout
    # Scale-in below the group's minimum is refused, nothing changed.
    before = farm_state()
    one_line_error(farm("ps:scale", "-f", FARM, "worker=0", ok=False), "cannot scale worker to 0")
    assert farm_state() == before


def test_the_workers_backlog_shows_up_in_cloudwatch(deployed_app):
    """Jobs waiting in a queue no process serves: the workers publish them per worker host."""
    cloudwatch = aws("cloudwatch")
    dims = [{"Name": "farm", "Value": FARM}, {"Name": "role", "Value": "worker"}]
    probe = "farmhand-scaling-probe"
    for _ in range(4):
        enqueue("HoldJob", [0, 1], probe)
    try:

        def published() -> bool:
            now = time.time()
            data = cloudwatch.get_metric_data(
                MetricDataQueries=[
                    {
                        "Id": "backlog",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "Farmhand",
                                "MetricName": "BacklogPerInstance",
                                "Dimensions": dims,
                            },
                            "Period": 60,
                            "Stat": "Maximum",
                        },
                    }
                ],
                StartTime=now - 600,
                EndTime=now + 60,
            )["MetricDataResults"][0]["Values"]
            return any(v >= 4 / max(len(hosts_with_role("worker")), 1) for v in data)

        wait_for(published, 240, "BacklogPerInstance >= 4 per worker host in moto's CloudWatch")
        names = {
            m["MetricName"] for m in cloudwatch.list_metrics(Namespace="Farmhand", Dimensions=dims)["Metrics"]
        }
        assert {"BacklogPerInstance", "OldestJobAgeSeconds", "QueuedJobs"} <= names
    finally:
        redis("DEL", f"queue:{probe}")
        redis("SREM", "queues", probe)


def test_scale_worker_1_2_1_loses_no_job_on_the_host_that_leaves(deployed_app):
    assert len(hosts_with_role("worker")) == 1
    first = hosts_with_role("worker")

    # The running release was deployed from the test's own repository (not farmhand_app_repo):
    # its commit is checked there before its archive is shipped.
    out = farm("ps:scale", "-f", FARM, "worker=2", "--repo", deployed_app["path"]).stdout
    workers = hosts_with_role("worker")
    assert len(workers) == 2
    (added,) = set(workers) - set(first)
    assert "Deploying" in out
    # Converged and deployed before it takes work: its Sidekiq runs the current release, every
    # process the first host runs (the `books` one too, which may boot after the `default` one).
    wanted = sidekiq_processes(first[0])
    booted = f"{wanted} Sidekiq processes on {added}"
    wait_for(lambda: by_host()[added].get("sidekiq_processes", 0) >= wanted, 300, booted, every=5)
    group = aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[f"farmhand-{FARM}-worker"])
    assert group["AutoScalingGroups"][0]["DesiredCapacity"] == 2

    # As many long jobs as both hosts have `books` threads: each host runs some.
    threads = sum(p.get("sidekiq_threads", 0) for p in processes()["by_host"] if p["host"] in workers)
    books = [new_book(f"Scale-in {n}") for n in range(4)]
    for book in books:
        enqueue("HoldJob", [book, HOLD_SECONDS], "books")
    # Each job holds its thread HOLD_SECONDS: one taken by the added host shows as busy that long.
    running = f"a job runs on {added}"
    wait_for(lambda: by_host()[added].get("sidekiq_busy", 0) >= 1, HOLD_SECONDS - 30, running, every=5)
    assert threads >= 4

    out = farm("ps:scale", "-f", FARM, "worker=1").stdout
    assert f"Quieting Sidekiq on {added}" in out
    assert hosts_with_role("worker") == first
    assert added not in farm_containers()
    # Every job finished: none was killed with the host (HoldJob is not retried: a lost one
    # would stay "processing").
    wait_for(lambda: set(statuses(books).values()) == {"processed"}, HOLD_SECONDS * 3, "every book processed")
    assert redis("LLEN", "queue:books") == "0"
    group = aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[f"farmhand-{FARM}-worker"])
    assert group["AutoScalingGroups"][0]["DesiredCapacity"] == 1


def test_autoscale_off_leaves_the_farm_as_it_was(deployed_app):
    farm("ps:autoscale", "-f", FARM, "worker", "--off")
    assert "worker: off" in farm("ps:autoscale", "-f", FARM).stdout
    hooks = aws("autoscaling").describe_lifecycle_hooks(AutoScalingGroupName=f"farmhand-{FARM}-worker")
    assert hooks["LifecycleHooks"] == []
    assert len(hosts_with_role("worker")) == 1
