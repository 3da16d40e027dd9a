"""Run playbooks and modules: stream Ansible's progress, and read what the run did as data.

Every run the CLI starts loads the `farmhand_results` callback (farmhand/ansible_plugins/callback),
which writes the run's results as JSON lines to a file this module names per run: each host's counts,
the tasks that failed or found their host unreachable, the tasks that changed, and for module runs
the data each host returned. Summaries, failure messages and `--json` outputs are built from those,
never from Ansible's printed output: the stdout callback, `callback_result_format` and `-v` only
change what the user sees.
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from farmhand.core.project import Project

CALLBACK_NAME = "farmhand_results"
CALLBACK_DIR = Path(__file__).resolve().parent.parent / "ansible_plugins" / "callback"
RESULTS_VAR = "FARMHAND_RESULTS_FILE"
MODULE_RESULTS_VAR = "FARMHAND_RESULTS_MODULE"


@dataclass(frozen=True)
class Failure:
    """A task that failed on a host (or found it unreachable), as the callback recorded it."""

    host: str
    task: str
    # The result's message (empty for a `no_log` task: Ansible censors it before any callback).
    message: str = ""
    unreachable: bool = False


@dataclass
class PlaybookResult:
    """What a run did: its exit code, each host's counts (the PLAY RECAP) and its failures."""

    returncode: int
    recap: dict[str, dict[str, int]] = field(default_factory=dict)
    # Every failed or unreachable task that counts (not ignored, not rescued), in order.
    failures: list[Failure] = field(default_factory=list)
    # Every line the callback wrote (farmhand.core.drift builds its report from them).
    events: list[dict[str, Any]] = field(default_factory=list)
    # What the playbook handed over with ansible.builtin.set_stats (run-wide data).
    custom: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def recorded(self) -> bool:
        """Whether the callback saw the run start (not: Ansible stopped before, or never loaded it)."""
        return any(e.get("event") == "start" for e in self.events)

    @property
    def changed(self) -> int:
        return sum(c.get("changed", 0) for c in self.recap.values())

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h for h, c in self.recap.items() if c.get("failed", 0) or c.get("unreachable", 0))

    def module_results(self) -> dict[str, dict[str, Any]]:
        """Per host, the data its last successful result returned (recorded for module runs)."""
        return {
            str(e["host"]): e["result"]
            for e in self.events
            if e.get("event") == "ok" and isinstance(e.get("result"), dict)
        }


