"""Run `make test`'s streams side by side, each in a CPU cgroup of its own, then print where time went.

    python tests/streams.py --results DIR NAME:WEIGHT:COMMAND [NAME:WEIGHT:COMMAND ...]

Each stream is a shell command (a make target) started at once with the others. Its processes and
the Podman containers it starts (FARMHAND_LOCAL_CGROUP_PARENT, read by `farm local up` and by
molecule/_shared/create.yml) share one cgroup whose CPU weight is WEIGHT (cgroup v1 cpu.shares, or
v2 cpu.weight scaled from it). Weights are what makes priorities hold on this machine: `nice` does
not, because the kernel's autogroup gives each session (and Ansible's every worker, which calls
setsid) the weight of one process, and all containers shared one cgroup worth one process too.

Every line a stream prints is prefixed with its name. At the end: each stream's status and wall time,
its slowest tests (pytest's JUnit XML files NAME*.xml in DIR, molecule's per-scenario lines), the
total, and last (where a CI log's tail shows it) each failed test and scenario on a line of its own
with why it failed: the test's failure message, or the failed task, host and message of the
scenario's log (LOGS/<scenario>.log). Exits 1 if any stream failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from itertools import takewhile
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")
GROUP = "farmhand-test"
SLOWEST = 8
SCENARIO_LINE = re.compile(r"^-----> molecule (\S+): passed in (\d+)s")
SCENARIO_FAILED = re.compile(r"^-----> molecule (\S+): FAILED")
REASON_CHARS = 240
TASK_LINE = re.compile(r"^TASK \[(.*)\]")
FATAL_LINE = re.compile(r"^(?:fatal|failed): \[([^\]]+)\]")
MSG_LINE = re.compile(r"""^\s*"?msg"?: (.*)""")


@dataclass
class Stream:
    name: str
    weight: int
    command: str
    dirs: list[Path] = field(default_factory=list)  # the stream's cgroup, in each hierarchy
    cpu_seconds: float | None = None
    cpu_base: float = 0.0  # what its cgroup had counted before it started (a busy leftover's)
    started: float = 0.0
    ended: float = 0.0
    returncode: int | None = None
    timed: list[tuple[float, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # scenarios that said so on their line


def parse_stream(text: str) -> Stream:
    name, sep, rest = text.partition(":")
    weight, sep2, command = rest.partition(":")
    valid_name = re.fullmatch(r"[a-z][a-z0-9-]*", name) is not None
    if (
        not (sep and sep2 and valid_name and command)
        or not weight.isdigit()
        or not 2 <= int(weight) <= 262144
    ):
        raise argparse.ArgumentTypeError(f"not NAME:WEIGHT:COMMAND (WEIGHT 2 to 262144): {text!r}")
    return Stream(name, int(weight), command)


class Cgroups:
    """The streams' cgroups: cgroup v1's cpu (weight) and cpuacct (usage) hierarchies, or v2's one."""

    def __init__(self, fs: Path = CGROUP_FS) -> None:
        self.v1 = (fs / "cpu" / "cpu.shares").exists()
        self.roots = [fs / "cpu" / GROUP, fs / "cpuacct" / GROUP] if self.v1 else [fs / GROUP]
        parents = [r.parent for r in self.roots]
        v2_cpu = not self.v1 and "cpu" in _read(fs / "cgroup.controllers").split()
        self.usable = all(os.access(p, os.W_OK) for p in parents) and (self.v1 or v2_cpu)

    def parent_path(self, stream: Stream) -> str:
        """The path `podman run --cgroup-parent` takes (the same in every hierarchy)."""
        return f"/{GROUP}/{stream.name}"

    def make(self, stream: Stream) -> None:
        for root in self.roots:
            if not self.v1:
                root.mkdir(exist_ok=True)
                for level in (root.parent, root):  # v2: a child's cpu.weight needs cpu enabled above it
                    if "cpu" not in _read(level / "cgroup.subtree_control").split():
                        (level / "cgroup.subtree_control").write_text("+cpu")
            path = root / stream.name
            path.mkdir(parents=True, exist_ok=True)
            stream.dirs.append(path)
        if self.v1:
            (stream.dirs[0] / "cpu.shares").write_text(str(stream.weight))
        else:
            (stream.dirs[0] / "cpu.weight").write_text(str(max(1, min(10000, stream.weight * 100 // 1024))))
        # A cgroup an earlier run could not remove (a process of its was still there, an SSH master
        # connection lingering) keeps counting from where it was: the stream's CPU is what it adds.
        stream.cpu_base = self.usage(stream) or 0.0

    def join_command(self, stream: Stream) -> str:
        """Shell that moves the stream's shell into its cgroups (its children follow)."""
        return " && ".join(f"echo $$ > {d / 'cgroup.procs'}" for d in stream.dirs)

    def used(self, stream: Stream) -> float | None:
        """CPU seconds the stream used, its containers included (read before its cgroups go)."""
        usage = self.usage(stream)
        return None if usage is None else usage - stream.cpu_base

    def usage(self, stream: Stream) -> float | None:
        """CPU seconds its cgroup has counted since it was made."""
        if self.v1:
            text = _read(stream.dirs[1] / "cpuacct.usage").strip()
            return int(text) / 1e9 if text.isdigit() else None
        for line in _read(stream.dirs[0] / "cpu.stat").splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec" and value.strip().isdigit():
                return int(value) / 1e6
        return None

    def remove(self) -> None:
        """Remove the streams' cgroups, deepest first (what is still busy stays)."""
        for root in self.roots:
            if not root.is_dir():
                continue
            dirs = sorted(
                (p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
            )
            for path in [*dirs, root]:
                with contextlib.suppress(OSError):
                    path.rmdir()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def pump(stream: Stream, proc: subprocess.Popen[bytes], lock: threading.Lock) -> None:
    assert proc.stdout is not None
    prefix = f"[{stream.name}] "
    for raw in proc.stdout:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        match = SCENARIO_LINE.match(line)
        if match:
            stream.timed.append((float(match.group(2)), f"molecule {match.group(1)}"))
        failed = SCENARIO_FAILED.match(line)
        if failed:
            stream.failed.append(f"molecule {failed.group(1)}")
        with lock:
            sys.stdout.write(prefix + line + "\n")
            sys.stdout.flush()


def junit_cases(results: Path, stream: Stream) -> list[tuple[float, str, str | None]]:
    """Each test case in the stream's JUnit XML files: its time, module::name, and why it failed
    (None if it passed)."""
    found = []
    for path in sorted(results.glob(f"{stream.name}*.xml")):
        try:
            tree = ET.parse(path)
        except ET.ParseError:
            continue
        for case in tree.iter("testcase"):
            module = case.get("classname", "").rsplit(".", 1)[-1]
            bad = case.find("failure")
            bad = case.find("error") if bad is None else bad
            why = None if bad is None else first_line(bad.get("message") or bad.text or "")
            found.append((float(case.get("time", "0") or 0), f"{module}::{case.get('name', '?')}", why))
    return found


def first_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "no message")
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 3] + "..."


def scenario_reason(log: str) -> str:
    """Why a molecule scenario failed, from its log: the last failed task with its host and
    message, else pytest's last FAILED line (testinfra), else molecule's last CRITICAL line."""
    lines = log.splitlines()
    task = None
    found = None
    for at, line in enumerate(lines):
        if heading := TASK_LINE.match(line):
            task = heading.group(1)
        elif fatal := FATAL_LINE.match(line):
            result = line.partition("=>")[2].strip()
            try:  # the default callback's one-line JSON result
                msg = str(json.loads(result).get("msg", result))
            except (ValueError, AttributeError):  # the YAML callback's: msg in the indented block below
                block = takewhile(lambda later: later.startswith(" ") or not later.strip(), lines[at + 1 :])
                said = (m.group(1) for later in block if (m := MSG_LINE.match(later)))
                msg = next(said, result or "no message")
            found = f"{task or 'a task'} on {fatal.group(1)}: {msg.strip()}"
    if found is None:
        found = next((line for line in reversed(lines) if line.startswith("FAILED ")), None)
    if found is None:
        found = next((line for line in reversed(lines) if "CRITICAL" in line), "see its output above")
    return first_line(found)


def slowest_tests(stream: Stream, cases: list[tuple[float, str, str | None]]) -> list[tuple[float, str]]:
    found = list(stream.timed) + [(seconds, name) for seconds, name, _ in cases]
    return sorted(found, reverse=True)[:SLOWEST]


def failures(stream: Stream, cases: list[tuple[float, str, str | None]], logs: Path | None) -> list[str]:
    """`name: why` for each failed scenario and test of the stream."""
    found = []
    for scenario in stream.failed:
        log = _read(logs / f"{scenario.removeprefix('molecule ')}.log") if logs else ""
        found.append(f"{scenario}: {scenario_reason(log)}")
    return found + [f"{name}: {why}" for _, name, why in cases if why is not None]


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


def summary(streams: list[Stream], results: Path, began: float, logs: Path | None = None) -> str:
    lines = ["", "=" * 30 + " make test: where the time went " + "=" * 30]
    cases = {stream.name: junit_cases(results, stream) for stream in streams}  # each file read once
    for stream in sorted(streams, key=lambda s: s.ended - s.started, reverse=True):
        status = "passed" if stream.returncode == 0 else f"FAILED (exit {stream.returncode})"
        cpu = f"{stream.cpu_seconds / 60:6.1f} core-min" if stream.cpu_seconds is not None else ""
        lines.append(f"{stream.name:<14} {minutes(stream.ended - stream.started):>14} {cpu:>15}  {status}")
        for seconds, what in slowest_tests(stream, cases[stream.name]):
            lines.append(f"{'':<16}{seconds:8.1f} s  {what}")
    used = [s.cpu_seconds for s in streams if s.cpu_seconds is not None]
    cpu = f"{sum(used) / 60:6.1f} core-min" if used else ""
    lines.append(f"{'total':<14} {minutes(time.monotonic() - began):>14} {cpu:>15}  (side by side)")
    for stream in streams:
        if stream.returncode != 0:
            what = failures(stream, cases[stream.name], logs)
            lines.extend(f"FAILED {stream.name} {line}" for line in what)
            if not what:
                lines.append(f"FAILED {stream.name}: see its output above")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="where the streams write JUnit XML")
    parser.add_argument("--logs", type=Path, help="where molecule scenarios write <scenario>.log")
    parser.add_argument("streams", nargs="+", type=parse_stream, metavar="NAME:WEIGHT:COMMAND")
    args = parser.parse_args(argv)
    streams: list[Stream] = args.streams
    args.results.mkdir(parents=True, exist_ok=True)
    for stale in args.results.glob("*.xml"):
        stale.unlink()

    cgroups = Cgroups()
    if not cgroups.usable:
        print("-----> streams: no writable cgroup tree here, the streams share the CPU unweighted")
    else:
        for stream in streams:
            cgroups.make(stream)

    began = time.monotonic()
    lock = threading.Lock()
    procs: list[tuple[Stream, subprocess.Popen[bytes], threading.Thread]] = []
    for stream in streams:
        env = dict(os.environ)
        command = stream.command
        if stream.dirs:
            env["FARMHAND_LOCAL_CGROUP_PARENT"] = cgroups.parent_path(stream)
            # The stream's shell joins its cgroups before it runs anything; its children follow.
            command = f"{cgroups.join_command(stream)} && exec bash -c {shlex.quote(command)}"
        stream.started = time.monotonic()
        proc = subprocess.Popen(
            ["bash", "-c", command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        thread = threading.Thread(target=pump, args=(stream, proc, lock), daemon=True)
        thread.start()
        procs.append((stream, proc, thread))

    def stop(signum: int, _frame: object) -> None:
        for _, proc, _ in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    pending = list(procs)
    while pending:
        for item in list(pending):
            stream, proc, thread = item
            if proc.poll() is not None:
                thread.join(timeout=10)
                stream.returncode = proc.returncode
                stream.ended = time.monotonic()
                if stream.dirs:
                    stream.cpu_seconds = cgroups.used(stream)
                with lock:
                    print(
                        f"-----> {stream.name}: {'passed' if proc.returncode == 0 else 'FAILED'} "
                        f"in {minutes(stream.ended - stream.started)}",
                        flush=True,
                    )
                pending.remove(item)
        time.sleep(0.5)

    if cgroups.usable:
        cgroups.remove()
    print(summary(streams, args.results, began, args.logs), flush=True)
    return 0 if all(s.returncode == 0 for s in streams) else 1


if __name__ == "__main__":
    sys.exit(main())
