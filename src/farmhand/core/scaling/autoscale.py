"""Auto Scaling groups of a farm: found by their `farm` and `role` tags; the backlog policy.

On AWS a role's hosts may come from an Auto Scaling group whose launch template tags its instances
`farm` and `role`; the group itself carries the same tags. A local farm has no group until
`farm ps:autoscale` makes one in moto that stands for its worker hosts (the containers are
attached to it), so the policy, min and max work the same way there.

The policy is target tracking on the backlog per instance (queued jobs / worker hosts, put in
CloudWatch by the sidekiq_metrics role), the way AWS advises for queue workers.

Beside it, a lifecycle hook (`farmhand-drain`) holds an instance the group itself terminates on a
scale-in in Terminating:Wait: the sidekiq_metrics role's drain on the host quiets its Sidekiq
processes, sends heartbeats while jobs run and completes the action (CONTINUE) once none is busy.
Its heartbeat timeout is the worker processes' longest Sidekiq shutdown timeout plus a margin, so
a host whose drain never answers still gets the time its jobs are promised at a stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from farmhand.core import aws
from farmhand.core.errors import FarmError
from farmhand.core.project import Project
from farmhand.core.variables import TemplateFailed

NAMESPACE = "Farmhand"
BACKLOG_METRIC = "BacklogPerInstance"
OLDEST_METRIC = "OldestJobAgeSeconds"
POLICY_NAME = "farmhand-backlog-per-instance"
LOCAL_AMI = "ami-0f4b1e2c3d4a5b6c7"  # as farmhand.core.local.farm registers its hosts
HOOK_NAME = "farmhand-drain"  # the sidekiq_metrics role's drain completes this hook
HOOK_TRANSITION = "autoscaling:EC2_INSTANCE_TERMINATING"
HOOK_RESULT = "CONTINUE"  # what the group does when the heartbeat timeout runs out: terminate
# Beyond the longest Sidekiq shutdown timeout: systemd's stop margin (sidekiq_worker_stop_margin,
# 30 s), the drain timer's interval and the time an exiting process takes to leave Redis.
HOOK_MARGIN = 120
HOOK_MAX_TIMEOUT = 7200  # AWS's maximum heartbeat timeout
HOOK_MIN_TIMEOUT = 30  # and its minimum
AUTOSCALED = ("worker",)  # the roles that scale on their queue


@dataclass(frozen=True)
class Policy:
    """The farm's backlog policy on a role's group."""

    group: str
    role: str
    minimum: int
    maximum: int
    desired: int
    target: float | None
    metric: str
    hook_timeout: int | None = None  # the drain hook's heartbeat timeout; None: no hook

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "role": self.role,
            "min": self.minimum,
            "max": self.maximum,
            "desired": self.desired,
            "target": self.target,
            "metric": self.metric,
            "drain_hook": (
                {"name": HOOK_NAME, "heartbeat_timeout": self.hook_timeout, "default_result": HOOK_RESULT}
                if self.hook_timeout is not None
                else None
            ),
        }


def group_name(farm: str, role: str) -> str:
    return f"farmhand-{farm}-{role}"


def find_group(client: Any, farm: str, role: str) -> dict[str, Any] | None:
    """The Auto Scaling group tagged farm=FARM and role=ROLE, or None; several are an error."""
    filters = [{"Name": "tag:farm", "Values": [farm]}, {"Name": "tag:role", "Values": [role]}]
    found: list[dict[str, Any]] = []
    with aws.aws_errors():
        for page in client.get_paginator("describe_auto_scaling_groups").paginate(Filters=filters):
            found.extend(page["AutoScalingGroups"])
    found = [g for g in found if g.get("Status") != "Delete in progress"]
    if len(found) > 1:
        names = ", ".join(sorted(g["AutoScalingGroupName"] for g in found))
        raise FarmError(f"several Auto Scaling groups are tagged farm={farm}, role={role}: {names}; keep one")
    return found[0] if found else None


def member_ids(group: dict[str, Any]) -> list[str]:
    """The group's instances that are not on their way out."""
    return [
        i["InstanceId"]
        for i in group.get("Instances", [])
        if not str(i.get("LifecycleState", "")).startswith(("Terminat", "Detach"))
    ]


