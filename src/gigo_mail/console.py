"""Shared rich consoles for the CLI modules (the core never imports this)."""

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
