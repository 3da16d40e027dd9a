"""Run playbooks: stream Ansible's progress, then summarise the recap per host."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from farmhand.core.project import Project

_RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$")
_TASK = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?:[\w.]+ : )?(?P<task>.*?)\] \**$")
_ONELINE = re.compile(r"^(?P<host>\S+) \| (?P<status>SUCCESS|CHANGED) => (?P<json>\{.*\})$")
_FAILED = re.compile(r"^(?:fatal|failed): \[(?P<host>[^\]]+?)(?: -> [^\]]+)?\]")


@dataclass
class PlaybookResult:
    """What a playbook run did: its exit code and the PLAY RECAP counts per host."""

    returncode: int
    recap: dict[str, dict[str, int]] = field(default_factory=dict)
    # (host, task) for every task that failed, in order.
    failures: list[tuple[str, str]] = field(default_factory=list)
    # Every line Ansible printed.
    output: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def changed(self) -> int:
        return sum(c.get("changed", 0) for c in self.recap.values())

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h for h, c in self.recap.items() if c.get("failed", 0) or c.get("unreachable", 0))


def parse_recap(lines: Sequence[str]) -> dict[str, dict[str, int]]:
    """Parse the PLAY RECAP block of Ansible's default output."""
    recap: dict[str, dict[str, int]] = {}
    in_recap = False
    for line in lines:
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap:
            match = _RECAP.match(line.strip())
            if match:
                counts = dict(item.split("=") for item in match["counts"].split())
                recap[match["host"]] = {k: int(v) for k, v in counts.items()}
    return recap


def parse_failures(lines: Sequence[str]) -> list[tuple[str, str]]:
    """(host, task name) of each `fatal:`/`failed:` line, from the TASK header above it."""
    task = ""
    found: list[tuple[str, str]] = []
    for line in lines:
        header = _TASK.match(line)
        if header:
            task = header["task"]
            continue
        failed = _FAILED.match(line)
        if failed and (failed["host"], task) not in found:
            found.append((failed["host"], task))
    return found


def describe_failures(result: PlaybookResult) -> str:
    """`ci-web-1 (Build the release)`, or the failed hosts of the recap when no task line was seen."""
    if result.failures:
        return ", ".join(f"{host} ({task})" for host, task in result.failures)
    return ", ".join(result.failed_hosts) or "see the output above"


def limit_for(farm: str, role: str | None = None) -> str:
    """An Ansible --limit for the farm, or for one role of it."""
    return f"farm_{farm}:&role_{role}" if role else f"farm_{farm}"


def playbook_command(
    project: Project,
    playbook: str,
    limit: str,
    check: bool = False,
    diff: bool = False,
    extra_args: Sequence[str] = (),
) -> list[str]:
    cmd = ["ansible-playbook", str(Path("playbooks") / playbook), "--limit", limit]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    cmd.extend(extra_args)
    return cmd


def stream_lines(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path | str | None = None,
    to: TextIO | None = None,
    prefix: str = "",
    stdin: int | None = None,
) -> tuple[int, list[str]]:
    """Run ARGV with stdout and stderr merged, writing each line to TO (after PREFIX) as it comes;
    return the exit status and the lines."""
    lines: list[str] = []
    with subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if to is not None:
                to.write(prefix + line)
                to.flush()
        return proc.wait(), lines


def run_playbook(
    project: Project,
    cmd: Sequence[str],
    env: Mapping[str, str],
    echo: bool = True,
    stream: TextIO | None = None,
) -> PlaybookResult:
    """Run ansible-playbook in the project, streaming its output line by line (to STREAM, else stdout)."""
    returncode, lines = stream_lines(
        cmd,
        {**env, "ANSIBLE_FORCE_COLOR": env.get("ANSIBLE_FORCE_COLOR", "0"), "PYTHONUNBUFFERED": "1"},
        cwd=project.root,
        to=(stream or sys.stdout) if echo else None,
    )
    return PlaybookResult(
        returncode=returncode, recap=parse_recap(lines), failures=parse_failures(lines), output=lines
    )


def run_module(
    project: Project,
    env: Mapping[str, str],
    pattern: str,
    module: str,
    args: str | Mapping[str, Any],
    become_user: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Run one module on the hosts of PATTERN (`ansible -o`): the result of each host that succeeded.

    ARGS is key=value text or a mapping (passed as JSON, so values may hold spaces and quotes).
    """
    text = args if isinstance(args, str) else json.dumps(dict(args))
    cmd = ["ansible", pattern, "-m", module, "-a", text, "-o"]
    if become_user:
        cmd += ["--become", "--become-user", become_user]
    proc = subprocess.run(
        cmd,
        cwd=project.root,
        env={**env, "ANSIBLE_FORCE_COLOR": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    found: dict[str, dict[str, Any]] = {}
    for line in proc.stdout.splitlines():
        match = _ONELINE.match(line.strip())
        if match:
            found[match["host"]] = json.loads(match["json"])
    return found