def create_local_group(
    client: Any, ec2: Any, farm: str, role: str, instance_ids: list[str], minimum: int, maximum: int
) -> dict[str, Any]:
    """A group in moto standing for a local farm's ROLE hosts: tagged farm and role, the running
    containers' instances attached (moto keeps the group and its policy; it launches nothing)."""
    name = group_name(farm, role)
    tags = {"farm": farm, "role": role, "farmhand:local": "true"}
    with aws.aws_errors():
        described = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"] if instance_ids else []
        subnets = sorted({i["SubnetId"] for r in described for i in r["Instances"] if i.get("SubnetId")})
        templates = ec2.describe_launch_templates(
            Filters=[{"Name": "launch-template-name", "Values": [name]}]
        )["LaunchTemplates"]
        if not templates:
            ec2.create_launch_template(
                LaunchTemplateName=name,
                # No instance tags, unlike a real farm's template: should moto ever launch an
                # instance for this group, it must not join the farm (it would be no container).
                LaunchTemplateData={"ImageId": LOCAL_AMI, "InstanceType": "t3.medium"},
            )
        client.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
            MinSize=0,
            MaxSize=max(maximum, len(instance_ids)),
            DesiredCapacity=0,
            VPCZoneIdentifier=",".join(subnets),
            Tags=[
                {
                    "Key": k,
                    "Value": v,
                    "PropagateAtLaunch": False,
                    "ResourceId": name,
                    "ResourceType": "auto-scaling-group",
                }
                for k, v in tags.items()
            ],
        )
        if instance_ids:
            client.attach_instances(AutoScalingGroupName=name, InstanceIds=instance_ids)
        client.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=minimum, MaxSize=maximum)
    group = find_group(client, farm, role)
    assert group is not None
    return group


def put_backlog_policy(
    client: Any, group: dict[str, Any], farm: str, role: str, minimum: int, maximum: int, target: float
) -> None:
    """Min, max and the target-tracking policy on the backlog per instance."""
    name = group["AutoScalingGroupName"]
    with aws.aws_errors():
        client.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=minimum, MaxSize=maximum)
        client.put_scaling_policy(
            AutoScalingGroupName=name,
            PolicyName=POLICY_NAME,
            PolicyType="TargetTrackingScaling",
            # A new worker boots, is converged and deployed to before it takes work: give it time
            # before its own figures count.
            EstimatedInstanceWarmup=300,
            TargetTrackingConfiguration={
                "CustomizedMetricSpecification": {
                    "MetricName": BACKLOG_METRIC,
                    "Namespace": NAMESPACE,
                    "Dimensions": [{"Name": "farm", "Value": farm}, {"Name": "role", "Value": role}],
                    "Statistic": "Average",
                },
                "TargetValue": float(target),
                "DisableScaleIn": False,
            },
        )


def delete_backlog_policy(client: Any, group: dict[str, Any]) -> bool:
    """Remove the policy; False if the group had none."""
    if find_policy(client, group) is None:
        return False
    with aws.aws_errors():
        client.delete_policy(AutoScalingGroupName=group["AutoScalingGroupName"], PolicyName=POLICY_NAME)
    return True


def find_policy(client: Any, group: dict[str, Any]) -> dict[str, Any] | None:
    with aws.aws_errors():
        policies = client.describe_policies(
            AutoScalingGroupName=group["AutoScalingGroupName"], PolicyNames=[POLICY_NAME]
        )["ScalingPolicies"]
    return policies[0] if policies else None


def hook_timeout(project: Project, farm: str) -> int:
    """The drain hook's heartbeat timeout: the longest Sidekiq shutdown timeout of the farm's worker
    processes (sidekiq_worker_processes, each's `timeout` else sidekiq_worker_timeout, as Ansible
    gives them to site.yml's sidekiq_worker play on a worker host of the farm: the role's defaults
    under group_vars) plus HOOK_MARGIN, within AWS's limits. A timeout Ansible cannot work out (an
    undefined variable) counts as AWS's maximum."""
    ansible = project.ansible
    host = ansible.stand_in(farm, "worker")
    play = ansible.role_play(("sidekiq_worker",), host)
    try:
        default = ansible.var(host, "sidekiq_worker_timeout", HOOK_MAX_TIMEOUT, play=play)
        processes = ansible.var(host, "sidekiq_worker_processes", [], play=play) or []
    except TemplateFailed:
        return HOOK_MAX_TIMEOUT
    timeouts = [p.get("timeout", default) for p in processes if isinstance(p, dict)] or [default]
    try:
        longest = max(int(t) for t in timeouts)
    except (TypeError, ValueError):
        return HOOK_MAX_TIMEOUT
    return max(min(longest + HOOK_MARGIN, HOOK_MAX_TIMEOUT), HOOK_MIN_TIMEOUT)


