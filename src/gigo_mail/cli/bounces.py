"""`gigo-mail bounces`: read the mailbox where the answers arrive and act on them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gigo_mail.answers.classify import AUTO_REPLY, COMPLAINT, HARD, OTHER, REFUSED, SOFT, UNSUBSCRIBE
from gigo_mail.answers.process import UNATTRIBUTED, AnswersReport, process_answers
from gigo_mail.answers.source import open_source
from gigo_mail.cli.console import console, facts_table
from gigo_mail.config import load_config
from gigo_mail.errors import ConfigError, MailSourceError
from gigo_mail.text import number


def _ask_password(prompt: str) -> str:
    if not sys.stdin.isatty():
        raise MailSourceError("the IMAP source needs a password: set GIGO_IMAP_PASSWORD "
                              "(no terminal to ask on)")
    return str(typer.prompt(prompt, hide_input=True))


def _summary(report: AnswersReport, dry_run: bool) -> Table:
    table = facts_table("bold", "", "dim", right=1)
    verb = "would suppress" if dry_run else "suppressed"
    rows = [(HARD, "hard bounces", verb), (REFUSED, "other refusals", "recorded: the mailbox is not gone"),
            (SOFT, "soft bounces", "counted"), (COMPLAINT, "complaints", verb),
            (UNSUBSCRIBE, "unsubscribes", verb)]
    for kind, label, note in rows:
        if kind == UNSUBSCRIBE and report.count(kind):
            proven = sum(1 for o in report.outcomes if o.kind == UNSUBSCRIBE and o.proof != "From")
            by_from = number(report.count(kind) - proven)
            note = f"{note}: {number(proven)} proven (token or reply), {by_from} by From only"
        table.add_row(label, number(report.count(kind)), note if report.count(kind) else "")
    ignored = report.count(AUTO_REPLY) + report.count(OTHER)
    table.add_row("ignored", number(ignored), f"{report.count(AUTO_REPLY)} auto-replies, "
                  f"{report.count(OTHER)} other mail" if ignored else "")
    table.add_row("unattributed", number(report.count(UNATTRIBUTED)),
                  "tied to no subscriber: left in the mailbox" if report.count(UNATTRIBUTED) else "")
    if report.already:
        table.add_row("already processed", number(report.already), "seen by an earlier run")
    if report.moved:
        table.add_row("moved", number(report.moved), "")
    return table


def _refusals(report: AnswersReport) -> None:
    """What was not believed, and why: one line per reason."""
    if not report.refused and not report.ignored_addresses:
        return
    console.print("[bold]Not believed[/] (no proof of the message they answer; nobody suppressed):")
    for reason, count in report.refused.most_common():
        console.print(f"  {count:>6,}  {escape(reason)}", soft_wrap=True)
    if report.ignored_addresses:
        console.print(f"  {report.ignored_addresses:>6,}  other addresses named in proven answers "
                      "(only the proven reader counts)", soft_wrap=True)


def _details(report: AnswersReport, limit: int) -> None:
    acted = [o for o in report.outcomes if o.kind in (HARD, REFUSED, SOFT, COMPLAINT, UNSUBSCRIBE)]
    if acted:
        table = Table(title="Answers", title_justify="left")
        for name in ("Kind", "Email", "Issue", "Detail"):
            table.add_column(name, overflow="fold")
        for outcome in acted[:limit]:
            repeated = outcome.suppressed and outcome.kind == SOFT
            kind = outcome.kind + (" [dim](suppressed: repeated)[/]" if repeated else "")
            table.add_row(kind, escape(outcome.email), outcome.issue_key, escape(outcome.detail))
        console.print(table)
        if len(acted) > limit:
            console.print(f"... and {number(len(acted) - limit)} more (show more with --limit)")
    for outcome in [o for o in report.outcomes if o.kind == UNATTRIBUTED][:limit]:
        console.print(f"[yellow]unattributed:[/] {escape(outcome.detail)} ({escape(outcome.email)}); "
                      f"from {escape(outcome.sender)}, subject '{escape(outcome.subject)}'", soft_wrap=True)


def bounces(
    imap: Annotated[str | None, typer.Option(
        "--imap", metavar="URL", help="imaps://user@host/INBOX (password: env GIGO_IMAP_PASSWORD or a "
        "prompt).")] = None,
    maildir: Annotated[Path | None, typer.Option("--maildir", metavar="DIR", help="A Maildir folder.")]
    = None,
    mbox: Annotated[Path | None, typer.Option("--mbox", metavar="FILE", help="An mbox file.")] = None,
    json_file: Annotated[Path | None, typer.Option(
        "--json", metavar="FILE", help="A JSON file of notifications (Amazon SES through SNS, Postmark, "
        "Mailgun): one, or a list.")] = None,
    move_to: Annotated[str | None, typer.Option(
        "--move-to", metavar="FOLDER", help="Move processed messages to this folder (else they stay, "
        "remembered by Message-ID).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be done; change nothing.")]
    = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many answers to list.")] = 50,
) -> None:
    """Read bounces, complaints and unsubscribe mails from a mailbox; suppress who must not be mailed."""
    given = [spec for spec in (imap, maildir and f"maildir:{maildir}", mbox and f"mbox:{mbox}",
                               json_file and f"json:{json_file}") if spec]
    if len(given) > 1:
        raise typer.BadParameter("give one of --imap, --maildir, --mbox or --json")
    config = load_config(required=True)
    spec = given[0] if given else config.bounces.source
    if not spec:
        raise ConfigError("no mailbox to read: give --imap, --maildir, --mbox or --json, or set [bounces] "
                          "source in gigo-mail.toml")
    folder = config.bounces.move_to if move_to is None else move_to
    source = open_source(str(spec), _ask_password, config.imap_cafile or None)
    try:
        report = process_answers(config, source, dry_run=dry_run, move_to=folder)
    finally:
        source.close()
    console.print(f"[bold]{'dry run: ' if dry_run else ''}{number(len(report.outcomes) + report.already)} "
                  f"messages[/] in {escape(str(spec))}")
    console.print(_summary(report, dry_run))
    _refusals(report)
    _details(report, limit)
    if dry_run:
        console.print("dry run: nothing was suppressed, remembered or moved")


def register(app: typer.Typer) -> None:
    app.command("bounces")(bounces)
