"""What every command shares: the -f FARM option, and a failure reported as one line, exit 1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from farmhand.console import error

F = Callable[..., Any]


def farm_option(func: F) -> F:
    return click.option(
        "-f",
        "--farm",
        envvar="FARMHAND_FARM",
        metavar="FARM",
        help="The farm (like a Heroku app). Default: $FARMHAND_FARM.",
    )(func)


def fail(message: str) -> click.exceptions.Exit:
    """Print MESSAGE as the one error line; raise what this returns to exit 1 (a run that failed)."""
    error(message)
    return click.exceptions.Exit(1)
