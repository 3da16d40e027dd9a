"""Output in Heroku's manner: `-----> step` lines, tables, one-line errors on stderr."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)


def step(message: str) -> None:
    out.print(f"-----> {message}", markup=False)


def info(message: str) -> None:
    out.print(f"       {message}", markup=False)


def error(message: str) -> None:
    err.print(f"farm: error: {message}", markup=False, soft_wrap=True)


@contextmanager
def progress_on_stderr(enabled: bool = True) -> Iterator[None]:
    """Print steps, info lines and tables on stderr: stdout carries a report (`--json`) meanwhile."""
    if not enabled:
        yield
        return
    saved = out.file
    out.file = sys.stderr
    try:
        yield
    finally:
        out.file = saved
