"""Bring a local farm up or down: containers on a Podman network, registered in moto as EC2 instances."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farmhand.core import aws
from farmhand.core.errors import FarmError
from farmhand.core.local import hostfix
from farmhand.core.local.image import LOGIN_USER, ensure_image
from farmhand.core.local.moto import MotoServer
from farmhand.core.local.podman import containers, exists, podman, podman_json, require
from farmhand.core.local.s3front import S3Front
from farmhand.core.local.shape import PlannedHost, plan_scaled
from farmhand.core.project import Project
from farmhand.core.scaling import autoscale as autoscaling

FIRST_HOST_OFFSET = 10  # hosts get .10, .11, ... of the farm's subnet, as EC2 leaves .0-.3 reserved
LB_ROLE = "lb"  # hosts with this role publish their port 80 on the controller's loopback
LB_CONTAINER_PORT = 80
LOCAL_TAG = "farmhand:local"
# Variables the user's shell may carry that would send the local farm's calls to real AWS.
REAL_AWS_VARS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")

# The cgroup the containers `up` creates go under (unset or empty: Podman's own). `make test` gives
# each of its streams a cgroup with a CPU weight (tests/streams.py); molecule's create.yml reads it too.
CGROUP_PARENT_VAR = "FARMHAND_LOCAL_CGROUP_PARENT"
CGROUP_PATH = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")

Say = Callable[[str], None]


@dataclass(frozen=True)
class LocalHost:
    name: str
    roles: tuple[str, ...]
    ip: str
    container: str


def _quiet(_: str) -> None:
    return None


def cgroup_parent_args(environ: Mapping[str, str] = os.environ) -> list[str]:
    """`podman run`'s --cgroup-parent from $FARMHAND_LOCAL_CGROUP_PARENT ([] when unset or empty)."""
    value = environ.get(CGROUP_PARENT_VAR, "").strip()
    if not value:
        return []
    if not CGROUP_PATH.match(value) or "/../" in f"{value}/" or "/./" in f"{value}/":
        raise FarmError(
            f"{CGROUP_PARENT_VAR} must be an absolute cgroup path (/farmhand-test/ci), not {value!r}"
        )
    return ["--cgroup-parent", value]


