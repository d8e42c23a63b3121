"""`gigo-mail send`: its options, and the connections opened before the rest of the send loads.

Exit codes: 0 every listed recipient has the issue; 1 a failure, a stop (one red line
says why), a list that leaves nobody to send to (its rows all skipped, counted per reason;
the dry run and ``subscribers check`` say the same), or anyone left failed or uncertain (the
last lines say how many and the command that resolves them); 130 Ctrl-C (in-flight
messages finish first, the journal is saved, the summary is printed).

A list send that will not stop to ask opens its SMTP connections first (``send.request``), then
loads what draws and runs it (``cli.sending``: the list reader, the journal, the engine, rich's
progress), so that a server 50 ms away has greeted and answered EHLO by the time the plan is counted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from gigo_mail.cli.console import err_console
from gigo_mail.config import Smtp, load_config
from gigo_mail.send.request import SendRequest, open_early


def _start(request: SendRequest, yes: bool) -> int:
    config = load_config(required=True)
    early = open_early(config, request) if yes or not sys.stdin.isatty() else None
    try:
        from gigo_mail.cli.sending import command  # loads while the connections open
    except BaseException:
        if early is not None:
            early[2].close()
        raise
    return command(request, yes, config, early)


def register(app: typer.Typer) -> None:
    @app.command()
    def send(
        issue: Annotated[str, typer.Argument(help="Issue number (011 or 11) or path to its Markdown file.")],
        list_path: Annotated[Path | None, typer.Option(
            "--list", "-l", help="Subscriber list: a CSV with an email column, or a platform's export "
            "as it is.")] = None,
        to: Annotated[list[str] | None, typer.Option(
            "--to", help="Test send to this address ([TEST] subject, not journaled; values from the first "
            "sendable row of [list] path, else sample values). "
            "Repeatable.")] = None,
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="Render every message to .eml files; connect nowhere.")] = False,
        out: Annotated[Path | None, typer.Option(
            "--out", help="Folder for --dry-run (default build/ISSUE/outbox).")] = None,
        no_write: Annotated[bool, typer.Option(
            "--no-write", help="With --dry-run: render every message but write no files.")] = False,
        limit: Annotated[int | None, typer.Option(
            "--limit", min=1, help="Send to at most N recipients in this run.")] = None,
        rate: Annotated[float | None, typer.Option(
            "--rate", min=0.0, help="Messages per second, all connections together (0 = unlimited).")] = None,
        concurrency: Annotated[int | None, typer.Option(
            "--concurrency", min=1, max=100,
            help=f"Parallel SMTP connections (default {Smtp.concurrency}).")] = None,
        smtp: Annotated[str | None, typer.Option(
            "--smtp", help="SMTP URL, e.g. smtp://user@host:587 (password: env GIGO_SMTP_PASSWORD "
            "or a prompt).")] = None,
        retry_failed: Annotated[bool, typer.Option(
            "--retry-failed", help="Re-send only to recipients that failed before.")] = False,
        resend_uncertain: Annotated[bool, typer.Option(
            "--resend-uncertain", help="Also re-send to recipients whose delivery was cut off mid-way "
            "(may duplicate).")] = False,
        tag: Annotated[list[str] | None, typer.Option(
            "--tag", help="Only rows with this tag (repeatable: any of them).")] = None,
        where: Annotated[str | None, typer.Option(
            "--where", metavar="EXPR",
            help="Only rows matching EXPR, e.g. \"plan == 'paid' and country in ('NO','SE')\".")] = None,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
        offline: Annotated[bool, typer.Option(
            "--offline", help="Do not pull unsubscribes from [unsubscribe] sync_url first.")] = False,
    ) -> None:
        """Send an issue to a subscriber list (or --to yourself, or --dry-run to files)."""
        if not to and list_path is None:
            raise typer.BadParameter("give --list subscribers.csv (or --to ADDRESS for a test send)",
                                     param_hint="--list")
        if no_write and not dry_run:
            raise typer.BadParameter("--no-write only goes with --dry-run", param_hint="--no-write")
        try:
            request = SendRequest(ref=issue, list_path=list_path, to=tuple(to or ()), dry_run=dry_run,
                                  out=out, no_write=no_write, limit=limit, rate=rate, concurrency=concurrency,
                                  smtp=smtp, retry_failed=retry_failed, resend_uncertain=resend_uncertain,
                                  offline=offline, tags=tuple(tag or ()), where=where)
            code = _start(request, yes)
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            code = 130
        if code:
            raise typer.Exit(code)
