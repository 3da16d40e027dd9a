"""Drift on the local farm: a managed file changed behind Ansible's back on one web host is reported
by `farm converge --check --json` as exactly that host and task; a converge limited to the web role
converges only the web hosts and repairs it; then check mode finds no drift on any host.

The check that finds the edit is limited to the web role (`--role web`): a check of the whole farm
runs every host's tasks (491 task runs on the five hosts, 180 of them on the database host), one of
the web role the two web hosts' only. What the whole farm's would add, that no host of another role
drifted, the last check shows of every host: the repair converged the web hosts only, so the others
are as they were when the edit was found.

Runs on the session's local farm (tests/farmlib.py); leaves it as it found it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from farmlib import (
    FARM,
    container,
    ec2_instances,
    farm,
    first_with_role,
    hosts_with_role,
    on_host,
    run,
    summary_table,
)

pytestmark = pytest.mark.farm

# rails_unicorn's nginx site on a web host, and the task that writes it.
SITE = "/etc/nginx/sites-available/bookshelf.conf"
TASK = (
    "Serve the app with nginx and Unicorn",
    "rails_unicorn",
    "Write the nginx site (refused unless nginx accepts it)",
)
EDIT = "# edited by hand, behind the back of Ansible"


def check(*only: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`farm converge -f FARM --check --diff --json [ONLY...]`: its process and its report."""
    proc = farm("converge", "-f", FARM, "--check", "--diff", "--json", *only, ok=False)
    assert proc.returncode in (0, 3), f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc, json.loads(proc.stdout)


@pytest.fixture
def web_host(converged_farm: None) -> Iterator[str]:
    """The farm's first web host; its nginx site as it was is put back whatever the test did."""
    host = first_with_role("web")
    original = on_host(host, "cat", SITE)
    assert original.returncode == 0, original.stderr
    yield host
    if on_host(host, "cat", SITE).stdout != original.stdout:
        restore = run(
            "podman", "exec", "-i", container(host), "sh", "-c", f"cat > {SITE}", input=original.stdout
        )
        assert restore.returncode == 0, restore.stderr


def test_a_hand_edited_file_is_drift_on_that_host_and_task_until_a_converge_of_its_role(web_host):
    appended = on_host(web_host, "sh", "-c", f"echo {shlex.quote(EDIT)} >> {SITE}")
    assert appended.returncode == 0, appended.stderr

    web_hosts = hosts_with_role("web")  # sorted; the edit and the repair change no host's roles
    proc, report = check("--role", "web")
    assert proc.returncode == 3, proc.stdout
    assert report["checked"] == web_hosts
    assert report["status"] == "drift" and report["changed"] == [web_host]
    assert list(report["hosts"]) == [web_host]  # the other web hosts: no drift (the rest: below)
    (change,) = report["hosts"][web_host]["changes"]
    assert (change["play"], change["role"], change["task"]) == TASK
    assert change["path"] == SITE and change["action"] == "ansible.builtin.template"
    assert change["diff"] == {"added": 0, "removed": 1, "attributes": []}
    assert report["hosts"][web_host]["handlers"] == ["Reload nginx"]
    assert EDIT not in proc.stdout  # the report summarises the diff; contents stay out
    assert f"1 host drifted: {web_host} ({TASK[2]})" in proc.stderr

    # The repair, limited to a role: only that role's hosts are converged.
    repair = farm("converge", "-f", FARM, "--role", "web")
    assert sorted(summary_table(repair.stdout)) == web_hosts
    assert EDIT not in on_host(web_host, "cat", SITE).stdout

    # The converged farm has no drift: every host was checked, none changed or failed.
    proc, report = check()
    assert proc.returncode == 0, proc.stdout
    assert report["status"] == "clean" and report["exit_code"] == 0
    assert report["hosts"] == {} and report["changed"] == [] and report["failed"] == []
    hosts = sorted(ec2_instances(states=("running",)))  # every running host of the farm
    assert report["checked"] == hosts
    assert f"no drift: {len(hosts)} hosts match the playbooks" in proc.stderr
