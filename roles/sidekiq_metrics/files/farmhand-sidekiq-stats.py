#!/usr/bin/python3
# Installed by Ansible (role sidekiq_metrics): local changes are overwritten.
"""The farm's Sidekiq queues as Redis holds them, for `farm ps` and CloudWatch.

    farmhand-sidekiq-stats            JSON: queued jobs per queue, oldest job's age, processes
    farmhand-sidekiq-stats --publish  put BacklogPerInstance, OldestJobAgeSeconds and QueuedJobs
                                      into CloudWatch (namespace, farm and role from the environment)
    farmhand-sidekiq-stats --drain    if the Auto Scaling group is terminating this instance: quiet
                                      its Sidekiq processes, heartbeat while jobs run, then complete
                                      the lifecycle action (CONTINUE)

BacklogPerInstance is the jobs waiting in every queue divided by the worker hosts whose Sidekiq
takes work (quiet ones do not count), at least one: the figure AWS advises a queue worker group
to track.

The drain reads the instance's target lifecycle state from the instance metadata service (IMDSv2).
Where that does not answer (not on EC2, or not in an Auto Scaling group) it does nothing.

Python 3 standard library, boto3 and redis-py (Debian's). The settings (the app's env file, the
metadata service, the lifecycle hook, the drain command) are the JSON file the role writes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

CONFIG = Path(os.environ.get("FARMHAND_SIDEKIQ_STATS_CONFIG", "/etc/farmhand-sidekiq-metrics/stats.json"))
_LINE = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)="(.*)"$')
IMDS_TIMEOUT = 2
log = logging.getLogger("farmhand-sidekiq-stats")


def load_config() -> dict:
    """The role's settings: env_file, redis_url_var, imds_url, lifecycle_hook, autoscaling_group,
    drain_command."""
    try:
        return json.loads(CONFIG.read_text(encoding="utf-8"))
    except FileNotFoundError:
        sys.exit(f"farmhand-sidekiq-stats: no configuration at {CONFIG}: is sidekiq_metrics applied?")
    except PermissionError:
        sys.exit(f"farmhand-sidekiq-stats: cannot read {CONFIG}: run as root or as the app's group")


def redis_url(config: dict) -> str:
    """The Redis URL: from the environment, else from the app's env file (KEY="value" lines)."""
    env_file, var = config["env_file"], config["redis_url_var"]
    if os.environ.get(var):
        return os.environ[var]
    with open(env_file, encoding="utf-8") as handle:
        for line in handle:
            match = _LINE.match(line.rstrip("\n"))
            if match and match[1] == var:
                return re.sub(r"\\(.)", r"\1", match[2])
    sys.exit(f"farmhand-sidekiq-stats: no {var} in {env_file}")


def read_stats(client: Any) -> dict:
    now = time.time()
    queued, oldest = {}, {}
    for name in sorted(q.decode() for q in client.smembers("queues")):
        queued[name] = client.llen(f"queue:{name}")
        last = client.lrange(f"queue:{name}", -1, -1)
        age = 0.0
        if last:
            try:
                age = max(now - float(json.loads(last[0]).get("enqueued_at", now)), 0.0)
            except (ValueError, TypeError):
                age = 0.0
        oldest[name] = round(age, 1)
    processes = []
    for identity in sorted(p.decode() for p in client.smembers("processes")):
        fields = client.hgetall(identity)
        if not fields:
            continue  # gone: its heartbeat expired
        info = json.loads(fields.get(b"info", b"{}"))
        processes.append(
            {
                "identity": identity,
                "hostname": info.get("hostname", ""),
                "busy": int(fields.get(b"busy", b"0")),
                "concurrency": int(info.get("concurrency", 0)),
                "queues": info.get("queues", []),
                "quiet": fields.get(b"quiet", b"false") == b"true",
            }
        )
    taking = sorted({p["hostname"] for p in processes if not p["quiet"]})
    total = sum(queued.values())
    return {
        "hostname": socket.gethostname(),
        "queued": queued,
        "queued_total": total,
        "oldest_job_age": max(oldest.values(), default=0.0),
        "busy_total": sum(p["busy"] for p in processes),
        "worker_hosts": len(taking),
        "backlog_per_instance": round(total / max(len(taking), 1), 2),
        "processes": processes,
    }


def aws_client(service: str) -> Any:
    import boto3

    endpoint = os.environ.get("FARMHAND_METRICS_ENDPOINT_URL") or None
    return boto3.client(service, endpoint_url=endpoint)


