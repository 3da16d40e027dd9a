"""`farm ps:scale` and `farm ps:autoscale` against moto (EC2, Auto Scaling), with stand-ins for
ansible-playbook and ansible: hosts are launched, named and terminated in moto, the playbooks get
the right limits, bad input is one line and changes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import (
    ANSIBLE_BIN,
    REGION,
    REPO_ROOT,
    Fleet,
    assert_ok,
    demo_hosts,
    farm,
    head_of_sample_app,
    inventory_list,
    parameters,
    snapshot,
    ssm_client,
)

from farmhand.core import releases
from farmhand.core.errors import FarmError
from farmhand.core.inventory import Host
from farmhand.core.local.shape import plan_scaled
from farmhand.core.project import Project
from farmhand.core.scaling import autoscale as autoscaling
from farmhand.core.scaling.plan import Bounds, parse_requests, plan, removable

ROLES = ("web", "worker", "db", "db_follower", "db_restore", "cron", "console", "lb", "redis")


def client(env: dict[str, str], service: str) -> Any:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    ).client(service, endpoint_url=env["AWS_ENDPOINT_URL"])


def host(name: str, roles: str, instance_id: str = "i-0123456789abcdef0") -> Host:
    return Host(name, tuple(roles.split(",")), instance_id, "10.0.0.1", "running", "t3.small")


# -- the checks, as functions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give at least one TYPE=COUNT"),
        (("worker=-1",), "invalid count -1 for worker: a count is 0 or more"),
        (("worker=abc",), "invalid count 'abc' for worker"),
        (("worker=",), "invalid count '' for worker"),
        (("dyno=2",), "unknown process type 'dyno'"),
        (("db=2",), "role 'db' is not a process type ps:scale changes"),
        (("worker",), "invalid argument 'worker'"),
        (("worker=1", "worker=2"), "worker is given twice"),
    ],
)
def test_parse_requests_refuses_bad_input(args, message):
    with pytest.raises(FarmError, match=message):
        parse_requests(args, ROLES)


def test_parse_requests_reads_counts():
    assert parse_requests(["worker=3", "web=2"], ROLES) == {"worker": 3, "web": 2}


def test_scale_in_picks_hosts_carrying_the_role_alone_newest_first_never_redis():
    hosts = [
        host("f-db-worker-cron-1", "db,worker,cron"),
        host("f-worker-1", "worker"),
        host("f-worker-2", "worker"),
        host("f-worker-10", "worker"),
    ]
    assert [h.name for h in removable(hosts, "worker", protected=["f-worker-1"])] == [
        "f-worker-10",
        "f-worker-2",
    ]
    changes = plan("f", {"worker": 2}, hosts, {}, protected=["f-worker-1"])
    assert [h.name for h in changes[0].leaving] == ["f-worker-10", "f-worker-2"]


@pytest.mark.parametrize(
    ("wanted", "bounds", "message"),
    [
        ({"worker": 1}, {}, "the farm runs worker=1 already: nothing to change"),
        (
            {"worker": 0},
            {},
            r"only 0 of its 1 hosts can leave \(hosts tagged db,worker,cron carry other roles",
        ),
        ({"worker": 0}, {"worker": Bounds(1, 5, "Auto Scaling group g")}, "the minimum is 1"),
        ({"worker": 9}, {"worker": Bounds(1, 5, "Auto Scaling group g")}, "the maximum is 5"),
        ({"web": 0}, {}, "web needs at least 1 host"),
        ({"worker": 40}, {}, "at most 20 per command"),
    ],
)
def test_plan_refuses_what_cannot_be_done(wanted, bounds, message):
    hosts = [host("f-web-1", "web"), host("f-db-worker-cron-1", "db,worker,cron")]
    with pytest.raises(FarmError, match=message):
        plan("f", wanted, hosts, bounds)


def test_local_shape_takes_scaled_counts_beside_a_host_of_several_roles():
    shape = {"web": 2, "lb": 1, "db,worker,cron": 1}
    names = [h.name for h in plan_scaled("ci", shape, {"worker": 2}, ROLES)]
    assert names[-2:] == ["ci-worker-1", "ci-worker-2"]
    assert "ci-db-worker-cron-1" in names
    # A key of the role alone has its count replaced, not added to.
    assert [h.name for h in plan_scaled("d", {"worker": 1, "web": 1}, {"worker": 3}, ROLES)] == [
        "d-worker-1",
        "d-worker-2",
        "d-worker-3",
        "d-web-1",
    ]


# -- the CLI against moto ------------------------------------------------------------------------


@pytest.fixture
def fakes(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Stand-ins for ansible-playbook (records its arguments, prints an OK recap) and ansible
    (wait_for_connection answers SUCCESS for every host of the pattern)."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    (bin_dir / "ansible-playbook").write_text(
        f'#!/bin/sh\necho "$*" >> "{calls}"\necho "PLAY RECAP *****"\n'
        "echo 'x : ok=1 changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0'\n"
    )
    (bin_dir / "ansible").write_text(
        f'#!/bin/sh\necho "ansible $*" >> "{calls}"\n'
        # What the farmhand_results callback records of a module run that succeeded on each host.
        'IFS=,; for h in $1; do echo "$h | SUCCESS => {\\"changed\\": false}"\n'
        'echo "{\\"event\\": \\"ok\\", \\"host\\": \\"$h\\", \\"result\\": {\\"changed\\": false}}"'
        ' >> "$FARMHAND_RESULTS_FILE"; done\n'
    )
    (bin_dir / "ssh").write_text("#!/bin/sh\nexit 255\n")
    (bin_dir / "git").symlink_to(shutil.which("git") or "/usr/bin/git")  # the app's repository
    for name in ("ansible-playbook", "ansible", "ssh"):
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{ANSIBLE_BIN}"}, calls


def playbook_calls(calls: Path) -> list[str]:
    return [line for line in calls.read_text().splitlines() if line.startswith("playbooks/")]


@pytest.fixture
def staging(fleet: Fleet) -> dict[str, dict[str, str]]:
    hosts = [
        fleet.add("staging", "web", "staging-web-1"),
        fleet.add("staging", "db", "staging-db-1"),
        fleet.add("staging", "worker", "staging-worker-1"),
        fleet.add("staging", "lb", "staging-lb-1"),
    ]
    return {h["name"]: h for h in hosts}


def running(ec2: Any, farm_name: str) -> dict[str, dict[str, Any]]:
    found = {}
    for res in ec2.describe_instances(Filters=[{"Name": "tag:farm", "Values": [farm_name]}])["Reservations"]:
        for inst in res["Instances"]:
            if inst["State"]["Name"] == "running":
                tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
                found[tags.get("Name", inst["InstanceId"])] = {**inst, "tags": tags}
    return found


def test_scale_out_and_in_without_a_group_copies_a_host_and_drains_before_terminating(
    aws_env, ec2, staging, fakes
):
    extra, calls = fakes
    env = {**aws_env, **extra}
    proc = farm("ps:scale", "-f", "staging", "worker=2", env=env)
    assert_ok(proc)
    hosts = running(ec2, "staging")
    assert "staging-worker-2" in hosts, proc.stdout
    new, model = hosts["staging-worker-2"], hosts["staging-worker-1"]
    assert new["tags"]["role"] == "worker" and new["tags"]["farm"] == "staging"
    for key in ("ImageId", "InstanceType", "SubnetId"):
        assert new[key] == model[key]
    # Converged with the hosts that list the farm's hosts (pg_hba, the load balancer); no release yet.
    assert playbook_calls(calls) == ["playbooks/site.yml --limit staging-db-1,staging-lb-1,staging-worker-2"]
    assert "ansible staging-worker-2 -m ansible.builtin.wait_for_connection" in calls.read_text()
    assert "staging runs worker=2" in proc.stdout

    calls.unlink()
    proc = farm("ps:scale", "-f", "staging", "worker=1", env=env)
    assert_ok(proc)
    assert "staging-worker-2" not in running(ec2, "staging")
    assert "staging-worker-1" in running(ec2, "staging")
    assert playbook_calls(calls) == [
        "playbooks/scale_in.yml --limit staging-worker-2",
        "playbooks/site.yml --limit staging-db-1,staging-lb-1",
    ]


def running_release(env: dict[str, str], farm_name: str, sha: str, app: str = "bookshelf") -> None:
    """FARM_NAME's current release, as a deploy records it."""
    ssm = ssm_client(env["AWS_ENDPOINT_URL"])
    made = releases.create(ssm, farm_name, sha, f"Deploy {sha[:7]}", app=app, repo="/elsewhere/app")
    releases.finish(ssm, farm_name, made, "succeeded")


