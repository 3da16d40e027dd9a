"""`farm help COMMAND`: a command's help in Heroku's layout (usage, options, description, examples)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import click
from click.shell_completion import CompletionItem

from farmhand.core.errors import FarmError


@dataclass(frozen=True)
class HelpText:
    """A command's docstring in parts: its summary, the rest of its description, its examples."""

    summary: str
    description: list[str]
    examples: list[str]


def split_help(text: str) -> HelpText:
    """Split a docstring: first paragraph, the paragraphs after it, the lines after `Example:`."""
    lines = [line for line in (text or "").splitlines() if line.strip() != "\b"]
    examples: list[str] = []
    for n, line in enumerate(lines):
        if line.strip() in ("Example:", "Examples:"):
            examples = [e.strip() for e in lines[n + 1 :] if e.strip()]
            lines = lines[:n]
            break
    paragraphs = [p.strip() for p in "\n".join(lines).split("\n\n") if p.strip()]
    summary = " ".join(paragraphs[0].split()) if paragraphs else ""
    return HelpText(summary, [" ".join(p.split()) for p in paragraphs[1:]], examples)


def find_command(root: click.Group, words: Sequence[str]) -> tuple[str, click.Command]:
    """The command that WORDS name (`config:set`, `local up`), with its full name."""
    ctx = click.Context(root, info_name="farm")
    cmd: click.Command = root
    path: list[str] = []
    for word in words:
        sub = cmd.get_command(ctx, word) if isinstance(cmd, click.Group) else None
        if sub is None or sub.hidden:
            raise FarmError(f"unknown command {' '.join([*path, word])!r}: `farm help` lists them")
        cmd, path = sub, [*path, word]
    return " ".join(path), cmd


def render(root: click.Group, words: Sequence[str]) -> str:
    """Heroku's help layout for one command."""
    name, cmd = find_command(root, words)
    ctx = click.Context(cmd, info_name=f"farm {name}")
    parts = split_help(cmd.help or "")
    out = [parts.summary, "", "USAGE", f"  $ farm {name} {' '.join(cmd.collect_usage_pieces(ctx))}".rstrip()]
    records = [
        r for p in cmd.get_params(ctx) if isinstance(p, click.Option) and (r := p.get_help_record(ctx))
    ]
    if records:
        width = max(len(opts) for opts, _ in records)
        out += ["", "OPTIONS"]
        out += [f"  {opts:<{width}}  {help_text}".rstrip() for opts, help_text in records]
    if parts.description:
        out += ["", "DESCRIPTION"]
        for paragraph in parts.description:
            out += [*textwrap.wrap(paragraph, 98, initial_indent="  ", subsequent_indent="  "), ""]
        out.pop()
    if parts.examples:
        out += ["", "EXAMPLES"]
        out += [f"  $ {e}" if e.split()[0] in ("farm", "echo", "eval") else f"  {e}" for e in parts.examples]
    return "\n".join(out) + "\n"


def _complete_command(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    root = ctx.find_root().command
    names = root.list_commands(ctx) if isinstance(root, click.Group) else []
    return [CompletionItem(n) for n in names if n.startswith(incomplete) and n not in ("help", "completion")]


@click.command("help")
@click.argument("command", nargs=-1, shell_complete=_complete_command)
@click.pass_context
def help_cmd(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Show a command's help, Heroku style: usage, options, description, examples.

    Without a command: every command, as `farm --help` lists them.

    \b
    Example:
      farm help config:set
      farm help local up
    """
    root = ctx.find_root().command
    assert isinstance(root, click.Group)
    if not command:
        click.echo(root.get_help(ctx.find_root()))
        return
    click.echo(render(root, command), nl=False)


COMMANDS = (help_cmd,)
