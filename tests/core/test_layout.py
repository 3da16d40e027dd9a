"""The package's layout rules (README, "The `farm` CLI"): commands in farmhand.commands, one module
per topic; the work in farmhand.core, which never imports the commands nor starts a playbook."""

from __future__ import annotations

import ast
from pathlib import Path

import farmhand
from farmhand.cli import cli

PACKAGE = Path(farmhand.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def _calls(path: Path) -> set[str]:
    return {
        node.func.id if isinstance(node.func, ast.Name) else node.func.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute)
    }


def test_core_never_imports_the_commands():
    core = sorted((PACKAGE / "core").rglob("*.py"))
    assert core
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(
            i for i in _imports(p) if i.startswith(("farmhand.commands", "farmhand.cli"))
        )
        for p in core
    }
    assert {p: i for p, i in offenders.items() if i} == {}


def test_only_the_commands_start_playbooks():
    starters = {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if {"run_playbook", "playbook_command"} & _calls(p)
    }
    assert starters == {"commands/_playbooks.py", "commands/converge.py"}


def test_every_command_lives_in_its_topics_module():
    """`config:set` in commands/config.py, `pg:backups:capture` in commands/pg_backups.py..."""
    ctx = cli.make_context("farm", [], resilient_parsing=True)
    aliases = {"info": "apps", "deploy": "releases", "rollback": "releases", "maintenance": "maintenance"}
    aliases |= {"console": "run", "scp": "ssh", "psql": "pg"}
    for name, command in cli.list_all(ctx):
        words = name.split()[0].split(":")
        topic = "pg_backups" if words[:2] == ["pg", "backups"] else aliases.get(words[0], words[0])
        module = command.callback.__module__
        assert module == f"farmhand.commands.{topic}", (name, module)


TESTS = Path(__file__).resolve().parents[1]


def test_every_topic_has_its_test_module():
    """`farm cron:run`'s tests are in tests/commands/test_cron.py, as its code is in
    commands/cron.py; a test module there is a topic's, or the CLI's as a whole (test_cli.py) or
    the shared output's (test_output.py, commands/_output.py)."""
    topics = {p.stem for p in (PACKAGE / "commands").glob("*.py") if not p.stem.startswith("_")}
    tested = {p.stem.removeprefix("test_") for p in (TESTS / "commands").glob("test_*.py")}
    assert topics - tested == set()
    assert tested - topics == {"cli", "output"}