def foreign_commit(tmp_path: Path) -> str:
    """A commit of a repository of its own: not in the sample app's."""
    repo = tmp_path / "foreign"
    repo.mkdir()
    for args in (
        ["init", "-q"],
        ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "x"],
    ):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.mark.parametrize(
    ("release", "message"),
    [
        ("foreign", "v1's commit {short} is not in the app repository"),
        ("shop", "v1 is a release of the app 'shop', and the farm's app is now 'bookshelf'"),
    ],
)
def test_scale_out_refuses_to_ship_a_release_that_is_not_the_apps_and_changes_nothing(
    aws_env, ec2, staging, fakes, tmp_path, release, message
):
    extra, calls = fakes
    sha = foreign_commit(tmp_path) if release == "foreign" else head_of_sample_app()
    running_release(aws_env, "staging", sha, app=release if release == "shop" else "bookshelf")
    before, params = snapshot(ec2), parameters(aws_env["AWS_ENDPOINT_URL"])
    proc = farm("ps:scale", "-f", "staging", "worker=2", env={**aws_env, **extra})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    expect = message.format(short=sha[:7])
    assert len(lines) == 1 and lines[0].startswith("farm: error: ") and expect in lines[0], proc.stderr
    assert snapshot(ec2) == before  # no host launched
    assert parameters(aws_env["AWS_ENDPOINT_URL"]) == params
    assert not calls.exists()


