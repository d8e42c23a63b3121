"""Shared rich consoles for the CLI modules (the core never imports this)."""

from datetime import datetime

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def facts_table(*styles: str, right: int | None = None, tight: bool = False) -> Table:
    """A borderless, headerless table of label/value rows, one column per style.

    ``right`` right-justifies that column (counts); ``tight`` drops the padding
    between columns, as the send and build headers do."""
    table = Table(show_header=False, box=None, pad_edge=False) if tight else \
        Table(show_header=False, box=None, padding=(0, 2))
    for index, style in enumerate(styles):
        table.add_column(style=style or None, justify="right" if index == right else "left")
    return table


def local_time(value: str | None, *, seconds: bool = True) -> str:
    """A journal timestamp (ISO 8601, UTC) in the local time zone; '-' if none.
    ``seconds=False`` for narrow columns (the issues list)."""
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M:%S" if seconds else
                                                               "%Y-%m-%d %H:%M")
