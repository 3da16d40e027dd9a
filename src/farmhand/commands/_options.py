"""What every command shares: -f FARM, -r ROLE (both completed), --json, a failure as one line (exit 1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from farmhand.commands._output import error
from farmhand.core.completion import complete_farm, complete_role

F = Callable[..., Any]


def farm_option(func: F) -> F:
    return click.option(
        "-f",
        "--farm",
        envvar="FARMHAND_FARM",
        metavar="FARM",
        help="The farm (like a Heroku app). Default: $FARMHAND_FARM.",
        shell_complete=complete_farm,
    )(func)


def role_option(help: str, **kwargs: Any) -> Callable[[F], F]:
    """-r/--role ROLE, completed from the project's roles."""
    return click.option("-r", "--role", metavar="ROLE", help=help, shell_complete=complete_role, **kwargs)


def json_option(help: str = "Print JSON instead of text.") -> Callable[[F], F]:
    """--json (as `as_json`): the command prints its result with _output.show."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def fail(message: str) -> click.exceptions.Exit:
    """Print MESSAGE as the one error line; raise what this returns to exit 1 (a run that failed)."""
    error(message)
    return click.exceptions.Exit(1)