def test_scale_out_ships_the_running_release_of_the_app_from_its_archive(aws_env, ec2, staging, fakes):
    extra, calls = fakes
    running_release(aws_env, "staging", head_of_sample_app())
    proc = farm("ps:scale", "-f", "staging", "worker=2", env={**aws_env, **extra})
    assert_ok(proc)
    assert playbook_calls(calls)[-1].startswith("playbooks/deploy.yml --limit staging-worker-2")
    archives = Path(aws_env["FARMHAND_HOME"]) / ".farm" / "archives" / "bookshelf"
    assert list(archives.glob(f"{head_of_sample_app()}-examples-bookshelf-*.tar.gz"))


def make_group(
    env: dict[str, str], fleet: Fleet, farm_name: str, role: str, size: int, minimum: int = 1
) -> str:
    ec2, asg = client(env, "ec2"), client(env, "autoscaling")
    name = f"{farm_name}-{role}-asg"
    tags = [{"Key": "farm", "Value": farm_name}, {"Key": "role", "Value": role}]
    ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": "ami-12c6146b",
            "InstanceType": "t3.small",
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}],
        },
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
        MinSize=minimum,
        MaxSize=5,
        DesiredCapacity=size,
        VPCZoneIdentifier=fleet.subnet,
        Tags=[
            {**t, "PropagateAtLaunch": True, "ResourceId": name, "ResourceType": "auto-scaling-group"}
            for t in tags
        ],
    )
    # Name the group's first instances as Farmhand would.
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    for n, inst in enumerate(group["Instances"], start=1):
        ec2.create_tags(
            Resources=[inst["InstanceId"]], Tags=[{"Key": "Name", "Value": f"{farm_name}-{role}-{n}"}]
        )
    return name


