"""Everyday workflow: `gigo-mail init` (a new newsletter), `new` (the next issue), `issues` (what exists
and what was sent)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gigo_mail.cli.console import console, facts_table, local_time
from gigo_mail.config import CONFIG_NAME, load_config, shown_path
from gigo_mail.text import number

if TYPE_CHECKING:  # the issue reader and the journal load when a command needs them
    from gigo_mail.journal.deliveries import Run


def init(
    folder: Annotated[Path, typer.Argument(help="Where to create the newsletter (new or empty).")],
    name: Annotated[str | None, typer.Option(
        "--name", help="The newsletter's name (default: from the folder name).")] = None,
) -> None:
    """Start a new newsletter: settings, a first issue, a template and sample subscribers."""
    from gigo_mail.compose.scaffold import create_newsletter

    create_newsletter(folder, name)
    where = shown_path(folder)
    console.print(f"Created a newsletter in [bold]{escape(where)}/[/]:")
    listing = facts_table("cyan", "")
    listing.add_row(CONFIG_NAME, "name, From address, postal address, where to send")
    listing.add_row("issues/001.md", "your first issue: Markdown with front matter")
    listing.add_row("templates/default/", "the email layout, yours to change")
    listing.add_row("subscribers.csv", "three sample subscribers on example.org")
    listing.add_row(".gitignore", "keeps lists, .gigo/ (journal, secret, inbox) and build/ out of git")
    console.print(listing)
    console.print("Subscriber lists stay out of git: addresses are personal data, a pushed repository "
                  "would publish them, and its history would keep them after a reader asks to be erased.",
                  soft_wrap=True)
    console.print("\nNext steps:")
    steps = facts_table("bold", "dim")
    steps.add_row(f"cd {escape(where)}", "")
    steps.add_row("gigo-mail build 001", "compile the first issue into build/001/")
    steps.add_row("gigo-mail preview 001", "look at it in a browser")
    steps.add_row("gigo-mail inbox", "in another terminal: a local inbox that catches every message")
    steps.add_row("gigo-mail send 001 --list subscribers.csv", "the real send, into that inbox")
    steps.add_row("gigo-mail new", "start issue 002")
    console.print(steps)
    console.print("Edit the \\[newsletter] values in gigo-mail.toml before sending to real readers.",
                  style="dim")


def new(
    title: Annotated[str | None, typer.Option(
        "--title", help="Title and subject of the issue (edit them in the file later).")] = None,
) -> None:
    """Create the next issue (issues/NNN.md) with its front matter ready to fill in."""
    root = load_config(required=True).root
    from gigo_mail.compose.scaffold import create_issue

    created = create_issue(root, title)
    console.print(f"Created issue {created.number:03d}: [bold]{escape(shown_path(created.path))}[/]")
    what = "preheader" if title else "title, subject and preheader"
    console.print(f"Edit its {what}, then: gigo-mail build {created.number:03d}", style="dim")
    console.print("It is a draft (draft: true): publish leaves it out and a list send asks first; "
                  "delete that line when it is ready.", style="dim")



def _last_run(run: Run | None) -> str:
    if run is None:
        return "-"
    outcome = run.outcome or "sending now"
    return f"{local_time(run.ended or run.started, seconds=False)} ({outcome})"


def issues() -> None:
    """List the issues: number, date, subject, and what the journal says was sent."""
    from gigo_mail.send.history import issue_history

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
    """Add this module's commands to ``app``."""
    app.command("init")(init)
    app.command("new")(new)
    app.command("issues")(issues)
