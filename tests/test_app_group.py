"""The inventory's `app` group: the hosts that run the app's code, one group the playbooks target.

The group is constructed by inventory/aws_ec2.yml from each host's `role` tag; group_vars/all's
farmhand_app_roles names the same roles for the CLI. These tests build fake EC2 hosts in moto and
ask Ansible itself (`ansible-inventory`, `ansible-playbook --list-hosts`, `ansible -m debug`).
"""

from __future__ import annotations

import json
import re

import yaml
from conftest import ANSIBLE_BIN, REPO_ROOT, inventory_list, run

ALL_VARS = yaml.safe_load((REPO_ROOT / "group_vars/all/farmhand.yml").read_text(encoding="utf-8"))
APP_ROLES = set(ALL_VARS["farmhand_app_roles"])
PATTERN = "role_web:role_worker:role_cron:role_console"


def add_hosts(fleet) -> dict[str, str]:
    """Hosts of every kind, by name: their `role` tags (a stopped web host is added apart)."""
    tags = {
        "demo-web-1": "web",
        "demo-worker-cron-1": "worker,cron",
        "demo-cron-1": "cron",
        "demo-console-1": "console",
        "demo-lb-web-1": "lb, web",  # spaces around the comma, as a person may type it
        "demo-lb-1": "lb",
        "demo-db-1": "db",
        "demo-db-follower-1": "db_follower",
        "demo-db-redis-1": "db,redis",
        "demo-logs-1": "logs",
        "demo-untagged-1": "",
        "other-worker-1": "worker",
    }
    for name, role in tags.items():
        fleet.add(name.split("-", 1)[0], role, name)
    stopped = fleet.add("demo", "web", "demo-web-stopped")
    fleet.stop(stopped["id"])
    return tags


def test_app_group_holds_exactly_the_hosts_of_the_app_roles(aws_env, fleet):
    tags = add_hosts(fleet)
    inventory = inventory_list(aws_env)
    expected = {
        name
        for name, role in tags.items()
        if {r.strip() for r in role.split(",")} & {"web", "worker", "cron", "console"}
    }
    assert expected == {
        "demo-web-1",
        "demo-worker-cron-1",
        "demo-cron-1",
        "demo-console-1",
        "demo-lb-web-1",
        "other-worker-1",
    }
    assert set(inventory["app"]["hosts"]) == expected
    # The group is the union of the four role groups the playbooks used to spell out.
    union = set().union(
        *(inventory.get(f"role_{r}", {}).get("hosts", []) for r in ("web", "worker", "cron", "console"))
    )
    assert set(inventory["app"]["hosts"]) == union


def test_app_group_names_the_same_roles_as_farmhand_app_roles(aws_env, fleet):
    """One host per known role: the inventory's list and group_vars/all's farmhand_app_roles agree."""
    roles = ALL_VARS["farmhand_roles"]
    assert set(roles) > APP_ROLES
    for role in roles:
        fleet.add("demo", role, f"demo-{role.replace('_', '-')}-1")
    inventory = inventory_list(aws_env)
    in_app = {
        name.removeprefix("demo-").removesuffix("-1").replace("-", "_") for name in inventory["app"]["hosts"]
    }
    assert in_app == APP_ROLES


def test_no_playbook_spells_out_the_app_roles():
    for path in sorted((REPO_ROOT / "playbooks").rglob("*.yml")):
        assert PATTERN not in path.read_text(encoding="utf-8"), path


def play_hosts(listing: str) -> dict[str, set[str]]:
    """`ansible-playbook --list-hosts` as {play name: its hosts}."""
    plays: dict[str, set[str]] = {}
    current = None
    for line in listing.splitlines():
        header = re.match(r"^\s*play #\d+ \((.*)\): (.*?)\s+TAGS:", line)
        if header:
            current = f"{header[1]}: {header[2]}"
            plays[current] = set()
        elif current and line.startswith(" " * 6) and line.strip():  # under `hosts (N):`
            plays[current].add(line.strip())
    return plays


def test_the_app_plays_target_the_farms_app_hosts(aws_env, fleet):
    add_hosts(fleet)
    app = {"demo-web-1", "demo-worker-cron-1", "demo-cron-1", "demo-console-1", "demo-lb-web-1"}
    for playbook in ("site.yml", "deploy.yml", "config.yml", "pg_promote.yml", "pg_recover.yml"):
        proc = run(
            [
                str(ANSIBLE_BIN / "ansible-playbook"),
                f"playbooks/{playbook}",
                "--list-hosts",
                "--limit",
                "farm_demo",
            ],
            aws_env,
        )
        assert proc.returncode == 0, proc.stderr
        plays = {name: hosts for name, hosts in play_hosts(proc.stdout).items() if name.startswith("app: ")}
        assert plays, proc.stdout
        for name, hosts in plays.items():
            assert hosts == app, (playbook, name)


def test_farmhand_app_hosts_is_the_farms_part_of_the_app_group(aws_env, fleet):
    add_hosts(fleet)
    proc = run(
        [
            str(ANSIBLE_BIN / "ansible"),
            "demo-db-1",
            "-m",
            "ansible.builtin.debug",
            "-a",
            "var=farmhand_app_hosts",
        ],
        {**aws_env, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["demo-db-1"]
    assert result["farmhand_app_hosts"] == sorted(
        ["demo-web-1", "demo-worker-cron-1", "demo-cron-1", "demo-console-1", "demo-lb-web-1"]
    )