def test_scale_through_the_roles_auto_scaling_group(aws_env, ec2, fleet, fakes):
    extra, calls = fakes
    env = {**aws_env, **extra}
    fleet.add("prod", "web", "prod-web-1")
    fleet.add("prod", "db", "prod-db-1")
    name = make_group(aws_env, fleet, "prod", "worker", size=1)
    asg = client(aws_env, "autoscaling")

    proc = farm("ps:scale", "-f", "prod", "worker=3", env=env)
    assert_ok(proc)
    assert "Auto Scaling group prod-worker-asg" in proc.stdout
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 3
    assert {"prod-worker-1", "prod-worker-2", "prod-worker-3"} <= set(running(ec2, "prod"))
    assert playbook_calls(calls) == ["playbooks/site.yml --limit prod-db-1,prod-worker-2,prod-worker-3"]

    calls.unlink()
    proc = farm("ps:scale", "-f", "prod", "worker=2", env=env)
    assert_ok(proc)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 2
    # The first worker host runs the farm's Redis: the newest leaves.
    assert "prod-worker-3" not in running(ec2, "prod")
    assert playbook_calls(calls)[0] == "playbooks/scale_in.yml --limit prod-worker-3"

    before = snapshot(ec2)
    proc = farm("ps:scale", "-f", "prod", "worker=0", env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("farm: error: cannot scale worker to 0: the minimum is 1")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert snapshot(ec2) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("worker=-1",), "invalid count -1 for worker"),
        (("worker=abc",), "invalid count 'abc' for worker"),
        (("dyno=2",), "unknown process type 'dyno'"),
        (("worker=1",), "the farm runs worker=1 already: nothing to change"),
        (("worker=0",), "the minimum is 1 (Auto Scaling group staging-worker-asg)"),
        (("worker=9",), "the maximum is 5"),
        ((), "give at least one TYPE=COUNT"),
    ],
)
def test_bad_scale_is_one_line_and_changes_nothing(aws_env, ec2, fleet, fakes, args, message):
    extra, calls = fakes
    fleet.add("staging", "web", "staging-web-1")
    make_group(aws_env, fleet, "staging", "worker", size=1)
    before = snapshot(ec2)
    proc = farm("ps:scale", "-f", "staging", *args, env={**aws_env, **extra})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("farm: error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert snapshot(ec2) == before
    assert not calls.exists()


def test_autoscale_sets_shows_and_removes_the_backlog_policy(aws_env, fleet):
    fleet.add("prod", "web", "prod-web-1")
    name = make_group(aws_env, fleet, "prod", "worker", size=1)
    asg = client(aws_env, "autoscaling")

    proc = farm(
        "ps:autoscale", "-f", "prod", "worker", "--min", "1", "--max", "10", "--target", "5", env=aws_env
    )
    assert_ok(proc)
    policies = asg.describe_policies(AutoScalingGroupName=name)["ScalingPolicies"]
    assert len(policies) == 1
    config = policies[0]["TargetTrackingConfiguration"]
    assert config["TargetValue"] == 5.0
    metric = config["CustomizedMetricSpecification"]
    assert (metric["Namespace"], metric["MetricName"], metric["Statistic"]) == (
        "Farmhand",
        "BacklogPerInstance",
        "Average",
    )
    assert {(d["Name"], d["Value"]) for d in metric["Dimensions"]} == {("farm", "prod"), ("role", "worker")}
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    assert (group["MinSize"], group["MaxSize"]) == (1, 10)

    shown = farm("ps:autoscale", "-f", "prod", env=aws_env)
    assert_ok(shown)
    assert "worker: 1..10 hosts (now 1), target 5 on Farmhand/BacklogPerInstance" in shown.stdout

    off = farm("ps:autoscale", "-f", "prod", "worker", "--off", env=aws_env)
    assert_ok(off)
    assert asg.describe_policies(AutoScalingGroupName=name)["ScalingPolicies"] == []
    again = farm("ps:autoscale", "-f", "prod", "worker", "--off", env=aws_env)
    assert again.returncode == 2 and "no autoscaling policy on worker" in again.stderr


def group_state(asg: Any, name: str) -> tuple[Any, ...]:
    """The group's size settings, policies and lifecycle hooks: compared across a command that must
    change nothing."""
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    policies = asg.describe_policies(AutoScalingGroupName=name)["ScalingPolicies"]
    hooks = asg.describe_lifecycle_hooks(AutoScalingGroupName=name)["LifecycleHooks"]
    return (
        (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]),
        json.dumps(policies, sort_keys=True, default=str),
        json.dumps(hooks, sort_keys=True, default=str),
    )


