"""What the commands share for their results: --json, one table-or-JSON helper, plain tables."""

from __future__ import annotations

import json

import click
from click.testing import CliRunner

from farmhand.commands._options import json_option
from farmhand.commands._output import out, show, table


def _command(data: object, ensure_ascii: bool = True) -> click.Command:
    @click.command()
    @json_option("Print JSON instead of a table.")
    def cmd(as_json: bool) -> None:
        show(as_json, data, lambda: click.echo("for people"), ensure_ascii=ensure_ascii)

    return cmd


def test_json_option_keeps_each_commands_help():
    assert "Print JSON instead of a table." in CliRunner().invoke(_command({}), ["--help"]).output

    @click.command()
    @json_option()
    def default(as_json: bool) -> None:
        pass

    assert "Print JSON instead of text." in CliRunner().invoke(default, ["--help"]).output


def test_show_prints_json_with_the_option_and_text_without():
    data = {"farm": "demo", "hosts": [1, 2]}
    as_json = CliRunner().invoke(_command(data), ["--json"])
    assert as_json.exit_code == 0
    assert as_json.output == json.dumps(data, indent=2) + "\n"
    assert CliRunner().invoke(_command(data), []).output == "for people\n"


def test_show_keeps_non_ascii_when_asked():
    data = {"GREETING": "héllo ✓"}
    assert "héllo ✓" in CliRunner().invoke(_command(data, ensure_ascii=False), ["--json"]).output
    assert "\\u00e9" in CliRunner().invoke(_command(data), ["--json"]).output


def test_table_has_the_columns_and_no_borders():
    rows = table("HOST", "STATE")
    rows.add_row("demo-web-1", "running")
    with out.capture() as captured:
        out.print(rows)
    lines = captured.get().splitlines()
    assert lines[0].split() == ["HOST", "STATE"]
    assert lines[1].split() == ["demo-web-1", "running"]
    assert not any(ch in captured.get() for ch in "│─┃━")
