"""`gigo-mail inbox`: run the built-in capture inbox, or empty it."""

from __future__ import annotations

import logging
import threading
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from gigo_mail.cli.console import console, err_console, until_stopped
from gigo_mail.config import shown_path
from gigo_mail.net import INBOX_HOST, INBOX_PORT, is_loopback
from gigo_mail.web.inbox import CapturedMessage, InboxServer, clear, default_maildir


class FailOn(StrEnum):
    rcpt = "rcpt"
    data = "data"


def _size(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / 1048576:.1f} MB"


def _print_message(message: CapturedMessage) -> None:
    line = Text()
    line.append(message.received.strftime("%H:%M:%S"), style="dim")
    line.append("  ")
    line.append(message.to or "(no To)", style="cyan")
    line.append("  ")
    line.append(message.subject or "(no subject)", style="bold")
    line.append(f"  {_size(message.size)}", style="dim")
    console.print(line, soft_wrap=True)


def inbox(
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535,
                                      help="Port to listen on (0 picks a free one).")] = INBOX_PORT,
    host: Annotated[str, typer.Option(
        "--host", help="Address to listen on. Anything but loopback lets others drop mail in.")
    ] = INBOX_HOST,
    maildir: Annotated[Path | None, typer.Option(
        "--maildir", file_okay=False, help="Maildir to store messages in (default: .gigo/inbox).")
    ] = None,
    clear_inbox: Annotated[bool, typer.Option(
        "--clear", help="Delete every stored message and exit.")] = False,
    fail_rate: Annotated[float, typer.Option(
        "--fail-rate", min=0.0, max=1.0,
        help="Chaos mode: fraction (0..1) of commands answered with --fail-code.")] = 0.0,
    fail_code: Annotated[int, typer.Option(
        "--fail-code", min=400, max=599,
        help="SMTP code chaos mode answers with (4xx temporary, 5xx permanent).")] = 451,
    fail_on: Annotated[FailOn, typer.Option(
        "--fail-on", help="Which command chaos mode fails.")] = FailOn.rcpt,
    seed: Annotated[int | None, typer.Option(
        "--seed", help="Make chaos mode repeatable: same seed, same failures.")] = None,
) -> None:
    """Run a local SMTP inbox that keeps every message (like Mailpit), to rehearse a send.

    Point \\[smtp] url at smtp://127.0.0.1:1025 and run the real send: each message
    lands in a Maildir any mail client can open. It accepts any recipient and any
    login, and never relays. Ctrl-C stops it; that is a normal stop (exit 0).
    """
    folder = maildir or default_maildir()
    if clear_inbox:
        removed = clear(folder)
        console.print(f"Removed {removed} message{'s' if removed != 1 else ''} "
                      f"from {escape(shown_path(folder))}")
        return

    # aiosmtpd logs every odd client command as a warning; the inbox reports what matters itself.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    server = InboxServer(folder, host=host, port=port, fail_rate=fail_rate, fail_code=fail_code,
                         seed=seed, on_message=_print_message, fail_on=fail_on.value)
    server.start()
    with until_stopped("Inbox") as stop:
        try:
            _serve_inbox(server, host, folder, fail_rate, fail_code, fail_on)
        finally:
            server.stop()
            stop.summary = (f"{server.received} message{'s' if server.received != 1 else ''} received"
                            + (f", {server.chaos.injected} failures injected" if fail_rate > 0 else ""))


def _serve_inbox(server: InboxServer, host: str, folder: Path, fail_rate: float, fail_code: int,
                 fail_on: FailOn) -> None:
    """Say where the inbox listens, then wait for the stop."""
    if not is_loopback(host):
        err_console.print(f"[bold yellow]warning:[/] listening on {escape(host)}: anyone who can reach "
                          "that address can drop mail into this inbox", highlight=False)
    console.print(f"Inbox listening on [bold]{escape(server.url)}[/], storing to "
                  f"{escape(shown_path(folder))}/ (Maildir)")
    if fail_rate > 0:
        console.print(f"[yellow]chaos mode:[/] about {fail_rate:.0%} of {fail_on.value.upper()} "
                      f"commands get {fail_code} (seed {server.chaos.seed})")
    console.print(f'Send to it with \\[smtp] url = "{escape(server.url)}". Ctrl-C stops.', style="dim")
    waiter = threading.Event()
    while not waiter.wait(0.5):  # until Ctrl-C or SIGTERM
        pass


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("inbox")(inbox)