def publish(stats: dict) -> None:
    dimensions = [
        {"Name": "farm", "Value": os.environ["FARMHAND_METRICS_FARM"]},
        {"Name": "role", "Value": os.environ.get("FARMHAND_METRICS_ROLE", "worker")},
    ]
    client = aws_client("cloudwatch")
    figures = [
        ("BacklogPerInstance", stats["backlog_per_instance"], "Count"),
        ("OldestJobAgeSeconds", stats["oldest_job_age"], "Seconds"),
        ("QueuedJobs", stats["queued_total"], "Count"),
    ]
    client.put_metric_data(
        Namespace=os.environ.get("FARMHAND_METRICS_NAMESPACE", "Farmhand"),
        MetricData=[
            {"MetricName": name, "Dimensions": dimensions, "Value": float(value), "Unit": unit}
            for name, value, unit in figures
        ],
    )


def imds(base: str, path: str, token: str | None = None, method: str = "GET") -> str | None:
    """One answer of the instance metadata service (IMDSv2), or None where it does not answer."""
    headers = {"X-aws-ec2-metadata-token": token} if token else {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    request = urllib.request.Request(base.rstrip("/") + path, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=IMDS_TIMEOUT) as response:
            return response.read().decode().strip()
    except (OSError, urllib.error.URLError, ValueError):
        return None


def lifecycle_target(base: str) -> tuple[str, str] | None:
    """(target lifecycle state, instance id) of this instance, or None off EC2 or outside a group."""
    token = imds(base, "/latest/api/token", method="PUT")
    if not token:
        return None
    state = imds(base, "/latest/meta-data/autoscaling/target-lifecycle-state", token)
    instance_id = imds(base, "/latest/meta-data/instance-id", token)
    if not state or not instance_id:
        return None
    return state, instance_id


def host_processes(stats: dict, hostname: str) -> list[dict]:
    """This host's Sidekiq processes, as their heartbeats in Redis describe them."""
    return [p for p in stats["processes"] if p["hostname"] == hostname]


def group_of(client: Any, instance_id: str, group: str) -> str:
    if group:
        return group
    found = client.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    if not found:
        sys.exit(f"farmhand-sidekiq-stats: {instance_id} is in no Auto Scaling group")
    return found[0]["AutoScalingGroupName"]


def quiet(command: list[str]) -> bool:
    """Quiet this host's Sidekiq processes: each takes no new job and exits once its jobs finish."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        log.error("%s failed (%d): %s", " ".join(command), done.returncode, done.stderr.strip())
    return done.returncode == 0


def drain(config: dict, client_for_redis: Callable[[], Any]) -> str:
    """One step of the drain (the timer runs it every few seconds); what it did, as a word."""
    target = lifecycle_target(config["imds_url"])
    if target is None:
        log.debug("no instance metadata service: not on EC2, nothing to drain")
        return "none"
    state, instance_id = target
    if state != "Terminated":
        return "none"
    mine = host_processes(read_stats(client_for_redis()), socket.gethostname())
    client = aws_client("autoscaling")
    action = {
        "LifecycleHookName": config["lifecycle_hook"],
        "AutoScalingGroupName": group_of(client, instance_id, config["autoscaling_group"]),
        "InstanceId": instance_id,
    }
    taking = [p for p in mine if not p["quiet"]]
    busy = sum(p["busy"] for p in mine)
    if taking:
        # Their heartbeats in Redis show the quiet state a few seconds later: the next step reads it.
        quiet(config["drain_command"])
        client.record_lifecycle_action_heartbeat(**action)
        log.info("%s is leaving its group: quieted %d Sidekiq processes", instance_id, len(taking))
        return "quieted"
    if busy:
        client.record_lifecycle_action_heartbeat(**action)
        log.info("%s is leaving its group: %d jobs still running", instance_id, busy)
        return "heartbeat"
    client.complete_lifecycle_action(LifecycleActionResult="CONTINUE", **action)
    log.info("%s is leaving its group: no job running, lifecycle action completed", instance_id)
    return "completed"


def redis_client(config: dict) -> Any:
    import redis

    return redis.Redis.from_url(redis_url(config), socket_timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--publish", action="store_true", help="put the figures into CloudWatch")
    mode.add_argument(
        "--drain", action="store_true", help="drain this host if its Auto Scaling group terminates it"
    )
    parser.add_argument("--debug", action="store_true", help="log what the drain found")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="farmhand-sidekiq-stats: %(message)s")
    log.setLevel(logging.DEBUG if args.debug else logging.INFO)
    config = load_config()
    if args.drain:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            drain(config, lambda: redis_client(config))
        except (BotoCoreError, ClientError) as exc:
            sys.exit(f"farmhand-sidekiq-stats: the drain failed: {exc}")
        return
    stats = read_stats(redis_client(config))
    if args.publish:
        publish(stats)
    print(json.dumps(stats, sort_keys=True))


if __name__ == "__main__":
    main()
