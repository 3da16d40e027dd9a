"""The inventory (inventory/aws_ec2.yml) as Ansible sees it: groups by farm and role, hosts by their
Name tag, stopped instances left out."""

from __future__ import annotations

import json

import yaml
from conftest import REPO_ROOT, ansible_inventory, inventory_list


def graph_groups(text: str) -> dict[str, set[str]]:
    """`ansible-inventory --graph` as {group: hosts directly in it}."""
    groups: dict[str, set[str]] = {}
    stack: list[tuple[int, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        depth = line.find("--") if "|--" in line else 0
        name = line.split("--", 1)[1] if "|--" in line else line
        name = name.strip()
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if name.startswith("@"):
            group = name[1:].rstrip(":")
            groups.setdefault(group, set())
            stack.append((depth, group))
        else:
            groups[stack[-1][1]].add(name)
    return groups


def test_inventory_graph_groups_by_farm_and_role(aws_env, farms):
    proc = ansible_inventory("--graph", env=aws_env)
    assert proc.returncode == 0, proc.stderr
    groups = graph_groups(proc.stdout)
    assert groups["farm_demo"] == {"demo-web-1", "demo-web-2", "demo-worker-cron-1", "demo-db-1"}
    assert groups["farm_staging"] == {"staging-web-1", "staging-worker-1"}
    assert groups["role_web"] == {"demo-web-1", "demo-web-2", "staging-web-1"}
    assert groups["role_worker"] == {"demo-worker-cron-1", "staging-worker-1"}
    assert groups["role_cron"] == {"demo-worker-cron-1"}
    assert groups["role_db"] == {"demo-db-1", "dbonly-db-1", "pgf-db-1"}
    assert groups["role_db_follower"] == {"pgf-db-follower-1"}
    assert groups["farm_dbonly"] == {"dbonly-db-1"}
    # No group for a comma-joined tag: the host is in each of its roles.
    assert not [g for g in groups if "," in g]


def test_inventory_hostnames_are_name_tags_and_ansible_host_the_private_ip(aws_env, farms):
    inventory = inventory_list(aws_env)
    hostvars = inventory["_meta"]["hostvars"]
    # The plugin's own host variables carry the inventory file's hostvars_prefix (if it sets one).
    config = yaml.safe_load((REPO_ROOT / "inventory" / "aws_ec2.yml").read_text(encoding="utf-8"))
    prefix = config.get("hostvars_prefix", "")
    running = {name: h for name, h in farms.items() if h["farm"] != "halted"}
    assert set(hostvars) == set(running)
    for name, host in running.items():
        assert hostvars[name]["ansible_host"] == host["ip"]
        assert hostvars[name][f"{prefix}instance_id"] == host["id"]
        assert hostvars[name][f"{prefix}tags"]["Name"] == name
        assert hostvars[name][f"{prefix}tags"]["farm"] == host["farm"]
    assert hostvars["demo-worker-cron-1"][f"{prefix}tags"]["role"] == "worker,cron"
    assert set(inventory["role_cron"]["hosts"]) == {"demo-worker-cron-1"}
    assert "demo-worker-cron-1" in inventory["role_worker"]["hosts"]


def test_inventory_excludes_stopped_instances(aws_env, farms, fleet):
    stopped = fleet.add("demo", "web", "demo-web-3")
    fleet.stop(stopped["id"])
    inventory = inventory_list(aws_env)
    hostvars = inventory["_meta"]["hostvars"]
    assert "demo-web-3" not in hostvars
    assert not {"halted-web-1", "halted-worker-1"} & set(hostvars)
    assert "farm_halted" not in inventory
    assert "demo-web-3" not in inventory["farm_demo"]["hosts"]
    assert stopped["ip"] not in json.dumps(inventory)
