"""Where a farm's hosts come from when `farm ps:scale` adds or removes them.

- `GroupFleet`: AWS, the role has an Auto Scaling group (found by its farm/role tags): its
  desired capacity grows; leaving hosts are terminated through the group, which shrinks with them.
- `InstanceFleet`: AWS, no group: new instances copy an existing host's launch settings (AMI,
  type, subnet, security groups, key, instance profile, tags); leaving ones are terminated.
- `LocalFleet`: a local farm: Podman containers registered in moto (farmhand.core.local.farm), kept
  attached to the moto group `farm ps:autoscale` made, if any.

Each names its new hosts `<farm>-<role>-<n>` (the inventory's host names are Name tags).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from farmhand.core import aws
from farmhand.core.errors import FarmError
from farmhand.core.inventory import Host
from farmhand.core.local.farm import LocalFarm
from farmhand.core.scaling import autoscale as autoscaling
from farmhand.core.scaling.plan import Bounds
from farmhand.core.target import Target

Say = Callable[[str], None]
LAUNCH_TIMEOUT = 600.0
# Launch settings a new instance copies from an existing host of its role.
_COPIED_TAG = re.compile(r"^(?!aws:)(?!Name$)")


class Fleet(Protocol):
    """Adds and removes a role's hosts."""

    description: str

    def bounds(self, role: str, hosts: Sequence[Host]) -> Bounds: ...

    def fixed(self, role: str, hosts: Sequence[Host]) -> list[str]:
        """Names of ROLE's hosts this fleet cannot remove."""
        ...

    def add(self, role: str, count: int, hosts: Sequence[Host], say: Say) -> list[str]:
        """Bring up COUNT new hosts of ROLE; their names once they run."""
        ...

    def remove(self, role: str, leaving: Sequence[Host], say: Say) -> None: ...


def next_names(farm: str, role: str, taken: Sequence[str], count: int) -> list[str]:
    """`<farm>-<role>-<n>` for the next COUNT free numbers after the highest one taken."""
    stem = f"{farm}-{role}".replace("_", "-")
    pattern = re.compile(rf"^{re.escape(stem)}-(\d+)$")
    used = [int(m[1]) for m in (pattern.match(n) for n in taken) if m]
    start = max(used, default=0) + 1
    return [f"{stem}-{n}" for n in range(start, start + count)]


def _wait_running(ec2: Any, ids: list[str]) -> None:
    with aws.aws_errors():
        ec2.get_waiter("instance_running").wait(
            InstanceIds=ids, WaiterConfig={"Delay": 5, "MaxAttempts": int(LAUNCH_TIMEOUT / 5)}
        )


def _tag_names(ec2: Any, ids: list[str], names: list[str]) -> None:
    with aws.aws_errors():
        for instance_id, name in zip(ids, names, strict=True):
            ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "Name", "Value": name}])


