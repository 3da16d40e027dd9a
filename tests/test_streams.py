"""`make test`'s stream runner (tests/streams.py): its arguments, cgroups and closing summary."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import threading
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location("streams", Path(__file__).with_name("streams.py"))
assert spec and spec.loader
streams = importlib.util.module_from_spec(spec)
sys.modules["streams"] = streams
spec.loader.exec_module(streams)


def test_a_stream_is_name_weight_and_a_command_that_may_hold_colons():
    stream = streams.parse_stream("farm-ci:4096:make test-farm-ci ARGS=a:b")
    assert (stream.name, stream.weight, stream.command) == ("farm-ci", 4096, "make test-farm-ci ARGS=a:b")


@pytest.mark.parametrize(
    "text",
    ["farm-ci", "farm-ci:4096", "farm-ci:4096:", ":4096:make", "x:1:make", "x:lots:make", "Farm:2:make"],
)
def test_a_bad_stream_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="not NAME:WEIGHT:COMMAND"):
        streams.parse_stream(text)


def fake_v1(tmp_path: Path) -> Path:
    for hierarchy, files in (("cpu", ["cpu.shares"]), ("cpuacct", ["cpuacct.usage"])):
        (tmp_path / hierarchy).mkdir()
        for name in files:
            (tmp_path / hierarchy / name).write_text("0\n")
    return tmp_path


def test_v1_streams_get_a_weight_and_their_usage_is_read(tmp_path):
    cgroups = streams.Cgroups(fake_v1(tmp_path))
    assert cgroups.usable
    stream = streams.parse_stream("molecule:2048:true")
    cgroups.make(stream)
    assert (tmp_path / "cpu/farmhand-test/molecule/cpu.shares").read_text() == "2048"
    assert cgroups.parent_path(stream) == "/farmhand-test/molecule"
    assert cgroups.join_command(stream) == (
        f"echo $$ > {tmp_path}/cpu/farmhand-test/molecule/cgroup.procs"
        f" && echo $$ > {tmp_path}/cpuacct/farmhand-test/molecule/cgroup.procs"
    )
    (tmp_path / "cpuacct/farmhand-test/molecule/cpuacct.usage").write_text("90000000000\n")
    assert cgroups.used(stream) == 90.0


def test_a_cgroup_left_by_an_earlier_run_counts_only_what_the_stream_adds(tmp_path):
    cgroups = streams.Cgroups(fake_v1(tmp_path))
    leftover = tmp_path / "cpuacct/farmhand-test/farm-ci"
    leftover.mkdir(parents=True)
    (leftover / "cpuacct.usage").write_text("1700000000000\n")  # an earlier run's 28 core-minutes
    stream = streams.parse_stream("farm-ci:4096:true")
    cgroups.make(stream)
    (leftover / "cpuacct.usage").write_text("1790000000000\n")
    assert cgroups.used(stream) == 90.0


def test_without_a_cgroup_tree_the_streams_run_unweighted(tmp_path):
    assert not streams.Cgroups(tmp_path).usable


def test_the_summary_lists_each_streams_time_cpu_and_slowest_tests(tmp_path):
    ci = streams.parse_stream("farm-ci:4096:true")
    ci.started, ci.ended, ci.returncode, ci.cpu_seconds = 0.0, 1500.0, 0, 1800.0
    mol = streams.parse_stream("molecule:2048:true")
    mol.started, mol.ended, mol.returncode = 0.0, 900.0, 1
    mol.timed = [(300.0, "molecule pgbackrest"), (120.0, "molecule redis")]
    (tmp_path / "farm-ci.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_local_farm" name="test_converge" time="400.5"/>'
        '<testcase classname="tests.test_local_farm" name="test_up" time="60.0"/>'
        "</testsuite></testsuites>"
    )
    text = streams.summary([mol, ci], tmp_path, began=0.0)
    lines = text.splitlines()
    ci_at = next(i for i, line in enumerate(lines) if line.startswith("farm-ci"))
    mol_at = next(i for i, line in enumerate(lines) if line.startswith("molecule"))
    assert ci_at < mol_at  # the longest stream first
    assert "25 min 00 s" in lines[ci_at] and "30.0 core-min" in lines[ci_at] and "passed" in lines[ci_at]
    assert "FAILED (exit 1)" in lines[mol_at]
    assert "400.5 s  test_local_farm::test_converge" in lines[ci_at + 1]
    assert "300.0 s  molecule pgbackrest" in lines[mol_at + 1]
    assert lines[-2].startswith("total") and lines[-1] == "FAILED molecule: see its output above"


def test_the_summary_ends_with_each_failed_test_and_why(tmp_path):
    """A CI log keeps its tail: what failed, and why, is the last thing printed."""
    jobs = streams.parse_stream("farm-jobs:4096:true")
    jobs.started, jobs.ended, jobs.returncode = 0.0, 100.0, 1
    (tmp_path / "farm-jobs.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_local_farm_workers" name="test_drain" time="9.0">'
        '<failure message="assert 0 == 1"/></testcase>'
        '<testcase classname="tests.test_local_farm_workers" name="test_scale" time="5.0">'
        '<error message="failed on setup with &quot;TimeoutError&quot;&#10;more lines"/></testcase>'
        '<testcase classname="tests.test_local_farm_workers" name="test_ok" time="1.0"/>'
        "</testsuite></testsuites>"
    )
    mol = streams.parse_stream("molecule:2048:true")
    mol.started, mol.ended, mol.returncode = 0.0, 50.0, 1
    streams.pump(
        mol,
        _Lines(
            [
                "-----> molecule redis: passed in 60s (6 passed)",
                "-----> molecule haproxy_lb: FAILED, its log follows",
            ]
        ),
        threading.Lock(),
    )
    lint = streams.parse_stream("lint:1024:true")
    lint.started, lint.ended, lint.returncode = 0.0, 10.0, 2
    ok = streams.parse_stream("python:1024:true")
    ok.started, ok.ended, ok.returncode = 0.0, 10.0, 0

    logs = tmp_path / "molecule"
    logs.mkdir()
    (logs / "haproxy_lb.log").write_text(
        "TASK [haproxy_lb : Install HAProxy] ***\n"
        "ok: [lb]\n"
        "TASK [Check the backends answer] ***\n"
        "fatal: [lb]: FAILED! =>\n"
        "    changed: false\n"
        "    msg: Status code was 503 and not [200]: HTTP Error 503\n"
        "CRITICAL Ansible return code was 2, command was: ansible-playbook\n"
    )

    lines = streams.summary([jobs, mol, lint, ok], tmp_path, began=0.0, logs=logs).splitlines()

    assert lines[-4:] == [
        "FAILED farm-jobs test_local_farm_workers::test_drain: assert 0 == 1",
        'FAILED farm-jobs test_local_farm_workers::test_scale: failed on setup with "TimeoutError"',
        "FAILED molecule molecule haproxy_lb: Check the backends answer on lb: "
        "Status code was 503 and not [200]: HTTP Error 503",
        "FAILED lint: see its output above",
    ]
    assert mol.timed == [(60.0, "molecule redis")]


class _Lines:
    """A finished process whose output was these lines."""

    def __init__(self, lines):
        self.stdout = [f"{line}\n".encode() for line in lines]


@pytest.mark.parametrize(
    ("log", "reason"),
    [
        (
            'TASK [redis : Start Redis] ***\nfatal: [redis]: FAILED! => {"changed": false, "msg": "no unit"}',
            "redis : Start Redis on redis: no unit",
        ),
        (
            "PLAY RECAP ***\nFAILED test_default.py::test_redis_answers[ansible://redis] - assert False\n",
            "FAILED test_default.py::test_redis_answers[ansible://redis] - assert False",
        ),
        (
            "CRITICAL Idempotence test failed because of the following tasks:\n* [redis] => redis : Config",
            "CRITICAL Idempotence test failed because of the following tasks:",
        ),
        (
            "TASK [Wait for the port] ***\nfatal: [lb]: FAILED! =>\n    changed: false\n"
            "TASK [Later] ***\nok: [lb] =>\n    msg: a later task's message\n",
            "Wait for the port on lb: no message",
        ),
        ("", "see its output above"),
    ],
)
def test_a_failed_scenario_is_told_by_its_failed_task_its_testinfra_line_or_molecules_complaint(log, reason):
    assert streams.scenario_reason(log) == reason
