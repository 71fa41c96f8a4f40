"""Console output shared by commands: rich tables on a terminal, tab-separated values
otherwise (pipes, files: every cell whole, one row a line, for ``grep``/``cut``), JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _cell(value: Any) -> str:
    """One TSV cell: tabs and line breaks inside a value become spaces."""
    return "" if value is None else " ".join(str(value).split())


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A rich table (``title`` above it) when stdout is a terminal; else ``# title``, a
    header line of ``columns`` and one tab-separated line per row, nothing truncated."""
    if not sys.stdout.isatty():
        sys.stdout.write(f"# {_cell(title)}\n")
        for row in (columns, *rows):
            sys.stdout.write("\t".join(_cell(v) for v in row) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console().print(table)
