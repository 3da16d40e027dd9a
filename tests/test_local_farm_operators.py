"""Whole-farm test of the operators' commands: `farm run`, `console`, `ssh`, `scp` on the session's local
farm with the sample app deployed (tests/farmlib.py). Hosts are found by role, never by name; what a
test puts on a host it removes."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pexpect
import pytest
from farmlib import FARM, FARM_BIN, ROOT, farm, first_with_role, hosts_with_role, on_host, run

pytestmark = pytest.mark.farm

ONEOFF_ROLES = ("console", "worker", "web")


def farm_proc(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI with stdin a pipe (never a terminal) and its exit status kept."""
    return run(FARM_BIN, *args, input=input or "", timeout=600)


def oneoff_host() -> tuple[str, str]:
    """The host and role `farm run` picks: the first console host, else worker, else web."""
    for role in ONEOFF_ROLES:
        found = hosts_with_role(role)
        if found:
            return found[0], role
    raise AssertionError(f"farm {FARM} has no console, worker or web host")


def spawn(*args: str) -> pexpect.spawn:
    """The CLI on a terminal (24x80), as an operator's shell runs it."""
    return pexpect.spawn(FARM_BIN, list(args), cwd=str(ROOT), encoding="utf-8", timeout=300)


# -- farm run ------------------------------------------------------------------------------------


def test_run_has_the_apps_environment_in_its_current_release(deployed_app):
    host, role = oneoff_host()
    # The release `current` points at on that host: its directory and its name (vN).
    release_dir = on_host(host, "readlink", "-e", "/srv/bookshelf/current").stdout.strip()
    label = on_host(host, "cat", f"{release_dir}/RELEASE").stdout.strip()
    assert release_dir.startswith("/srv/bookshelf/releases/") and label.startswith("v")
    proc = farm_proc("run", "-f", FARM, "--", 'echo "$RAILS_ENV $FARMHAND_RELEASE"; id -un; pwd -P; hostname')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"production {label}", "app", release_dir, host]
    note = f"farm: farm '{FARM}' has no console host: using {host} ({role})"
    assert proc.stderr.splitlines() == ([] if role == "console" else [note])


def test_run_keeps_streams_apart_passes_stdin_and_exits_with_the_commands_status(deployed_app):
    proc = farm_proc("run", "-f", FARM, "--", "cat; echo to-stderr >&2; exit 7", input="piped in\n")
    assert proc.returncode == 7
    assert proc.stdout == "piped in\n"
    assert proc.stderr.splitlines()[-1] == "to-stderr"
    web = first_with_role("web")
    assert farm_proc("run", "-f", FARM, "-r", "web", "--", "hostname").stdout == f"{web}\n"
    assert farm_proc("run", "-f", FARM, "--", "tty").stdout == "not a tty\n"


def test_run_on_a_terminal_gets_a_terminal(deployed_app):
    session = spawn("run", "-f", FARM, "--", "tty; read line; echo got $line")
    try:
        session.expect(r"/dev/pts/\d+")
        session.sendline("typed")
        session.expect_exact("got typed")
        session.expect(pexpect.EOF)
    finally:
        session.close()
    assert session.exitstatus == 0, session.before


def expect_answering(session: pexpect.spawn, pattern: object) -> None:
    """Expect PATTERN, answering IRB's cursor position queries (ESC [6n) as a terminal does."""
    while session.expect([pattern, "\x1b\\[6n"]) == 1:
        session.send("\x1b[1;1R")


def test_console_answers_a_ruby_expression(deployed_app):
    session = spawn("console", "-f", FARM)
    try:
        expect_answering(session, r"irb\(main\)[^>]*> ")  # IRB's prompt, once Rails has booted
        session.sendline('puts "answer=#{6 * 7} books=#{Book.count >= 0}"')
        expect_answering(session, "answer=42 books=true")
        session.sendline("exit")
        expect_answering(session, pexpect.EOF)
    finally:
        session.close()
    assert session.exitstatus == 0, session.before


