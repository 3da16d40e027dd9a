"""`farm --help` and `farm help`: every command listed, each with an example, Heroku's layout."""

from __future__ import annotations

from conftest import assert_ok, farm

from farmhand.cli import HerokuGroup, cli
from farmhand.commands.help import split_help


def test_help_lists_every_command(aws_env):
    proc = farm("--help", env=aws_env)
    assert_ok(proc)
    commands = proc.stdout.split("Commands:", 1)[1]
    listed = {line.strip().split("  ")[0] for line in commands.splitlines() if line.strip()}
    assert {"converge", "ps", "local up", "local down", "local env"} <= listed


def test_every_command_has_help_with_an_example():
    ctx = cli.make_context("farm", [], resilient_parsing=True)
    assert isinstance(cli, HerokuGroup)
    missing = [name for name, cmd in cli.list_all(ctx) if not split_help(cmd.help or "").examples]
    assert missing == []


def test_help_is_herokus_layout(aws_env):
    proc = farm("help", "config:set", env=aws_env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Set config vars")
    assert lines[lines.index("USAGE") + 1].startswith("  $ farm config:set [OPTIONS]")
    assert "OPTIONS" in lines and "EXAMPLES" in lines
    examples = lines[lines.index("EXAMPLES") + 1 :]
    assert examples and all(e.startswith("  $ farm config:set") for e in examples if e.strip())
    assert "  $ farm local up -f demo" in farm("help", "local", "up", env=aws_env).stdout
