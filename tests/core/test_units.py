"""Pure functions: local farm shapes, the containers.conf patch, run results, farm names."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from farmhand.core.errors import FarmError
from farmhand.core.local.farm import cgroup_parent_args
from farmhand.core.local.hostfix import patch_containers_conf, ulimits_line
from farmhand.core.local.moto import MotoServer
from farmhand.core.local.shape import MAX_HOSTS, PlannedHost, parse_args, plan
from farmhand.core.project import validate_farm
from farmhand.core.runner import PlaybookResult, limit_for, read_results

ROLES = ("web", "worker", "db", "db_follower", "cron", "console", "lb", "redis")

# -- shape.parse_args ----------------------------------------------------------------------------


def test_parse_args_reads_roles_and_counts():
    assert parse_args(["web=2", "worker,cron=1", " db=0 "]) == {"web": 2, "worker,cron": 1, "db": 0}


def test_parse_args_of_nothing_is_empty():
    assert parse_args([]) == {}


def test_parse_args_passes_negative_counts_on_for_plan_to_reject():
    assert parse_args(["web=-1"]) == {"web": -1}


@pytest.mark.parametrize(
    "arg", ["web", "web=", "=2", "web=x", "Web=1", "web=1.5", "web,=1", "web cron=1", ""]
)
def test_parse_args_rejects_malformed_entries(arg):
    with pytest.raises(FarmError, match="invalid shape"):
        parse_args([arg])


def test_parse_args_rejects_a_key_given_twice():
    with pytest.raises(FarmError, match="shape names 'web' twice"):
        parse_args(["web=1", "web=2"])


# -- shape.plan ----------------------------------------------------------------------------------


def test_plan_names_hosts_farm_roles_number():
    hosts = plan("demo", {"web": 2, "worker,cron": 1, "db_follower": 1, "db": 0}, ROLES)
    assert hosts == [
        PlannedHost("demo-web-1", ("web",)),
        PlannedHost("demo-web-2", ("web",)),
        PlannedHost("demo-worker-cron-1", ("worker", "cron")),
        PlannedHost("demo-db-follower-1", ("db_follower",)),
    ]


def test_plan_multi_role_host_keeps_its_role_tag():
    (host,) = plan("ci", {"worker,cron": 1}, ROLES)
    assert host.roles == ("worker", "cron")
    assert host.role_tag == "worker,cron"


def test_plan_replaces_underscores_in_host_names():
    assert [h.name for h in plan("my_farm", {"db_follower": 1}, ROLES)] == ["my-farm-db-follower-1"]


def test_plan_allows_exactly_the_maximum():
    assert len(plan("big", {"web": MAX_HOSTS}, ROLES)) == MAX_HOSTS == 24


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ({}, "shape is empty"),
        ([], "shape is empty"),
        ({"bogus": 1}, "unknown role 'bogus'"),
        ({"web,bogus": 1}, "unknown role 'bogus'"),
        ({"web": 1, "worker,web": 1}, "role 'web' appears twice"),
        ({"web,web": 1}, "role 'web' appears twice"),
        ({"web": -1}, "invalid count -1"),
        ({"web": "2"}, "invalid count '2'"),
        ({"web": True}, "invalid count True"),
        ({"web": 1.0}, "invalid count 1.0"),
        ({"web": 0}, "has no hosts"),
        ({"web": 0, "db": 0}, "has no hosts"),
        ({"web": 20, "worker": 5}, "at most 24 hosts; this shape asks for 25"),
    ],
)
def test_plan_rejects_bad_shapes(shape, message):
    with pytest.raises(FarmError, match=message):
        plan("demo", shape, ROLES)


# -- hostfix.patch_containers_conf ---------------------------------------------------------------

LINE = 'default_ulimits = ["nofile=1048576:1048576", "nproc=32768:32768"]'

SAMPLES = {
    "empty": "",
    "containers-without-ulimits": '[containers]\nlog_driver = "k8s-file"\n',
    "containers-with-ulimits": '[containers]\ndefault_ulimits = ["nofile=1024:1024"]\npids_limit = 0\n',
    "other-sections": (
        '[engine]\ncgroup_manager = "cgroupfs"\n\n[containers]\nlog_driver = "k8s-file"\n\n'
        '[network]\nnetwork_backend = "netavark"\n'
    ),
    "no-containers-section": '[engine]\ncgroup_manager = "cgroupfs"\n',
    "ulimits-in-another-section": '[engine]\ndefault_ulimits = ["x"]\n[containers]\nlog_size_max = -1\n',
}


def test_patch_empty_file():
    assert patch_containers_conf("", LINE) == f"[containers]\n{LINE}\n"


def test_patch_adds_the_line_under_an_existing_containers_table():
    assert patch_containers_conf(SAMPLES["containers-without-ulimits"], LINE) == (
        f'[containers]\n{LINE}\nlog_driver = "k8s-file"\n'
    )


def test_patch_replaces_an_existing_default_ulimits_line():
    assert patch_containers_conf(SAMPLES["containers-with-ulimits"], LINE) == (
        f"[containers]\n{LINE}\npids_limit = 0\n"
    )


def test_patch_leaves_other_sections_untouched():
    patched = patch_containers_conf(SAMPLES["other-sections"], LINE)
    assert patched == (
        f'[engine]\ncgroup_manager = "cgroupfs"\n\n[containers]\n{LINE}\nlog_driver = "k8s-file"\n\n'
        '[network]\nnetwork_backend = "netavark"\n'
    )


def test_patch_appends_a_containers_table_when_there_is_none():
    assert patch_containers_conf(SAMPLES["no-containers-section"], LINE) == (
        f'[engine]\ncgroup_manager = "cgroupfs"\n\n[containers]\n{LINE}\n'
    )


def test_patch_ignores_default_ulimits_of_other_tables():
    assert patch_containers_conf(SAMPLES["ulimits-in-another-section"], LINE) == (
        f'[engine]\ndefault_ulimits = ["x"]\n[containers]\n{LINE}\nlog_size_max = -1\n'
    )


@pytest.mark.parametrize("text", list(SAMPLES.values()), ids=list(SAMPLES))
def test_patch_is_idempotent(text):
    once = patch_containers_conf(text, LINE)
    assert patch_containers_conf(once, LINE) == once
    assert once.count("default_ulimits") - text.count("default_ulimits") in (0, 1)
    assert once.count("[containers]") == 1


def test_patch_with_a_new_line_replaces_the_old_one():
    once = patch_containers_conf("", LINE)
    other = 'default_ulimits = ["nofile=4096:4096", "nproc=32768:32768"]'
    assert patch_containers_conf(once, other) == f"[containers]\n{other}\n"


def test_ulimits_line_is_a_toml_array_of_nofile_and_nproc():
    line = ulimits_line()
    assert line.startswith('default_ulimits = ["nofile=')
    assert line.endswith(', "nproc=32768:32768"]')


# -- runner.read_results: the farmhand_results callback's file -----------------------------------

RECAP = {
    "demo-web-1": {
        "ok": 12,
        "changed": 3,
        "unreachable": 0,
        "failed": 0,
        "skipped": 2,
        "rescued": 0,
        "ignored": 0,
    },
    "demo-worker-cron-1": {
        "ok": 10,
        "changed": 0,
        "unreachable": 0,
        "failed": 1,
        "skipped": 4,
        "rescued": 1,
        "ignored": 2,
    },
    "demo-db-1": {
        "ok": 0,
        "changed": 0,
        "unreachable": 1,
        "failed": 0,
        "skipped": 0,
        "rescued": 0,
        "ignored": 0,
    },
}
UNREACHABLE = {"event": "unreachable", "host": "demo-db-1", "task": "Gathering Facts", "msg": "no route"}


def results_file(tmp_path: Path, *events: dict) -> Path:
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_read_results_reads_counts_per_host(tmp_path):
    path = results_file(tmp_path, {"event": "start"}, UNREACHABLE, {"event": "end", "stats": RECAP})
    assert read_results(path, 2).recap == RECAP


def test_read_results_without_a_recap_is_empty(tmp_path):
    assert read_results(results_file(tmp_path, {"event": "start"}, UNREACHABLE), 2).recap == {}
    assert read_results(tmp_path / "never-written.jsonl", 0).recap == {}


def test_playbook_result_summarises_the_recap(tmp_path):
    result = PlaybookResult(
        returncode=2, recap=read_results(results_file(tmp_path, {"event": "end", "stats": RECAP}), 2).recap
    )
    assert not result.ok
    assert result.changed == 3
    assert result.failed_hosts == ["demo-db-1", "demo-worker-cron-1"]
    assert PlaybookResult(returncode=0).ok


def test_limit_for_farm_and_role():
    assert limit_for("demo") == "farm_demo"
    assert limit_for("demo", "web") == "farm_demo:&role_web"


# -- project.validate_farm -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["demo", "a", "ci", "staging_2", "x" * 31, "a1_b2"])
def test_validate_farm_accepts_valid_names(name):
    assert validate_farm(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Demo",
        "DEMO",
        "1demo",
        "_demo",
        "my farm",
        "demo-2",
        "x" * 32,
        "demo;ls",
        "$(id)",
        "../x",
        "démo",
        "demo\n",
    ],
)
def test_validate_farm_rejects_invalid_names(name):
    with pytest.raises(FarmError, match="invalid farm name") as info:
        validate_farm(name)
    assert "1-31 lowercase letters, digits and underscores, starting with a letter" in str(info.value)
    assert info.value.exit_code == 2


def test_validate_farm_without_a_name_says_how_to_give_one():
    with pytest.raises(FarmError, match="no farm given: use -f FARM or set FARMHAND_FARM"):
        validate_farm(None)


def test_a_journal_entry_becomes_a_line_tagged_with_host_and_program():
    from farmhand.core.journal import format_line

    entry = {"__REALTIME_TIMESTAMP": "1763920000123456", "SYSLOG_IDENTIFIER": "cron-tick", "_PID": "42"}
    line = format_line("demo-cron-1", {**entry, "MESSAGE": "tick\n"})
    assert line == "2025-11-23T17:46:40.123456+00:00 demo-cron-1 cron-tick[42]: tick"
    # journald gives messages that are not UTF-8 as byte arrays.
    raw = format_line("demo-web-1", {**entry, "MESSAGE": [104, 105, 255]})
    assert raw.endswith("demo-web-1 cron-tick[42]: hi\ufffd")


def test_journal_commands_read_the_backlog_then_follow_from_its_last_cursor():
    from farmhand.core.journal import journal_command

    assert journal_command(50, None, False, None) == [
        "sudo", "journalctl", "--no-pager", "-o", "json", "--lines=50",
    ]  # fmt: skip
    assert journal_command(50, "5[0-9]{2}", True, "s=abc") == [
        "sudo", "journalctl", "--no-pager", "-o", "json", "--follow", "--lines=all",
        "--after-cursor", "s=abc", "--grep", "5[0-9]{2}",
    ]  # fmt: skip


def test_two_farms_coming_up_at_once_share_one_moto(tmp_path):
    """`farm local up` of two farms at once (make test brings up two): one server, one endpoint."""
    script = (
        "import sys; from pathlib import Path; from farmhand.core.local.moto import MotoServer; "
        "print(MotoServer(Path(sys.argv[1])).ensure())"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    endpoints = {p.communicate(timeout=120)[0].strip() for p in procs}
    server = MotoServer(tmp_path)
    try:
        assert all(p.returncode == 0 for p in procs)
        assert endpoints == {server.endpoint}
        assert server.healthy()
    finally:
        server.stop()


def test_a_running_moto_slow_to_answer_is_waited_for_not_replaced(tmp_path, monkeypatch):
    """Under load moto may miss one health check: a second server would take the AWS API (and its
    records) from every farm command using the first (a clean run's farm-ci stream failed so)."""
    server = MotoServer(tmp_path)
    server.dir.mkdir()
    server.portfile.write_text("4567")
    answers = iter([False, False, False, True])
    monkeypatch.setattr(MotoServer, "pid", lambda self: 1234)
    monkeypatch.setattr(MotoServer, "healthy", lambda self: next(answers))
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    monkeypatch.setattr(MotoServer, "stop", lambda self: pytest.fail("stopped a live server"))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("started a second server"))
    assert server.ensure() == "http://127.0.0.1:4567"