class GroupFleet:
    """A role's Auto Scaling group on AWS."""

    def __init__(self, target: Target, asg: Any, ec2: Any, group: dict[str, Any]) -> None:
        self.target, self.asg, self.ec2, self.group = target, asg, ec2, group
        self.name = group["AutoScalingGroupName"]
        self.description = f"Auto Scaling group {self.name}"

    def _members(self) -> set[str]:
        return set(autoscaling.member_ids(self.group))

    def bounds(self, role: str, hosts: Sequence[Host]) -> Bounds:
        outside = len([h for h in hosts if h.instance_id not in self._members()])
        return Bounds(
            int(self.group["MinSize"]) + outside, int(self.group["MaxSize"]) + outside, self.description
        )

    def fixed(self, role: str, hosts: Sequence[Host]) -> list[str]:
        return [h.name for h in hosts if h.instance_id not in self._members()]

    def add(self, role: str, count: int, hosts: Sequence[Host], say: Say) -> list[str]:
        before = self._members()
        desired = int(self.group["DesiredCapacity"]) + count
        with aws.aws_errors():
            self.asg.set_desired_capacity(
                AutoScalingGroupName=self.name, DesiredCapacity=desired, HonorCooldown=False
            )
        say(f"{self.name}: desired capacity {desired}")
        deadline = time.monotonic() + LAUNCH_TIMEOUT
        while True:
            group = autoscaling.find_group(self.asg, self.target.farm, role)
            new = sorted(set(autoscaling.member_ids(group or {})) - before)
            if len(new) >= count:
                break
            if time.monotonic() > deadline:
                raise FarmError(f"{self.name} did not launch {count} instances within {LAUNCH_TIMEOUT:.0f}s")
            time.sleep(5)
        _wait_running(self.ec2, new)
        names = next_names(self.target.farm, role, [h.name for h in self.target.hosts], len(new))
        _tag_names(self.ec2, new, names)
        return names

    def remove(self, role: str, leaving: Sequence[Host], say: Say) -> None:
        with aws.aws_errors():
            for host in leaving:
                self.asg.terminate_instance_in_auto_scaling_group(
                    InstanceId=host.instance_id, ShouldDecrementDesiredCapacity=True
                )
                say(f"Terminated {host.name} ({host.instance_id}) through {self.name}")


class InstanceFleet:
    """Tagged instances on AWS, without an Auto Scaling group."""

    description = "tagged EC2 instances"

    def __init__(self, target: Target, ec2: Any) -> None:
        self.target, self.ec2 = target, ec2

    def bounds(self, role: str, hosts: Sequence[Host]) -> Bounds:
        return Bounds()

    def fixed(self, role: str, hosts: Sequence[Host]) -> list[str]:
        return []

    def _template(self, role: str, hosts: Sequence[Host]) -> dict[str, Any]:
        """The newest instance carrying ROLE alone (else any carrying it): what new ones copy."""
        alone = [h for h in hosts if h.roles == (role,)] or list(hosts)
        if not alone:
            raise FarmError(
                f"farm {self.target.farm!r} has no {role} host to copy launch settings from: "
                f"give the role an Auto Scaling group (tags farm={self.target.farm}, role={role})"
            )
        with aws.aws_errors():
            found = self.ec2.describe_instances(InstanceIds=[h.instance_id for h in alone])["Reservations"]
        instances = [i for r in found for i in r["Instances"]]
        return max(instances, key=lambda i: str(i.get("LaunchTime", "")))

    def launch_settings(self, role: str, hosts: Sequence[Host], name: str) -> dict[str, Any]:
        """run_instances arguments for one new host named NAME, copied from an existing one."""
        model = self._template(role, hosts)
        tags = {k: v for k, v in aws.tags(model).items() if _COPIED_TAG.match(k)}
        tags.update({"Name": name, "farm": self.target.farm, "role": role})
        settings: dict[str, Any] = {
            "ImageId": model["ImageId"],
            "InstanceType": model["InstanceType"],
            "MinCount": 1,
            "MaxCount": 1,
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
                }
            ],
        }
        if model.get("SubnetId"):
            settings["SubnetId"] = model["SubnetId"]
        groups = [g["GroupId"] for g in model.get("SecurityGroups", [])]
        if groups:
            settings["SecurityGroupIds"] = groups
        if model.get("KeyName"):
            settings["KeyName"] = model["KeyName"]
        if model.get("IamInstanceProfile", {}).get("Arn"):
            settings["IamInstanceProfile"] = {"Arn": model["IamInstanceProfile"]["Arn"]}
        if model.get("MetadataOptions", {}).get("HttpTokens"):
            settings["MetadataOptions"] = {"HttpTokens": model["MetadataOptions"]["HttpTokens"]}
        return settings

    def add(self, role: str, count: int, hosts: Sequence[Host], say: Say) -> list[str]:
        names = next_names(self.target.farm, role, [h.name for h in self.target.hosts], count)
        ids = []
        with aws.aws_errors():
            for name in names:
                launched = self.ec2.run_instances(**self.launch_settings(role, hosts, name))
                ids.append(launched["Instances"][0]["InstanceId"])
                say(f"Launched {name} ({ids[-1]})")
        _wait_running(self.ec2, ids)
        return names

    def remove(self, role: str, leaving: Sequence[Host], say: Say) -> None:
        with aws.aws_errors():
            self.ec2.terminate_instances(InstanceIds=[h.instance_id for h in leaving])
        for host in leaving:
            say(f"Terminated {host.name} ({host.instance_id})")