def test_autoscale_puts_the_drain_hook_once_and_off_removes_it(aws_env, fleet):
    """The lifecycle hook the workers' drain completes: on the group with the policy, the same after
    a second run (nothing changes), shown, and removed by --off with the policy."""
    fleet.add("prod", "web", "prod-web-1")
    name = make_group(aws_env, fleet, "prod", "worker", size=1)
    asg = client(aws_env, "autoscaling")
    # group_vars/role_worker/worker.yml: the books process has the longest timeout, an hour.
    expected = 3600 + autoscaling.HOOK_MARGIN
    setting = ("ps:autoscale", "-f", "prod", "worker", "--min", "1", "--max", "4", "--target", "5")

    proc = farm(*setting, env=aws_env)
    assert_ok(proc)
    hooks = asg.describe_lifecycle_hooks(AutoScalingGroupName=name)["LifecycleHooks"]
    assert [
        (h["LifecycleHookName"], h["LifecycleTransition"], h["HeartbeatTimeout"], h["DefaultResult"])
        for h in hooks
    ] == [("farmhand-drain", "autoscaling:EC2_INSTANCE_TERMINATING", expected, "CONTINUE")]
    assert f"lifecycle hook farmhand-drain, heartbeat timeout {expected}s" in proc.stdout
    assert "(unchanged)" not in proc.stdout

    before = group_state(asg, name)
    again = farm(*setting, env=aws_env)
    assert_ok(again)
    assert group_state(asg, name) == before
    assert f"heartbeat timeout {expected}s (unchanged)" in again.stdout

    shown = farm("ps:autoscale", "-f", "prod", env=aws_env)
    assert_ok(shown)
    assert (
        f"scale-in drains first: lifecycle hook farmhand-drain (heartbeat timeout {expected}s, then CONTINUE)"
        in shown.stdout
    )
    as_json = json.loads(farm("ps:autoscale", "-f", "prod", "--json", env=aws_env).stdout)
    assert as_json["worker"]["drain_hook"] == {
        "name": "farmhand-drain",
        "heartbeat_timeout": expected,
        "default_result": "CONTINUE",
    }

    off = farm("ps:autoscale", "-f", "prod", "worker", "--off", env=aws_env)
    assert_ok(off)
    assert "Removed the lifecycle hook farmhand-drain" in off.stdout
    assert asg.describe_lifecycle_hooks(AutoScalingGroupName=name)["LifecycleHooks"] == []
    assert asg.describe_policies(AutoScalingGroupName=name)["ScalingPolicies"] == []
    shown = farm("ps:autoscale", "-f", "prod", env=aws_env)
    assert "no lifecycle hook farmhand-drain" in shown.stdout
    again = farm("ps:autoscale", "-f", "prod", "worker", "--off", env=aws_env)
    assert again.returncode == 2 and "nothing to remove" in again.stderr


