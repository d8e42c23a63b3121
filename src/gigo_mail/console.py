"""Shared rich consoles for the CLI modules (the core never imports this)."""

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
