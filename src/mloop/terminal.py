"""Consoles for what mloop prints: fit a terminal, and never cut a line when output goes to a file.

Rich assumes 80 columns when its stream is not a terminal, so a table in a CI log or ``> demo.log``
lost its last columns. Without a terminal the width is wide enough for any row mloop prints; rules
(section headings) are drawn at a fixed width so they do not become 1,000 dashes.
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from typing import TextIO

from rich.console import Console
from rich.rule import Rule
from rich.table import Table

NO_TERMINAL_WIDTH = 1000  # no table mloop prints is wider; rich only pads what it must
HEADING_WIDTH = 100


def make_console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr): the terminal's width, or ``NO_TERMINAL_WIDTH`` without one."""
    stream: TextIO = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    return Console(stderr=stderr, width=None if terminal else NO_TERMINAL_WIDTH, soft_wrap=not terminal)


def heading(console: Console, title: str) -> None:
    """A section rule, as wide as the terminal but never wider than ``HEADING_WIDTH``."""
    console.print(Rule(title), width=min(console.width, HEADING_WIDTH))


def new_table(*headers: str, title: str | None = None, wrap: Collection[str] = ()) -> Table:
    """A table whose cells never wrap (numbers, hashes, versions) except the free-text columns in ``wrap``.

    In a narrow terminal rich shrinks the ``wrap`` columns first, so a number is never split over two lines.
    """
    table = Table(title=title)
    for header in headers:
        table.add_column(header, no_wrap=header not in wrap)
    return table


__all__ = ["HEADING_WIDTH", "NO_TERMINAL_WIDTH", "heading", "make_console", "new_table"]
