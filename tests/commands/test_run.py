"""`farm run` and `farm console`, against moto's fake hosts with a stand-in `ssh` that records how it
was called."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import FARM_BIN, calls, farm, remote_of


def test_run_falls_back_to_the_first_worker_and_says_so(fake_ssh, farms):
    env, log = fake_ssh
    worker = farms["demo-worker-cron-1"]["ip"]
    proc = farm("run", "-f", "demo", "--", "echo $GREETING", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"out from {worker}\n"
    assert proc.stderr.splitlines() == [
        "farm: farm 'demo' has no console host: using demo-worker-cron-1 (worker)",
        f"err from {worker}",
    ]
    (call,) = calls(log)
    assert call[0] == "ssh" and "-T" in call and f"admin@{worker}" in call
    remote = remote_of(call)
    assert remote[:5] == ["sudo", "-n", "-u", "app", "--"]
    # In the release, with app-env, the one argument a command line run by a shell there
    # ($GREETING expands there).
    assert "/srv/bookshelf" in remote
    assert remote[-4:] == ["/usr/local/bin/app-env", "/bin/sh", "-c", "echo $GREETING"]


# Words that a shell splitting them again would break: quotes, parentheses, `$`, spaces, globs.
WORDS = {
    "runner-snippet": ("bin/rails", "runner", "puts User.count"),
    "parentheses": ("bin/rails", "runner", "puts(User.where(admin: true).count)"),
    "dollar-and-backticks": ("printf", "%s\\n", "$HOME", "`id`", "$(id)"),
    "quotes": ("echo", "it's", 'say "hi"', "back\\slash"),
    "spaces-and-empty": ("printf", "[%s]", "two  spaces", "", " lead"),
    "globs-and-operators": ("echo", "*", "a;b", "c|d", "e&&f", ">g"),
}


@pytest.mark.parametrize("words", list(WORDS.values()), ids=list(WORDS))
def test_run_gives_each_argument_to_the_command_as_it_was_given(fake_ssh, words):
    env, log = fake_ssh
    proc = farm("run", "-f", "demo", "-r", "web", "--", *words, env=env)
    assert proc.returncode == 0, proc.stderr
    line = remote_of(calls(log)[0])[-1]
    # The words a shell makes of that line (the host's /bin/sh -c runs it): each one as given.
    made = subprocess.run(
        ["/bin/sh", "-c", f'set -- {line} && for word; do printf "%s\\0" "$word"; done'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert made.stdout.split("\0")[:-1] == list(words), line


def test_run_exits_with_the_remote_status_and_pipes_stdin(fake_ssh, farms):
    env, _ = fake_ssh
    web = farms["demo-web-1"]["ip"]
    env = {**env, "FAKE_SSH_EXIT": json.dumps({web: 3}), "FAKE_SSH_STDIN": "1"}
    proc = subprocess.run(
        [str(FARM_BIN), "run", "-f", "demo", "-r", "web", "--", "cat"],
        env=env,
        input="rows\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 3
    assert proc.stdout == f"out from {web}: rows\n\n"
    assert proc.stderr == f"err from {web}\n"  # no note: the role was asked for


def test_console_is_rails_console_in_the_release(fake_ssh):
    env, log = fake_ssh
    proc = farm("console", "-f", "staging", "--", "--sandbox", env=env)
    assert proc.returncode == 0, proc.stderr
    assert remote_of(calls(log)[0])[-1] == "bin/rails console --sandbox"
