"""`gigo-mail issues`: the issues that exist, and what the journal says was sent of each."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from gigo_mail.cli.console import console, local_time
from gigo_mail.config import load_config, shown_path
from gigo_mail.journal.deliveries import Run
from gigo_mail.send.history import issue_history
from gigo_mail.text import number


def _last_run(run: Run | None) -> str:
    if run is None:
        return "-"
    outcome = run.outcome or "sending now"
    return f"{local_time(run.ended or run.started, seconds=False)} ({outcome})"


def issues() -> None:
    """List the issues: number, date, subject, and what the journal says was sent."""
    root = load_config(required=True).root
    rows = issue_history(root)
    table = Table(box=None, padding=(0, 1), header_style="bold")
    table.add_column("issue", no_wrap=True)
    table.add_column("date", no_wrap=True)
    table.add_column("subject", overflow="fold", ratio=1)
    table.add_column("sent", justify="right", no_wrap=True)
    table.add_column("failed", justify="right", no_wrap=True)
    table.add_column("last run", no_wrap=True)
    for row in rows:
        if row.sent is None:
            table.add_row(row.key, row.date, escape(row.subject), "-", "-", "[dim]not sent[/]")
            continue
        sent_text = number(row.sent) + (f" [yellow](+{number(row.uncertain)} uncertain)[/]" if row.uncertain
                                         else "")
        failed_text = f"[red]{number(row.failed)}[/]" if row.failed else "0"
        table.add_row(row.key, row.date, escape(row.subject), sent_text, failed_text, _last_run(row.last_run))
    if not rows:
        console.print(f"No issues in {escape(shown_path(root / 'issues'))}/ yet; "
                      "create one with: gigo-mail new")
        return
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``issues`` to ``app``."""
    app.command("issues")(issues)
