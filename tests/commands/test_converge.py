"""`farm converge`, with a stand-in for ansible-playbook."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import ANSIBLE_BIN, counts, farm, ran


def test_converge_runs_site_yml_limited_to_the_farm_and_role(aws_env, farms, tmp_path):
    """converge hands ansible-playbook the farm's limit and reports its PLAY RECAP (no host is contacted)."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    fake = bin_dir / "ansible-playbook"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$PWD $*" >> "{calls}"\n'
        # What the farmhand_results callback records of a run (tests/core/test_drift.py covers the rest).
        + ran({"demo-web-1": counts(changed=2, skipped=1), "demo-web-2": counts(skipped=1)})
    )
    fake.chmod(0o755)
    env = {**aws_env, "PATH": f"{bin_dir}{os.pathsep}{ANSIBLE_BIN}"}
    proc = farm("converge", "-f", "demo", "--role", "web", "--check", "--diff", env=env)
    assert proc.returncode == 3, proc.stdout + proc.stderr  # check mode found drift
    cwd, *args = calls.read_text().split()
    assert Path(cwd) == Path(env["FARMHAND_HOME"])
    assert args == ["playbooks/site.yml", "--limit", "farm_demo:&role_web", "--check", "--diff"]
    assert "Converging 2 hosts of demo role web (check mode)" in proc.stdout
    assert "2 hosts, 2 changes (check mode)" in proc.stdout
    assert "1 host drifted: demo-web-1\n" in proc.stdout