def test_autoscale_repairs_a_drain_hook_changed_behind_its_back(aws_env, fleet):
    name = make_group(aws_env, fleet, "prod", "worker", size=1)
    asg = client(aws_env, "autoscaling")
    asg.put_lifecycle_hook(
        AutoScalingGroupName=name,
        LifecycleHookName="farmhand-drain",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=60,
        DefaultResult="ABANDON",
    )
    proc = farm(
        "ps:autoscale", "-f", "prod", "worker", "--min", "1", "--max", "4", "--target", "5", env=aws_env
    )
    assert_ok(proc)
    (hook,) = asg.describe_lifecycle_hooks(AutoScalingGroupName=name)["LifecycleHooks"]
    assert (hook["HeartbeatTimeout"], hook["DefaultResult"]) == (3600 + autoscaling.HOOK_MARGIN, "CONTINUE")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("worker", "--min", "3", "--max", "2", "--target", "5"), "invalid --max 2"),
        (("worker", "--min", "1", "--max", "2", "--target", "-1"), "invalid --target -1"),
        (("worker", "--min", "1", "--max", "101", "--target", "5"), "invalid --max 101"),
        (("worker", "--target", "5"), "give --min, --max and --target together"),
        (("worker", "--off", "--max", "3"), "--off removes the policy: give it alone"),
        (("worker", "--off"), "no autoscaling policy on worker: nothing to remove"),
    ],
)
def test_bad_autoscale_on_a_group_puts_no_hook_and_changes_nothing(aws_env, ec2, fleet, args, message):
    name = make_group(aws_env, fleet, "prod", "worker", size=1)
    asg = client(aws_env, "autoscaling")
    before, instances = group_state(asg, name), snapshot(ec2)
    proc = farm("ps:autoscale", "-f", "prod", *args, env=aws_env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("farm: error: ") and message in lines[0], proc.stderr
    assert group_state(asg, name) == before
    assert snapshot(ec2) == instances


def worker_project(tmp_path: Path, role_worker: str, farm_vars: str = "") -> Project:
    """A project laid out as Ansible reads it (inventory/group_vars -> ../group_vars, roles/) whose
    worker settings are ROLE_WORKER (group_vars/role_worker) and FARM_VARS (group_vars/farm_f), over
    sidekiq_worker's real defaults."""
    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory/aws_ec2.yml").symlink_to(repo / "inventory/aws_ec2.yml")
    (tmp_path / "inventory/group_vars").symlink_to("../group_vars")
    (tmp_path / "roles").mkdir()
    (tmp_path / "roles/sidekiq_worker").symlink_to(repo / "roles/sidekiq_worker")
    for group, text in (("role_worker", role_worker), ("farm_f", farm_vars)):
        (tmp_path / "group_vars" / group).mkdir(parents=True)
        (tmp_path / "group_vars" / group / "worker.yml").write_text(text or "---\n")
    return Project(tmp_path)


@pytest.mark.parametrize(
    ("role_worker", "farm_vars", "expected"),
    [
        # The longest process's timeout plus the margin.
        (
            "sidekiq_worker_processes:\n- {name: a, queues: [a], timeout: 60}\n"
            "- {name: b, queues: [b], timeout: 900}",
            "",
            900 + autoscaling.HOOK_MARGIN,
        ),
        # A process without a timeout of its own has sidekiq_worker_timeout (the role's default: 3600).
        ("sidekiq_worker_processes: [{name: a, queues: [a]}]", "", 3600 + autoscaling.HOOK_MARGIN),
        (
            "sidekiq_worker_processes: [{name: a, queues: [a]}]",
            "sidekiq_worker_timeout: 25",
            25 + autoscaling.HOOK_MARGIN,
        ),
        # AWS's maximum is 7200 s.
        ("sidekiq_worker_processes: [{name: a, queues: [a], timeout: 86400}]", "", 7200),
        # A timeout Ansible cannot work out (an undefined variable): the maximum, to be safe.
        ("sidekiq_worker_processes: [{name: a, queues: [a], timeout: '{{ t }}'}]", "", 7200),
        # A timeout Ansible computes is rendered as a converge renders it.
        ("sidekiq_worker_processes: [{name: a, queues: [a], timeout: '{{ t }}'}]\nt: 300", "", 300 + 120),
        # No processes set anywhere: the role's default process, with the default timeout.
        ("", "", 3600 + autoscaling.HOOK_MARGIN),
    ],
)
def test_the_drain_hooks_timeout_follows_the_longest_sidekiq_shutdown_timeout(
    tmp_path, role_worker, farm_vars, expected
):
    assert autoscaling.hook_timeout(worker_project(tmp_path, role_worker, farm_vars), "f") == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("worker", "--min", "1", "--max", "10", "--target", "5"), "has no Auto Scaling group tagged"),
        (("web", "--min", "1", "--max", "3", "--target", "5"), "only worker scales on its queue"),
        (("worker", "--min", "3", "--max", "2", "--target", "5"), "invalid --max 2"),
        (("worker", "--min", "1", "--max", "2", "--target", "0"), "invalid --target 0"),
        (("worker", "--min", "1", "--max", "2"), "give --min, --max and --target together"),
        (("worker", "--off", "--min", "1"), "--off removes the policy: give it alone"),
    ],
)
def test_bad_autoscale_is_one_line_and_changes_nothing(aws_env, ec2, staging, args, message):
    before = snapshot(ec2)
    proc = farm("ps:autoscale", "-f", "staging", *args, env=aws_env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert snapshot(ec2) == before
    assert client(aws_env, "autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []


def test_a_local_farms_group_stands_for_its_worker_containers(aws_env, fleet):
    """What `ps:autoscale` makes for a local farm: a group in moto, tagged, holding the containers'
    instances, with the policy; and what `farm local down` removes."""
    ec2, asg = client(aws_env, "ec2"), client(aws_env, "autoscaling")
    workers = [
        fleet.add("lf", "db,worker,cron", "lf-db-worker-cron-1"),
        fleet.add("lf", "worker", "lf-worker-1"),
    ]
    group = autoscaling.create_local_group(asg, ec2, "lf", "worker", [w["id"] for w in workers], 1, 4)
    assert group["AutoScalingGroupName"] == "farmhand-lf-worker"
    assert sorted(autoscaling.member_ids(group)) == sorted(w["id"] for w in workers)
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (1, 4, 2)
    assert autoscaling.find_group(asg, "lf", "worker")["AutoScalingGroupName"] == "farmhand-lf-worker"
    autoscaling.put_backlog_policy(asg, group, "lf", "worker", 1, 4, 5)
    assert autoscaling.put_drain_hook(asg, group, 3720) is True
    assert autoscaling.put_drain_hook(asg, group, 3720) is False
    described = autoscaling.describe(asg, group, "worker")
    assert (described.target, described.hook_timeout) == (5.0, 3720)
    assert autoscaling.delete_farm_groups(asg, ec2, "lf") == ["farmhand-lf-worker"]
    assert autoscaling.find_group(asg, "lf", "worker") is None


def test_ps_reports_hosts_whose_processes_cannot_be_read(aws_env, staging, fakes):
    """The web and worker hosts are asked over SSH (here an ssh that fails): the listing stays whole
    and each host says why its processes are unknown."""
    extra, _ = fakes
    proc = farm("ps", "-f", "staging", "--json", env={**aws_env, **extra})
    assert_ok(proc)
    data = json.loads(proc.stdout)
    assert {h["name"] for h in data["hosts"]} == set(staging)
    asked = {p["host"]: p for p in data["processes"]["by_host"]}
    assert set(asked) == {"staging-web-1", "staging-worker-1"}
    assert all(p["error"] for p in asked.values())
    assert data["processes"]["by_type"]["worker"]["queued_total"] is None
    quick = farm("ps", "-f", "staging", "--json", "--no-processes", env={**aws_env, **extra})
    assert "processes" not in json.loads(quick.stdout)


# -- farm ps: the farm's hosts, from the inventory and its cache ---------------------------------


def table_rows(stdout: str) -> dict[str, list[str]]:
    """`farm ps` table rows by host name (the HOST column)."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["ROLE", "HOST"])
    rows = [line.split() for line in lines[header + 1 :] if line.strip()]
    return {row[1]: row for row in rows}


def test_ps_prints_a_table_of_the_farm_only(aws_env, farms):
    proc = farm("ps", "-f", "demo", env=aws_env)
    assert_ok(proc)
    assert "=== demo (AWS us-east-1): 4 hosts" in proc.stdout
    rows = table_rows(proc.stdout)
    assert set(rows) == set(demo_hosts(farms))
    for name, host in demo_hosts(farms).items():
        role, _, instance_id, ip, state, instance_type = rows[name]
        assert (role, instance_id, ip, state, instance_type) == (
            host["role"],
            host["id"],
            host["ip"],
            "running",
            "t3.small",
        )
    assert "staging" not in proc.stdout
    assert "halted" not in proc.stdout


def test_ps_json_gives_roles_ids_ips_and_states(aws_env, farms):
    proc = farm("ps", "-f", "demo", "--json", env=aws_env)
    assert_ok(proc)
    data = json.loads(proc.stdout)
    assert data["farm"] == "demo"
    assert data["local"] is False
    hosts = {h["name"]: h for h in data["hosts"]}
    assert set(hosts) == set(demo_hosts(farms))
    for name, host in demo_hosts(farms).items():
        assert hosts[name] == {
            "name": name,
            "roles": host["role"].split(","),
            "instance_id": host["id"],
            "private_ip": host["ip"],
            "state": "running",
            "instance_type": "t3.small",
        }
    assert hosts["demo-worker-cron-1"]["roles"] == ["worker", "cron"]
    # Ordered by role (farmhand_roles: web, worker, db, ...), then by name.
    assert [h["name"] for h in data["hosts"]] == [
        "demo-web-1",
        "demo-web-2",
        "demo-worker-cron-1",
        "demo-db-1",
    ]


def test_ps_takes_the_farm_from_farmhand_farm(aws_env, farms):
    proc = farm("ps", "--json", env={**aws_env, "FARMHAND_FARM": "staging"})
    assert_ok(proc)
    data = json.loads(proc.stdout)
    assert data["farm"] == "staging"
    assert {h["name"] for h in data["hosts"]} == {"staging-web-1", "staging-worker-1"}


def test_ps_option_wins_over_farmhand_farm(aws_env, farms):
    proc = farm("ps", "-f", "demo", "--json", env={**aws_env, "FARMHAND_FARM": "staging"})
    assert_ok(proc)
    assert json.loads(proc.stdout)["farm"] == "demo"


def test_ps_finds_the_project_from_a_subdirectory(aws_env, fleet, tmp_path):
    """No FARMHAND_HOME: the checkout is found upwards from the working directory."""
    farm_name = "cwd_probe"  # no local farm by this name may exist in the checkout
    assert not (REPO_ROOT / ".farm" / "local" / farm_name).exists()
    fleet.add(farm_name, "web", "cwd-probe-web-1")
    env = {k: v for k, v in aws_env.items() if k != "FARMHAND_HOME"}
    proc = farm("ps", "-f", farm_name, "--json", env=env, cwd=REPO_ROOT / "group_vars")
    assert_ok(proc)
    assert [h["name"] for h in json.loads(proc.stdout)["hosts"]] == ["cwd-probe-web-1"]


def test_ps_refresh_sees_new_hosts_despite_the_cache(aws_env, fleet):
    fleet.add("demo", "web", "demo-web-1")
    first = farm("ps", "-f", "demo", "--json", env=aws_env)
    assert_ok(first)
    fleet.add("demo", "web", "demo-web-2")
    refreshed = farm("ps", "-f", "demo", "--json", "--refresh", env=aws_env)
    assert_ok(refreshed)
    assert [h["name"] for h in json.loads(refreshed.stdout)["hosts"]] == ["demo-web-1", "demo-web-2"]


def test_a_cache_older_than_the_farms_instances_is_read_afresh(aws_env, fleet):
    """The inventory's cache is one for the account: filled before another farm's instances ran
    (two farms brought up side by side), it must not hide them, nor a farm's added host."""
    fleet.add("demo", "web", "demo-web-1")
    assert_ok(farm("ps", "-f", "demo", "--json", env=aws_env))  # the cache holds demo alone
    fleet.add("other", "web", "other-web-1")
    other = farm("ps", "-f", "other", "--json", env=aws_env)
    assert_ok(other)
    assert [h["name"] for h in json.loads(other.stdout)["hosts"]] == ["other-web-1"]
    fleet.add("demo", "web", "demo-web-2")
    demo = farm("ps", "-f", "demo", "--json", env=aws_env)
    assert_ok(demo)
    assert [h["name"] for h in json.loads(demo.stdout)["hosts"]] == ["demo-web-1", "demo-web-2"]
    # ...and ansible-playbook, which reads the same cache after the CLI, finds them too.
    groups = inventory_list(aws_env)
    assert sorted(groups["farm_demo"]["hosts"]) == ["demo-web-1", "demo-web-2"]