def read_results(path: Path, returncode: int) -> PlaybookResult:
    """The result of a run from the callback's file (none recorded when it was never written)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    end = next((e for e in reversed(events) if e.get("event") == "end"), {})
    recap = {str(h): {k: int(v) for k, v in c.items()} for h, c in (end.get("stats") or {}).items()}
    counted = set(PlaybookResult(returncode, recap).failed_hosts) if end else None
    failures: list[Failure] = []
    for event in events:
        if event.get("event") not in ("failed", "unreachable"):
            continue
        failure = Failure(
            host=str(event["host"]),
            task=str(event["task"]),
            message="" if event.get("censored") else str(event.get("msg") or ""),
            unreachable=event["event"] == "unreachable",
        )
        # A failure a block rescued leaves no failed count in the recap: it is not one.
        if (counted is None or failure.host in counted) and all(
            (f.host, f.task) != (failure.host, failure.task) for f in failures
        ):
            failures.append(failure)
    return PlaybookResult(
        returncode=returncode,
        recap=recap,
        failures=failures,
        events=events,
        custom=dict((end.get("custom") or {}).get("_run") or {}),
    )


def describe_failures(result: PlaybookResult) -> str:
    """`ci-web-1 (Build the release)`, or the failed hosts of the recap when no task was recorded."""
    if result.failures:
        return ", ".join(f"{f.host} ({f.task})" for f in result.failures)
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


# -- enabling the callback -----------------------------------------------------------------------


def _ansible_cfg(root: Path, env: Mapping[str, str]) -> Path | None:
    """The configuration file Ansible reads when started in ROOT with ENV (its own search order)."""
    given = env.get("ANSIBLE_CONFIG")
    if given:
        path = Path(given).expanduser()
        return path / "ansible.cfg" if path.is_dir() else path
    home = Path(env.get("HOME") or Path.home())
    for path in (root / "ansible.cfg", home / ".ansible.cfg", Path("/etc/ansible/ansible.cfg")):
        if path.is_file():
            return path
    return None


def _configured(root: Path, env: Mapping[str, str], key: str) -> str | None:
    """The [defaults] KEY of that file, if it sets one."""
    path = _ansible_cfg(root, env)
    if path is None or not path.is_file():
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error:
        return None  # Ansible itself says what is wrong with it
    value = parser.get("defaults", key, fallback=None)
    return value if value is None else value.strip()


def callback_env(root: Path, env: Mapping[str, str], results: Path) -> dict[str, str]:
    """ENV with the farmhand_results callback enabled, writing to RESULTS.

    The callback's directory and name are added to what Ansible would use otherwise (the variable
    when set, else the configuration file's setting, else Ansible's default), so a callback or
    stdout callback of the user's own still loads.
    """
    plugins = env.get("ANSIBLE_CALLBACK_PLUGINS")
    if plugins is None:
        configured = _configured(root, env, "callback_plugins")
        if configured is not None:
            base = Path(_ansible_cfg(root, env) or root).parent
            plugins = os.pathsep.join(
                str(base / Path(p).expanduser()) for p in configured.split(os.pathsep) if p.strip()
            )
        else:
            home = Path(env.get("ANSIBLE_HOME") or Path(env.get("HOME") or Path.home()) / ".ansible")
            plugins = os.pathsep.join([str(home / "plugins/callback"), "/usr/share/ansible/plugins/callback"])
    enabled = env.get("ANSIBLE_CALLBACKS_ENABLED")
    if enabled is None:
        enabled = _configured(root, env, "callbacks_enabled") or ""
    names = [n.strip() for n in enabled.split(",") if n.strip() and n.strip() != CALLBACK_NAME]
    return {
        **env,
        "ANSIBLE_CALLBACK_PLUGINS": os.pathsep.join(p for p in (str(CALLBACK_DIR), plugins) if p),
        "ANSIBLE_CALLBACKS_ENABLED": ",".join([CALLBACK_NAME, *names]),
        RESULTS_VAR: str(results),
    }


@contextmanager
def recording(root: Path, env: Mapping[str, str]) -> Iterator[tuple[dict[str, str], Path]]:
    """ENV for one run with the callback enabled, and the file it writes (private, removed after)."""
    with tempfile.TemporaryDirectory(prefix="farmhand-run-") as tmp:
        results = Path(tmp) / "results.jsonl"
        yield callback_env(root, env, results), results


# -- running -------------------------------------------------------------------------------------


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
    """Run ansible-playbook in the project, streaming its output as it comes (to STREAM, else
    stdout), and return what the callback recorded."""
    with recording(project.root, env) as (run_env, results):
        returncode, _ = stream_lines(
            cmd,
            {**run_env, "ANSIBLE_FORCE_COLOR": env.get("ANSIBLE_FORCE_COLOR", "0"), "PYTHONUNBUFFERED": "1"},
            cwd=project.root,
            to=(stream or sys.stdout) if echo else None,
        )
        return read_results(results, returncode)


def run_module(
    project: Project,
    env: Mapping[str, str],
    pattern: str,
    module: str,
    args: str | Mapping[str, Any],
    become_user: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Run one module on the hosts of PATTERN (`ansible`): the result of each host that succeeded.

    ARGS is key=value text or a mapping (passed as JSON, so values may hold spaces and quotes).
    """
    text = args if isinstance(args, str) else json.dumps(dict(args))
    cmd = ["ansible", pattern, "-m", module, "-a", text]
    if become_user:
        cmd += ["--become", "--become-user", become_user]
    with recording(project.root, env) as (run_env, results):
        # `ansible` loads callbacks other than its stdout one only when told to.
        run_env = {**run_env, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "true", MODULE_RESULTS_VAR: "true"}
        proc = subprocess.run(
            cmd,
            cwd=project.root,
            env={**run_env, "ANSIBLE_FORCE_COLOR": "0"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        return read_results(results, proc.returncode).module_results()
