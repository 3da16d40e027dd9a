"""`farm completion`: the shell scripts, and what bash offers for commands, farms, roles and hosts."""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest
from conftest import FARM_BIN, farm


@pytest.mark.parametrize(
    ("shell", "marker"), [("bash", "complete -o nosort -F"), ("zsh", "compdef"), ("fish", "complete")]
)
def test_completion_scripts(aws_env, shell, marker):
    proc = farm("completion", shell, env=aws_env)
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout and "_FARM_COMPLETE" in proc.stdout
    if shell == "bash":
        assert subprocess.run(["bash", "-n"], input=proc.stdout, text=True, check=False).returncode == 0


def bash_complete(env: dict[str, str], line: str) -> list[str]:
    """What bash offers for LINE<TAB>: the script sourced in a real bash, its function called as bash
    calls it (COMP_WORDS split at bash's word breaks, `:` among them)."""
    script = farm("completion", "bash", env=env).stdout
    driver = (
        f"{script}\n"
        f"COMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}\n"
        "COMP_WORDS=(); COMP_CWORD=0\n"
        "_farm_completion farm\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    bin_dir = str(FARM_BIN.parent)
    env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"}
    proc = subprocess.run(["bash", "-c", driver], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


def test_bash_completes_commands_with_colons(aws_env):
    # Bash replaces only `s` (after the `:` word break): offering `set` makes the line config:set.
    assert bash_complete(aws_env, "farm config:s") == ["set"]
    assert "config:set" in bash_complete(aws_env, "farm conf")
    assert bash_complete(aws_env, "farm pg:backups:c") == ["capture"]
    assert bash_complete(aws_env, "farm help config:g") == ["get"]


def test_farms_roles_and_hosts_complete(aws_env, farms):
    assert bash_complete(aws_env, "farm ps -f d") == ["demo"]
    assert bash_complete(aws_env, "farm logs -f demo -r db_") == ["db_follower", "db_restore"]
    assert bash_complete(aws_env, "farm ssh -f demo demo-w") == []  # nothing listed the farm yet
    assert farm("ps", "-f", "demo", env=aws_env).returncode == 0  # fills the inventory's cache
    assert bash_complete(aws_env, "farm ssh -f demo demo-w") == [
        "demo-web-1",
        "demo-web-2",
        "demo-worker-cron-1",
    ]
    assert bash_complete(aws_env, "farm scp -f demo ./x demo-d") == ["demo-db-1:"]
    assert "staging" in bash_complete(aws_env, "farm ps -f ")  # a farm seen in the cache
    env = {**aws_env, "FARMHAND_FARM": "demo"}
    assert bash_complete(env, "farm pg:follow demo-db") == ["demo-db-1"]