class LocalFarm:
    """One local farm: its Podman network and containers, its SSH key, its moto records."""

    def __init__(self, project: Project, farm: str) -> None:
        self.project = project
        self.farm = farm
        self.dir = project.state_dir / "local" / farm
        self.network = f"farmhand-{farm}"
        self.moto = MotoServer(project.state_dir)

    # -- state on disk ---------------------------------------------------------------------------

    @property
    def key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def s3front(self) -> S3Front:
        """S3 over TLS for the farm's hosts (pgBackRest): its CA, address and process live in s3/."""
        return S3Front(self.dir / "s3")

    @property
    def statefile(self) -> Path:
        return self.dir / "farm.json"

    def exists(self) -> bool:
        return self.statefile.is_file()

    def state(self) -> dict[str, Any]:
        """farm.json: the hosts, the shape the farm was brought up with, `ps:scale`'s counts."""
        if not self.exists():
            return {}
        data: dict[str, Any] = json.loads(self.statefile.read_text())
        return data

    def hosts(self) -> list[LocalHost]:
        return [
            LocalHost(h["name"], tuple(h["roles"]), h["ip"], h["container"])
            for h in self.state().get("hosts", [])
        ]

    def scaled(self) -> dict[str, int]:
        """`farm ps:scale`'s counts: for a role, how many hosts carry it alone."""
        return {str(k): int(v) for k, v in self.state().get("scaled", {}).items()}

    # -- environment -----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """What makes Ansible and the CLI talk to this farm instead of real AWS."""
        if not self.exists():
            raise FarmError(f"no local farm {self.farm!r}: bring it up with `farm local up -f {self.farm}`")
        if not self.moto.healthy():
            raise FarmError(
                f"the local farm {self.farm!r} is down (moto is not running): "
                f"run `farm local up -f {self.farm}`"
            )
        region = self.project.region
        return {
            "AWS_ENDPOINT_URL": self.moto.endpoint,
            "AWS_ACCESS_KEY_ID": "farmhand-local",
            "AWS_SECRET_ACCESS_KEY": "farmhand-local",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "ANSIBLE_PRIVATE_KEY_FILE": str(self.key),
            "ANSIBLE_SSH_COMMON_ARGS": f"-o UserKnownHostsFile={self.known_hosts}",
            "ANSIBLE_INVENTORY_CACHE_CONNECTION": str(self.inventory_cache),
            "FARMHAND_FARM": self.farm,
        }

    def shell_env(self) -> str:
        lines = [f"unset {' '.join(REAL_AWS_VARS)}"]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in self.env().items()]
        return "\n".join(lines) + "\n"

    # -- up --------------------------------------------------------------------------------------

    def up(
        self,
        shape: Mapping[str, Any],
        say: Say = _quiet,
        scaled: Mapping[str, int] | None = None,
        scaling: bool = False,
    ) -> list[LocalHost]:
        """Make the farm match SHAPE plus the scaled counts (None: the ones `ps:scale` recorded).
        SCALING (`ps:scale`) leaves the running hosts alone even if the image has changed since."""
        counts = {r: n for r, n in (self.scaled() if scaled is None else scaled).items() if n > 0}
        # validate before changing anything
        planned = plan_scaled(self.farm, shape, counts, self.project.roles)
        cgroup = cgroup_parent_args()
        require("podman")
        baked = self.baked_image()
        hostfix.ensure_host_ready()
        image = ensure_image(self.project.state_dir / "image", echo=True) if baked is None else baked
        say(f"Image {image}")
        # The farm's directory first: from now on a `farm local down` of another farm leaves moto up.
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        endpoint = self.moto.ensure()
        say(f"AWS API (moto) at {endpoint}")
        self._ensure_key()
        subnet = self._ensure_network()
        hosts = self._ensure_containers(planned, subnet, image, cgroup, say, keep_image=scaling)
        # After the containers: the gateway address is on this machine once the bridge is up.
        s3 = self.s3front.ensure(self._gateway(), int(endpoint.rsplit(":", 1)[1]))
        say(f"S3 over TLS for the farm's hosts at {s3} (moto, the farm's own CA)")
        self._write_state(hosts, subnet, shape, counts)
        self._register(hosts, subnet, say)
        self.flush_inventory_cache()
        return hosts

    def baked_image(self) -> str | None:
        """The image the farm's hosts start from when it is not the bare one `farm local image`
        builds (farmhand_local_image): one with packages already installed, as an AMI is baked.
        It must exist: Farmhand does not know its recipe."""
        ref = str(self.project.farm_var(self.farm, "farmhand_local_image", "") or "")
        if not ref:
            return None
        if not exists("image", ref):
            raise FarmError(
                f"farmhand_local_image {ref!r} of farm {self.farm!r} is not an image here: build it first"
            )
        return ref

    # -- ps:scale --------------------------------------------------------------------------------

    def base_shape(self) -> dict[str, Any]:
        """The shape the farm was brought up with (before `ps:scale`'s counts)."""
        recorded = self.state().get("shape")
        return dict(recorded or self.project.farm_var(self.farm, "farmhand_local_shape") or {})

    def planned_names(self, role: str, alone: int) -> list[str]:
        """The farm's host names once ROLE has ALONE hosts carrying it alone (nothing changes)."""
        scaled = {**self.scaled(), role: alone}
        counts = {r: n for r, n in scaled.items() if n > 0}
        return [h.name for h in plan_scaled(self.farm, self.base_shape(), counts, self.project.roles)]

    def scale(self, role: str, alone: int, say: Say = _quiet) -> list[LocalHost]:
        """Give ROLE ALONE hosts that carry it alone: containers created or removed, moto updated."""
        return self.up(self.base_shape(), say, {**self.scaled(), role: alone}, scaling=True)

    def _ensure_key(self) -> None:
        if not self.key.exists():
            subprocess.run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    f"farmhand-{self.farm}",
                    "-f",
                    str(self.key),
                ],
                check=True,
            )

    def _ensure_network(self) -> ipaddress.IPv4Network:
        if not exists("network", self.network):
            podman("network", "create", "--label", f"farmhand.farm={self.farm}", self.network)
        info = podman_json("network", "inspect", self.network)[0]
        return ipaddress.ip_network(info["subnets"][0]["subnet"])

    def _gateway(self) -> str:
        """This machine's address on the farm's network: where its hosts reach the S3 front."""
        info = podman_json("network", "inspect", self.network)[0]
        return str(info["subnets"][0]["gateway"])

    def _container_ip(self, container: str) -> str:
        info = podman_json("inspect", container)[0]
        return info["NetworkSettings"]["Networks"][self.network]["IPAddress"]

    def _ensure_containers(
        self,
        planned: list[PlannedHost],
        subnet: ipaddress.IPv4Network,
        image: str,
        cgroup: list[str],
        say: Say,
        keep_image: bool = False,
    ) -> list[LocalHost]:
        """Create, start or remove containers to match PLANNED (new ones with the options CGROUP). A
        container of an older image is made again, unless KEEP_IMAGE (`ps:scale` adds and removes
        hosts, it never rebuilds any)."""
        wanted = {h.name: h for h in planned}
        current = {c["Labels"]["farmhand.host"]: c for c in containers([f"farmhand.farm={self.farm}"])}
        for name, info in list(current.items()):
            roles = info["Labels"].get("farmhand.roles", "")
            stale_image = image != info["Image"] and not keep_image
            if name not in wanted or roles != wanted[name].role_tag or stale_image:
                say(f"Removing {name}")
                podman("rm", "--force", "--time", "10", info["Names"][0])
                del current[name]
        used = {self._container_ip(c["Names"][0]) for c in current.values()}
        free = (str(ip) for ip in list(subnet.hosts())[FIRST_HOST_OFFSET - 1 :] if str(ip) not in used)
        hosts = []
        for host in planned:
            container = f"farmhand-{host.name}"
            stopped = host.name in current and current[host.name]["State"] != "running"
            if stopped and podman("start", container, check=False).returncode != 0:
                say(f"Removing {host.name} (it does not start)")
                podman("rm", "--force", container)
                del current[host.name]
            if host.name in current:
                ip = self._container_ip(container)
            else:
                ip = next(free)
                say(f"Creating {host.name} ({host.role_tag}) at {ip}")
                try:
                    podman(
                        "run", "--detach", "--name", container, "--hostname", host.name,
                        "--network", self.network, "--ip", ip, "--systemd", "always",
                        "--label", f"farmhand.farm={self.farm}", "--label", f"farmhand.host={host.name}",
                        "--label", f"farmhand.roles={host.role_tag}", *cgroup, *self._publish(host), image,
                    )  # fmt: skip
                except FarmError:
                    # A container podman created but could not start holds no address: remove it,
                    # or the next `up` would hand its address to another host.
                    podman("rm", "--force", container, check=False)
                    raise
            hosts.append(LocalHost(host.name, host.roles, ip, container))
        known = [self._prepare_login(h) for h in hosts]
        self.known_hosts.write_text("".join(known))
        return hosts

    def _publish(self, host: PlannedHost) -> list[str]:
        """The load balancer's port on 127.0.0.1 (farmhand_local_lb_port; 0 or unset: any free port)."""
        if LB_ROLE not in host.roles:
            return []
        port = int(self.project.farm_var(self.farm, "farmhand_local_lb_port", 0) or 0)
        return ["--publish", f"127.0.0.1:{port or ''}:{LB_CONTAINER_PORT}"]

    def app_urls(self) -> list[str]:
        """Where the farm's load balancers answer on this machine (http://127.0.0.1:PORT)."""
        urls = []
        for host in self.hosts():
            if LB_ROLE in host.roles:
                proc = podman("port", host.container, f"{LB_CONTAINER_PORT}/tcp", check=False)
                for line in proc.stdout.split():
                    urls.append(f"http://{line.strip()}")
        return urls

    def _prepare_login(self, host: LocalHost, timeout: float = 90.0) -> str:
        """Wait for sshd and install the farm's key for `admin`, as cloud-init does.

        Returns the host's known_hosts line, so SSH checks the real host key from the first login.
        """
        deadline = time.monotonic() + timeout
        while True:
            proc = podman("exec", host.container, "systemctl", "is-active", "ssh", check=False)
            if proc.stdout.strip() == "active":
                break
            if time.monotonic() > deadline:
                raise FarmError(f"sshd did not start on {host.name} within {timeout:.0f}s")
            time.sleep(0.5)
        home = f"/home/{LOGIN_USER}/.ssh"
        script = (
            f"install -d -m 700 -o {LOGIN_USER} -g {LOGIN_USER} {home} && "
            f"cat > {home}/authorized_keys && chown {LOGIN_USER}: {home}/authorized_keys && "
            f"chmod 600 {home}/authorized_keys"
        )
        podman(
            "exec",
            "-i",
            host.container,
            "sh",
            "-c",
            script,
            input_text=self.key.with_suffix(".pub").read_text(),
        )
        hostkey = podman("exec", host.container, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()
        return f"{host.ip} {hostkey[0]} {hostkey[1]}\n"

    def _write_state(
        self,
        hosts: list[LocalHost],
        subnet: ipaddress.IPv4Network,
        shape: Mapping[str, Any],
        scaled: Mapping[str, int],
    ) -> None:
        data = {
            "farm": self.farm,
            "network": self.network,
            "subnet": str(subnet),
            "shape": dict(shape),
            "scaled": dict(scaled),
            "hosts": [
                {"name": h.name, "roles": list(h.roles), "ip": h.ip, "container": h.container} for h in hosts
            ],
        }
        self.statefile.write_text(json.dumps(data, indent=2) + "\n")

    def _client(self, service: str) -> Any:
        with aws.aws_errors():
            import boto3

            return boto3.session.Session(
                aws_access_key_id="farmhand-local",
                aws_secret_access_key="farmhand-local",
                region_name=self.project.region,
            ).client(service, endpoint_url=self.moto.endpoint)

    def _ec2(self) -> Any:
        return self._client("ec2")

    def _forget_parameters(self, say: Say) -> None:
        """The farm's SSM parameters (releases, secrets, config) go with it."""
        ssm = self._client("ssm")
        with aws.aws_errors():
            names = [
                param["Name"]
                for page in ssm.get_paginator("get_parameters_by_path").paginate(
                    Path=f"/farmhand/{self.farm}/", Recursive=True
                )
                for param in page["Parameters"]
            ]
            for start in range(0, len(names), 10):
                ssm.delete_parameters(Names=names[start : start + 10])
        if names:
            say(f"Deleted {len(names)} SSM parameters")

    def _forget_backups(self, say: Say) -> None:
        """The farm's backup repository (the objects under its prefix, farmhand_backup_path) goes
        with it: a farm brought up again under this name gets a new cipher pass."""
        s3 = self._client("s3")
        prefix = str(self.project.farm_var(self.farm, "farmhand_backup_path", "")).strip("/") or self.farm
        removed = 0
        with aws.aws_errors():
            for bucket in s3.list_buckets().get("Buckets", []):
                pages = s3.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket["Name"], Prefix=f"{prefix}/"
                )
                for page in pages:
                    keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                    if keys:
                        s3.delete_objects(Bucket=bucket["Name"], Delete={"Objects": keys})
                        removed += len(keys)
        if removed:
            say(f"Deleted {removed} backup objects")

    def _register(self, hosts: list[LocalHost], subnet: ipaddress.IPv4Network, say: Say) -> None:
        """Make moto's EC2 describe the containers: one instance per host, IP and tags as on AWS."""
        ec2 = self._ec2()
        with aws.aws_errors():
            subnet_id = self._ensure_subnet(ec2, subnet)
            instances = aws.farm_instances(ec2, self.farm, states=["pending", "running"])
            by_name = {aws.tags(i).get("Name"): i for i in instances}
            stale = []
            for name, inst in by_name.items():
                match = next((h for h in hosts if h.name == name), None)
                if (
                    match is None
                    or inst.get("PrivateIpAddress") != match.ip
                    or aws.tags(inst).get("role") != ",".join(match.roles)
                ):
                    stale.append(inst["InstanceId"])
            if stale:
                ec2.terminate_instances(InstanceIds=stale)
            for host in hosts:
                inst = by_name.get(host.name)
                if inst is not None and inst["InstanceId"] not in stale:
                    continue
                tags = {"Name": host.name, "farm": self.farm, "role": ",".join(host.roles), LOCAL_TAG: "true"}
                ec2.run_instances(
                    ImageId="ami-0f4b1e2c3d4a5b6c7",  # stands for Debian 12's EC2 AMI
                    InstanceType="t3.medium",
                    MinCount=1,
                    MaxCount=1,
                    SubnetId=subnet_id,
                    PrivateIpAddress=host.ip,
                    TagSpecifications=[
                        {
                            "ResourceType": "instance",
                            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                        }
                    ],
                )
                say(f"Registered {host.name} as an EC2 instance")

    def _ensure_subnet(self, ec2: Any, subnet: ipaddress.IPv4Network) -> str:
        tag_filter = [{"Name": f"tag:{LOCAL_TAG}", "Values": [self.farm]}]
        found = ec2.describe_subnets(Filters=tag_filter)["Subnets"]
        if found and found[0]["CidrBlock"] == str(subnet):
            return found[0]["SubnetId"]
        tags = [{"Key": LOCAL_TAG, "Value": self.farm}, {"Key": "Name", "Value": f"farmhand-{self.farm}"}]
        vpc = ec2.create_vpc(CidrBlock=str(subnet), TagSpecifications=[{"ResourceType": "vpc", "Tags": tags}])
        created = ec2.create_subnet(
            VpcId=vpc["Vpc"]["VpcId"],
            CidrBlock=str(subnet),
            TagSpecifications=[{"ResourceType": "subnet", "Tags": tags}],
        )
        return created["Subnet"]["SubnetId"]

    # -- down ------------------------------------------------------------------------------------

    def down(self, say: Say = _quiet) -> bool:
        """Remove containers, network, moto records and local state; False if there was nothing."""
        found = containers([f"farmhand.farm={self.farm}"])
        had_any = bool(found) or self.dir.exists() or exists("network", self.network)
        if self.moto.healthy():
            ec2 = self._ec2()
            with aws.aws_errors():
                ids = [i["InstanceId"] for i in aws.farm_instances(ec2, self.farm)]
                if ids:
                    ec2.terminate_instances(InstanceIds=ids)
                    say(f"Deregistered {len(ids)} instances")
                groups = autoscaling.delete_farm_groups(self._client("autoscaling"), ec2, self.farm)
                if groups:
                    say(f"Deleted the Auto Scaling groups {', '.join(groups)}")
                for sub in ec2.describe_subnets(
                    Filters=[{"Name": f"tag:{LOCAL_TAG}", "Values": [self.farm]}]
                )["Subnets"]:
                    ec2.delete_subnet(SubnetId=sub["SubnetId"])
                    ec2.delete_vpc(VpcId=sub["VpcId"])
            self._forget_parameters(say)
            self._forget_backups(say)
        self.s3front.stop()
        for info in found:
            say(f"Removing {info['Labels'].get('farmhand.host', info['Names'][0])}")
            podman("rm", "--force", "--time", "10", info["Names"][0])
        if exists("network", self.network):
            podman("network", "rm", self.network)
        facts = self.project.state_dir / "cache" / "facts"
        for host in self.hosts():
            (facts / host.name).unlink(missing_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.inventory_cache, ignore_errors=True)
        # Only a down that removed a farm may stop moto: the leftover check of a farm that is not
        # here (a test run's first step) must not pull the API from a farm coming up beside it.
        if had_any and self.moto.stop_if_unused(self._any_farm_here):
            say("Stopped moto (no local farm left)")
        return had_any

    def _any_farm_here(self) -> bool:
        return any(d.is_dir() for d in (self.project.state_dir / "local").glob("*"))

    @property
    def inventory_cache(self) -> Path:
        """The inventory cache of this farm's commands: a directory of its own, which commands of
        other farms (another `farm local up` flushing its own) leave alone."""
        return self.project.state_dir / "cache" / "inventory-local" / self.farm

    def flush_inventory_cache(self) -> None:
        """Forget the cached instance list, keeping the directory: Ansible fails to load the
        inventory if its cache directory vanishes while it reads it, or appears as it creates it."""
        self.inventory_cache.mkdir(parents=True, exist_ok=True)
        for cached in self.inventory_cache.iterdir():
            cached.unlink(missing_ok=True)