def find_hook(client: Any, group: dict[str, Any]) -> dict[str, Any] | None:
    """The group's drain hook, or None."""
    with aws.aws_errors():
        hooks = client.describe_lifecycle_hooks(
            AutoScalingGroupName=group["AutoScalingGroupName"], LifecycleHookNames=[HOOK_NAME]
        )["LifecycleHooks"]
    return hooks[0] if hooks else None


def put_drain_hook(client: Any, group: dict[str, Any], timeout: int) -> bool:
    """The drain hook on the group, as wanted; False if it was already so (nothing changed)."""
    found = find_hook(client, group)
    if found is not None and (
        found.get("LifecycleTransition"),
        int(found.get("HeartbeatTimeout", 0)),
        found.get("DefaultResult"),
    ) == (HOOK_TRANSITION, timeout, HOOK_RESULT):
        return False
    with aws.aws_errors():
        client.put_lifecycle_hook(
            AutoScalingGroupName=group["AutoScalingGroupName"],
            LifecycleHookName=HOOK_NAME,
            LifecycleTransition=HOOK_TRANSITION,
            HeartbeatTimeout=timeout,
            DefaultResult=HOOK_RESULT,
        )
    return True


def delete_drain_hook(client: Any, group: dict[str, Any]) -> bool:
    """Remove the drain hook; False if the group had none."""
    if find_hook(client, group) is None:
        return False
    with aws.aws_errors():
        client.delete_lifecycle_hook(
            AutoScalingGroupName=group["AutoScalingGroupName"], LifecycleHookName=HOOK_NAME
        )
    return True


def describe(client: Any, group: dict[str, Any], role: str) -> Policy:
    policy = find_policy(client, group)
    hook = find_hook(client, group)
    config = (policy or {}).get("TargetTrackingConfiguration", {})
    metric = config.get("CustomizedMetricSpecification", {}).get("MetricName", "")
    return Policy(
        group=group["AutoScalingGroupName"],
        role=role,
        minimum=int(group["MinSize"]),
        maximum=int(group["MaxSize"]),
        desired=int(group["DesiredCapacity"]),
        target=float(config["TargetValue"]) if policy and "TargetValue" in config else None,
        metric=f"{NAMESPACE}/{metric}" if metric else "",
        hook_timeout=int(hook["HeartbeatTimeout"]) if hook else None,
    )


def delete_farm_groups(client: Any, ec2: Any, farm: str) -> list[str]:
    """Every group tagged farm=FARM and the launch templates named after them (a local farm's teardown)."""
    filters = [{"Name": "tag:farm", "Values": [farm]}]
    names: list[str] = []
    with aws.aws_errors():
        for page in client.get_paginator("describe_auto_scaling_groups").paginate(Filters=filters):
            names.extend(g["AutoScalingGroupName"] for g in page["AutoScalingGroups"])
        for name in names:
            client.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
        prefix = group_name(farm, "")
        for template in ec2.describe_launch_templates()["LaunchTemplates"]:
            if template["LaunchTemplateName"].startswith(prefix):
                ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])
    return names


def check_request(
    role: str,
    off: bool,
    setting: bool,
    minimum: int | None,
    maximum: int | None,
    target_value: float | None,
) -> None:
    """Refuse a bad ps:autoscale request before AWS is asked anything."""
    if role not in AUTOSCALED:
        raise FarmError(f"only {', '.join(AUTOSCALED)} scales on its queue: not {role!r}")
    if off and setting:
        raise FarmError("--off removes the policy: give it alone")
    if setting:
        check_policy_args(minimum, maximum, target_value)


def check_policy_args(minimum: int | None, maximum: int | None, target_value: float | None) -> None:
    """Refuse a policy whose --min, --max or --target is missing or out of range."""
    if minimum is None or maximum is None or target_value is None:
        raise FarmError("give --min, --max and --target together, e.g. --min 1 --max 10 --target 5")
    if minimum < 0:
        raise FarmError(f"invalid --min {minimum}: 0 or more")
    if maximum < max(minimum, 1):
        raise FarmError(f"invalid --max {maximum}: at least --min ({minimum}) and at least 1")
    if maximum > 100:
        raise FarmError(f"invalid --max {maximum}: at most 100")
    if not target_value > 0:
        raise FarmError(f"invalid --target {target_value:g}: queued jobs per host, above 0")
