"""`farm completion SHELL`: the shell's completion script (commands, farms, roles, hosts)."""

from __future__ import annotations

import click

from farmhand.core import completion


@click.command("completion")
@click.argument("shell", type=click.Choice(completion.SHELLS))
@click.pass_context
def completion_cmd(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script: commands, farms, roles and hosts complete with TAB.

    Farms and hosts come from this checkout (group_vars, local farms, the inventory's cache):
    completing never waits for AWS.

    \b
    Example:
      eval "$(farm completion bash)"          (in ~/.bashrc)
      eval "$(farm completion zsh)"           (in ~/.zshrc, after compinit)
      farm completion fish > ~/.config/fish/completions/farm.fish
    """
    click.echo(completion.script(ctx.find_root().command, shell), nl=False)


COMMANDS = (completion_cmd,)
