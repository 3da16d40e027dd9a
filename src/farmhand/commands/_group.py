"""The `farm` group's listing: every command, subcommands included, as Heroku's help lists them."""

from __future__ import annotations

import click


class HerokuGroup(click.Group):
    """Lists every command, subcommands included (`local up`), as Heroku's help does."""

    def list_all(self, ctx: click.Context) -> list[tuple[str, click.Command]]:
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is None or cmd.hidden:
                continue
            if isinstance(cmd, click.Group):
                rows += [(f"{name} {sub}", cmd.commands[sub]) for sub in cmd.list_commands(ctx)]
            else:
                rows.append((name, cmd))
        return rows

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, cmd.get_short_help_str(80)) for name, cmd in self.list_all(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
