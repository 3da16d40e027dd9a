#!/usr/bin/env python3
"""What the common role's module cache saves on a host: the CPU of one Ansible module run, with and
without roles/common/files/farmhand_ansiballz.py, side by side.

Ansible (`ansible localhost -c local`, ANSIBLE_KEEP_REMOTE_FILES) writes the AnsiballZ file of a
few modules the roles run all the time (stat, file, command, lineinfile, getent); each is then run
R times by Debian's /usr/bin/python3 (the hosts' interpreter), alternating: once as stock Python
runs it (zipimport compiles every module_utils file, twice on Python 3.11), once with the importer
loaded (as the role's .pth loads it) and its cache warm in a temp dir. The CPU of each run (user +
system, from getrusage) is summed per round; the medians per module and in all are printed with
their ratio. Each cached run must print the same result as the stock one. Nothing leaves the
machine.

    .venv/bin/python bench/module_cache.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
IMPORTER_DIR = REPO_ROOT / "roles" / "common" / "files"
PYTHON = "/usr/bin/python3"


def modules(scratch: Path) -> dict[str, str]:
    """Each module and its arguments, as a role's task gives them."""
    return {
        "stat": f"path={scratch} get_checksum=true",
        "file": f"path={scratch}/dir state=directory mode=0755",
        "command": "/bin/true",
        "lineinfile": f"path={scratch}/conf line='key = value' create=true mode=0644",
        "getent": "database=passwd key=root",
    }


def ansiballz(module: str, args: str, work: Path) -> Path:
    """The AnsiballZ file Ansible writes to run `module` with `args` on this machine."""
    kept = work / f"remote-{module}"
    env = {
        **os.environ,
        "ANSIBLE_KEEP_REMOTE_FILES": "1",
        "ANSIBLE_PIPELINING": "0",
        "ANSIBLE_REMOTE_TMP": str(kept),
        "ANSIBLE_PYTHON_INTERPRETER": PYTHON,
    }
    ansible = str(Path(sys.executable).with_name("ansible"))
    proc = subprocess.run(
        [ansible, "localhost", "-c", "local", "-m", f"ansible.builtin.{module}", "-a", args],
        env=env, cwd=work, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"bench: ansible -m {module} failed:\n{proc.stdout}{proc.stderr}")
    (found,) = kept.glob(f"*/AnsiballZ_{module}.py")
    return found


def cpu_of(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    """The CPU seconds of one run of argv, and what it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return used, proc.stdout


def result_of(output: str) -> dict:
    """A module's result without what differs from run to run."""
    result = json.loads(output)
    for volatile in ("invocation", "start", "end", "delta"):
        result.pop(volatile, None)
    if "stat" in result:
        result["stat"] = {k: v for k, v in result["stat"].items() if k not in ("atime", "ctime", "mtime")}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="farmhand-bench-") as temp:
        work = Path(temp)
        scratch = work / "scratch"
        scratch.mkdir()
        cache = work / "cache"
        cache.mkdir(mode=0o700)
        site = work / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(
            f"import sys\nsys.path.insert(0, {str(IMPORTER_DIR)!r})\n"
            f"import farmhand_ansiballz\nfarmhand_ansiballz.CACHE_DIR = {str(cache)!r}\n"
        )
        files = {name: ansiballz(name, args, work) for name, args in modules(scratch).items()}
        stock_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        cached_env = {**stock_env, "PYTHONPATH": str(site)}
        for path in files.values():  # fill the cache: the first run on a host compiles
            cpu_of([PYTHON, str(path)], cached_env)

        times: dict[str, dict[str, list[float]]] = {name: {"stock": [], "cached": []} for name in files}
        for _ in range(options.rounds):
            for name, path in files.items():
                stock, stock_out = cpu_of([PYTHON, str(path)], stock_env)
                cached, cached_out = cpu_of([PYTHON, str(path)], cached_env)
                if result_of(stock_out) != result_of(cached_out):
                    sys.exit(f"bench: {name} gave another result with the cache:\n{stock_out}\n{cached_out}")
                times[name]["stock"].append(stock)
                times[name]["cached"].append(cached)

    print(f"CPU of one module run on {PYTHON} (median of {options.rounds} alternating rounds, user + system)")
    print(f"{'module':<12} {'stock':>9} {'cached':>9} {'stock/cached':>13}")
    totals = {"stock": [0.0] * options.rounds, "cached": [0.0] * options.rounds}
    for name, runs in times.items():
        stock, cached = statistics.median(runs["stock"]), statistics.median(runs["cached"])
        print(f"{name:<12} {stock * 1000:7.0f}ms {cached * 1000:7.0f}ms {stock / cached:12.2f}x")
        for kind in totals:
            totals[kind] = [a + b for a, b in zip(totals[kind], runs[kind], strict=True)]
    stock, cached = statistics.median(totals["stock"]), statistics.median(totals["cached"])
    print(f"{'all five':<12} {stock * 1000:7.0f}ms {cached * 1000:7.0f}ms {stock / cached:12.2f}x")


if __name__ == "__main__":
    main()
