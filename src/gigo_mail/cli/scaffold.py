"""Starting out: `gigo-mail init` (a new newsletter) and `new` (the next issue)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from gigo_mail.cli.console import console, facts_table
from gigo_mail.compose.scaffold import create_issue, create_newsletter
from gigo_mail.config import CONFIG_NAME, load_config, shown_path


def init(
    folder: Annotated[Path, typer.Argument(help="Where to create the newsletter (new or empty).")],
    name: Annotated[str | None, typer.Option(
        "--name", help="The newsletter's name (default: from the folder name).")] = None,
) -> None:
    """Start a new newsletter: settings, a first issue, a template and sample subscribers."""
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
    created = create_issue(root, title)
    console.print(f"Created issue {created.number:03d}: [bold]{escape(shown_path(created.path))}[/]")
    what = "preheader" if title else "title, subject and preheader"
    console.print(f"Edit its {what}, then: gigo-mail build {created.number:03d}", style="dim")
    console.print("It is a draft (draft: true): publish leaves it out and a list send asks first; "
                  "delete that line when it is ready.", style="dim")


def register(app: typer.Typer) -> None:
    """Add ``init`` and ``new`` to ``app``."""
    app.command("init")(init)
    app.command("new")(new)