def test_a_dead_moto_is_replaced(tmp_path, monkeypatch):
    server = MotoServer(tmp_path)
    server.dir.mkdir()
    server.portfile.write_text("4567")
    monkeypatch.setattr(MotoServer, "pid", lambda self: None)
    started = []

    class Started(Exception):
        pass

    def popen(argv, **kwargs):
        started.append(argv)
        raise Started

    monkeypatch.setattr(subprocess, "Popen", popen)
    with pytest.raises(Started):
        server.ensure()
    assert started and started[0][1:4] == ["-m", "moto.server", "-H"]


CGROUP = "FARMHAND_LOCAL_CGROUP_PARENT"


@pytest.mark.parametrize("environ", [{}, {CGROUP: ""}, {CGROUP: " "}])
def test_containers_stay_in_podmans_cgroup_unless_one_is_given(environ):
    assert cgroup_parent_args(environ) == []


@pytest.mark.parametrize("value", ["/farmhand-test/ci", "/a", "/farmhand-test/molecule_2.x"])
def test_a_cgroup_parent_becomes_podmans_option(value):
    assert cgroup_parent_args({CGROUP: value}) == ["--cgroup-parent", value]


@pytest.mark.parametrize("value", ["ci", "/", "/a/../b", "/a/./b", "/a b", "/a;ls", "/a//b", "/a/"])
def test_a_bad_cgroup_parent_is_one_clear_line(value):
    with pytest.raises(FarmError, match=rf"^{CGROUP} must be an absolute cgroup path"):
        cgroup_parent_args({CGROUP: value})