class LocalFleet:
    """A local farm's containers (and the moto group standing for them, once `ps:autoscale` made one)."""

    def __init__(self, target: Target, asg: Any) -> None:
        self.target, self.asg = target, asg
        self.local = LocalFarm(target.project, target.farm)
        self.description = "local farm containers"

    def _group(self, role: str) -> dict[str, Any] | None:
        return autoscaling.find_group(self.asg, self.target.farm, role)

    def bounds(self, role: str, hosts: Sequence[Host]) -> Bounds:
        group = self._group(role)
        if group is None:
            return Bounds()
        return Bounds(
            int(group["MinSize"]),
            int(group["MaxSize"]),
            f"Auto Scaling group {group['AutoScalingGroupName']}",
        )

    def fixed(self, role: str, hosts: Sequence[Host]) -> list[str]:
        return []  # the highest-numbered go first, as scaling.removable picks them

    def add(self, role: str, count: int, hosts: Sequence[Host], say: Say) -> list[str]:
        alone = [h for h in hosts if h.roles == (role,)]
        before = {h.name for h in self.local.hosts()}
        created = [h for h in self.local.scale(role, len(alone) + count, say=say) if h.name not in before]
        group = self._group(role)
        if group is not None:
            ids = self._instance_ids([h.name for h in created])
            with aws.aws_errors():
                self.asg.attach_instances(AutoScalingGroupName=group["AutoScalingGroupName"], InstanceIds=ids)
        return [h.name for h in created]

    def remove(self, role: str, leaving: Sequence[Host], say: Say) -> None:
        hosts = self.local.hosts()
        alone = [h for h in hosts if h.roles == (role,)]
        keep = len(alone) - len(leaving)
        gone = {h.name for h in hosts} - set(self.local.planned_names(role, keep))
        if gone != {h.name for h in leaving}:
            raise FarmError(
                f"the local farm would remove {', '.join(sorted(gone))}, "
                f"not {', '.join(h.name for h in leaving)}"
            )
        group = self._group(role)
        if group is not None:
            with aws.aws_errors():
                self.asg.detach_instances(
                    AutoScalingGroupName=group["AutoScalingGroupName"],
                    InstanceIds=[h.instance_id for h in leaving],
                    ShouldDecrementDesiredCapacity=True,
                )
        self.local.scale(role, keep, say=say)

    def _instance_ids(self, names: list[str]) -> list[str]:
        ec2 = aws.client("ec2", self.target.project.region, self.target.env)
        by_name = {
            aws.tags(i).get("Name"): i["InstanceId"]
            for i in aws.farm_instances(ec2, self.target.farm, ["pending", "running"])
        }
        return [by_name[n] for n in names if n in by_name]


def fleet_for(target: Target) -> Callable[[str], Fleet]:
    """The fleet for each role of the farm: a function of the role."""
    asg = aws.client("autoscaling", target.project.region, target.env)
    ec2 = aws.client("ec2", target.project.region, target.env)

    def pick(role: str) -> Fleet:
        if target.local:
            return LocalFleet(target, asg)
        group = autoscaling.find_group(asg, target.farm, role)
        if group is not None:
            return GroupFleet(target, asg, ec2, group)
        return InstanceFleet(target, ec2)

    return pick
