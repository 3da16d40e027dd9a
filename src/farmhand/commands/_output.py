"""Output in Heroku's manner: `-----> step` lines, tables or JSON, one-line errors on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.table import Table

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


def table(*columns: str) -> Table:
    """A table with these column headings, Heroku's way: no borders, no padding at the edges."""
    found = Table(box=None, show_edge=False, pad_edge=False)
    for column in columns:
        found.add_column(column)
    return found


def print_json(data: Any, ensure_ascii: bool = True) -> None:
    """DATA on stdout as indented JSON."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=ensure_ascii))


def show(as_json: bool, data: Any, text: Callable[[], None], ensure_ascii: bool = True) -> None:
    """A command's result: DATA as JSON with --json, else TEXT() prints it for people."""
    if as_json:
        print_json(data, ensure_ascii=ensure_ascii)
    else:
        text()


def size(n: float | None) -> str:
    """A byte count for people: 512 B, 1.5 kB, 16.0 MB ..."""
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "-"