# -- farm ssh ------------------------------------------------------------------------------------


def test_ssh_to_a_host_logs_in_as_ansible_does(local_farm):
    host = first_with_role("db")
    proc = farm_proc("ssh", "-f", FARM, host, "--", "echo $(id -un)@$(hostname)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"admin@{host}\n"
    db = farm_proc("ssh", "-f", FARM, "-r", "db", "--", "sudo -n systemctl is-active postgresql")
    assert db.stdout == "active\n"
    assert farm_proc("ssh", "-f", FARM, host, "--", "exit 5").returncode == 5


def test_ssh_opens_a_shell_on_a_terminal(local_farm):
    host = first_with_role("web")
    session = spawn("ssh", "-f", FARM, host)
    try:
        session.expect(r"\$ ")
        session.sendline("echo sum=$((40 + 2)) on $(hostname)")
        session.expect_exact(f"sum=42 on {host}")
        session.sendline("exit")
        session.expect(pexpect.EOF)
    finally:
        session.close()
    assert session.exitstatus == 0, session.before


def test_ssh_all_runs_on_every_host_and_prefixes_its_lines(local_farm):
    every = sorted(json.loads(farm("ps", "-f", FARM, "--json").stdout)["hosts"], key=lambda h: h["name"])
    names = [h["name"] for h in every]
    proc = farm_proc("ssh", "-f", FARM, "--all", "--", "hostname; echo second line")
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == sorted(
        [f"{n}: {n}" for n in names] + [f"{n}: second line" for n in names]
    )
    web = hosts_with_role("web")
    only_web = farm_proc("ssh", "-f", FARM, "-r", "web", "--all", "--", "hostname")
    assert sorted(only_web.stdout.splitlines()) == [f"{n}: {n}" for n in web]
    # The command fails on the first web host only: non-zero, and the error names that host.
    failing = farm_proc("ssh", "-f", FARM, "--all", "--", f'test "$(hostname)" != {web[0]}')
    assert failing.returncode == 1
    assert failing.stderr.splitlines()[-1] == f"farm: error: failed on {web[0]} (exit 1)"


def test_ssh_to_an_unknown_host_is_one_clear_line(local_farm):
    proc = farm_proc("ssh", "-f", FARM, "no-such-host")
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"farm: error: unknown host 'no-such-host' in farm '{FARM}': hosts are ")


# -- farm scp ------------------------------------------------------------------------------------


def test_scp_copies_both_ways_and_recursively(local_farm, tmp_path: Path):
    host = first_with_role("web")
    token = secrets.token_hex(8)
    remote = f"/tmp/farm-scp-{token}"
    local = tmp_path / "up.txt"
    local.write_text(f"{token}\n")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "leaf.txt").write_text("leaf\n")
    try:
        assert farm_proc("scp", "-f", FARM, str(local), f"{host}:{remote}").returncode == 0
        assert on_host(host, "cat", remote).stdout == f"{token}\n"
        back = tmp_path / "down.txt"
        assert farm_proc("scp", "-f", FARM, f"{host}:{remote}", str(back)).returncode == 0
        assert back.read_text() == f"{token}\n"

        assert farm_proc("scp", "-f", FARM, "-r", str(tree), f"{host}:{remote}.d").returncode == 0
        assert on_host(host, "cat", f"{remote}.d/sub/leaf.txt").stdout == "leaf\n"
        copy = tmp_path / "copy"
        assert farm_proc("scp", "-f", FARM, "-r", f"{host}:{remote}.d", str(copy)).returncode == 0
        assert (copy / "sub" / "leaf.txt").read_text() == "leaf\n"

        missing = farm_proc("scp", "-f", FARM, f"{host}:/nonexistent-{token}", str(tmp_path))
        assert missing.returncode != 0 and "No such file" in missing.stderr
    finally:
        on_host(host, "rm", "-rf", remote, f"{remote}.d")
