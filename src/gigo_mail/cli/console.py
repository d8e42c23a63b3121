"""Shared rich consoles for the CLI modules (the core never imports this)."""

import contextlib
import signal
from collections.abc import Callable, Iterator
from datetime import datetime
from types import FrameType

from rich.console import Console
from rich.table import Table

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class Stopped:
    """Filled in by the server's block: ``summary`` goes on the stop line ("Inbox stopped: 3 messages")."""

    summary = ""


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM (systemd, docker stop, kill) ends a server as Ctrl-C does


@contextlib.contextmanager
def until_stopped(name: str) -> Iterator[Stopped]:
    """Run a server in the block until Ctrl-C or SIGTERM; either is a normal stop: one line
    ("<name> stopped"), exit 0. Every server of the CLI (inbox, preview, publish --serve,
    unsubscribe --serve) stops through here, so they all stop alike."""
    stopped = Stopped()
    try:
        previous = signal.signal(signal.SIGTERM, _on_term)
    except ValueError:  # not the main thread (a test calling the command in a thread)
        previous = None
    try:
        yield stopped
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    console.print(f"{name} stopped" + (f": {stopped.summary}" if stopped.summary else ""))


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


@contextlib.contextmanager
def byte_progress(label: str, total: int) -> Iterator[Callable[[int], None] | None]:
    """A progress bar over ``total`` bytes while the block runs, fed by the callback it yields
    (bytes done so far); None, and no bar, when stdout is not a terminal."""
    if not console.is_terminal or total <= 0:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn  # on a tty

    with Progress(TextColumn(f"[bold]{label}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  console=console, transient=True, auto_refresh=False) as bar:
        task = bar.add_task(label, total=total)

        def update(done: int) -> None:  # drawn when the work reports, not by a timer thread
            bar.update(task, completed=done)
            bar.refresh()

        yield update
