"""`gigo-mail subscribers`: `check` a list; `pull` the readers who confirmed on the signup page,
print a reader's `consent`, `forget` a reader."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer
from rich.markup import escape
from rich.table import Table

from gigo_mail.cli.console import console, facts_table, local_time
from gigo_mail.config import load_config
from gigo_mail.errors import NobodyToSendError, UnclearOptOutError
from gigo_mail.journal.deliveries import Journal
from gigo_mail.lists.formats import unclear_message
from gigo_mail.text import number

if TYPE_CHECKING:  # the list reader loads for `check` alone
    from gigo_mail.lists.reader import ListReport

subscribers_app = typer.Typer(help="Check subscriber lists.", no_args_is_help=True)


# --- subscribers check ----------------------------------------------------------------------------


def _print_list_report(report: ListReport, limit: int) -> None:
    from gigo_mail.lists.reader import SKIP_KINDS  # the list reader: `check` only

    delimiter = {"\t": "tab"}.get(report.delimiter, f"'{report.delimiter}'")
    console.print(f"[bold]{escape(str(report.path))}[/]: {number(report.rows)} rows, {escape(report.format)} "
                  f"(delimiter {delimiter}; columns: {escape(', '.join(report.columns))})")
    counts = facts_table("bold", "", "dim", right=1)
    note = f"{number(report.needs_smtputf8)} need a server with SMTPUTF8" if report.needs_smtputf8 else ""
    counts.add_row("valid", number(report.valid), note)
    for kind in SKIP_KINDS:
        why = ""
        if kind == "suppressed" and report.suppressed_reasons:
            why = ", ".join(f"{number(n)} {reason}" for reason, n in report.suppressed_reasons.most_common())
        counts.add_row(kind, number(report.skipped_counts.get(kind, 0)), escape(why))
    console.print(counts)
    if not report.skipped:
        return
    table = Table(title="Skipped rows", title_justify="left")
    table.add_column("Line", justify="right")
    table.add_column("Email", overflow="fold")
    table.add_column("Kind")
    table.add_column("Reason", overflow="fold")
    for row in report.skipped[:limit]:
        table.add_row(str(row.line), escape(row.email), row.kind, escape(row.reason))
    console.print(table)
    more = report.skipped_total - min(limit, len(report.skipped))
    if more > 0:
        console.print(f"... and {number(more)} more skipped rows (show more with --limit)")


@subscribers_app.command("check")
def subscribers_check(
    file: Annotated[Path, typer.Argument(help="The subscriber CSV (UTF-8; ',' or ';' delimited).")],
    limit: Annotated[int, typer.Option("--limit", min=0, help="How many skipped rows to list.")] = 50,
) -> None:
    """Read a subscriber list and report what a send would do with each row; sends nothing."""
    from gigo_mail.lists.reader import check_list, nobody_message  # the list reader: `check` only

    config = load_config()
    journal = Journal.existing(config.root)
    try:
        reasons = journal.suppression_reasons() if journal else {}
    finally:
        if journal:
            journal.close()
    try:
        report = check_list(file, reasons.__contains__ if reasons else None, keep=limit,
                            settings=config.list_settings, suppression_reason=reasons.__getitem__)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    _print_list_report(report, limit)
    if report.unclear:
        raise UnclearOptOutError(unclear_message(str(file), report.unclear).replace(
            "; nothing was sent", "; a send would refuse to start"))
    if not report.valid:
        raise NobodyToSendError(nobody_message(str(file), report.rows, report.skipped_counts,
                                               "a send would send nothing"))



# --- the signup page's readers: pull, consent, forget ---------------------------------------------


@subscribers_app.command("pull")
def pull() -> None:
    """Add readers who confirmed on the signup page to [list] path, each once; then send them the
    [signup] welcome issue, if there is one (once each: the journal remembers)."""
    from gigo_mail.send.signups import pull_signups, welcome_list  # the signup store: not for `check`

    config = load_config()
    with Journal.for_root(config.root) as journal:
        result = pull_signups(config, journal)
    where = result.url or "this folder's signup store"
    plural = "s" if result.added != 1 else ""
    console.print(f"Pulled from {escape(where)}: {number(result.added)} new reader{plural} "
                  f"added to {escape(str(result.list_path))}"
                  + (f", {number(result.already)} already there" if result.already else "")
                  + (f", {number(result.rejoined)} rejoined after an unsubscribe" if result.rejoined else "")
                  + (f"; {number(result.kept_suppressed)} stay suppressed (bounce, complaint or erasure)"
                     if result.kept_suppressed else "") + ".")
    welcome = welcome_list(config)
    if config.signup.welcome and welcome.exists():
        from gigo_mail.cli.sending import run_send  # the send engine only when a welcome goes out
        from gigo_mail.send.request import SendRequest

        console.print(f"Welcome issue '{escape(config.signup.welcome)}' for readers who have not had it:")
        code = run_send(SendRequest(ref=config.signup.welcome, list_path=welcome), yes=True)
        if code:
            raise typer.Exit(code)


@subscribers_app.command("consent")
def consent(email: Annotated[str, typer.Argument(help="The reader's address.")]) -> None:
    """Print the proof of a reader's consent: signup and confirmation time, the consent text, the page."""
    from gigo_mail.send.signups import consent_evidence  # the signup store: not for `check`

    config = load_config()
    records = consent_evidence(config, email)
    if not records:
        console.print(f"No consent is recorded here for {escape(email.strip())}: they did not join through "
                      "the signup page, or, when the page runs elsewhere, have not been pulled yet "
                      "('gigo-mail subscribers pull').", soft_wrap=True)
    for record, text in records:
        table = facts_table()
        table.add_row("address", escape(record.email))
        if record.name:
            table.add_row("name", escape(record.name))
        table.add_row("signed up", f"{escape(record.signup_at)} ({local_time(record.signup_at)})")
        table.add_row("confirmed", f"{escape(record.confirmed_at)} ({local_time(record.confirmed_at)})")
        table.add_row("consent text",
                      f"version {escape(record.consent_version)}, sha256 {record.consent_hash}")
        table.add_row("", escape(text))
        table.add_row("form on page", escape(record.page or "(not known)"))
        table.add_row("network", escape(record.ip or "(not kept: [signup] store_ip is off)"))
        table.add_row("source", escape(record.source))
        console.print(table)


@subscribers_app.command("forget")
def forget(
    email: Annotated[str, typer.Argument(help="The reader's address.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask.")] = False,
) -> None:
    """Erase a reader: the list file, the signup store and the journal's personal fields; a hashed
    suppression stays, so an old export cannot bring them back."""
    from gigo_mail.send.erasure import forget_reader  # the list rewriter: `forget` only

    if not yes and not typer.confirm(f"Erase {email} everywhere gigo-mail keeps it?", default=False):
        raise typer.Exit(1)
    config = load_config()
    result = forget_reader(config, email)
    console.print(f"Erased: {result.list_rows} list row{'s' if result.list_rows != 1 else ''}, "
                  f"{result.signup_rows} signup record{'s' if result.signup_rows != 1 else ''}, "
                  f"{result.journal_rows} journal row{'s' if result.journal_rows != 1 else ''}; "
                  "a hashed suppression keeps the address from being mailed again.")
    if config.unsubscribe.sync_url:  # the page runs elsewhere: its store and list are not this folder's
        page = urlsplit(config.unsubscribe.sync_url).netloc
        console.print(f"The page at {escape(page)} keeps its own copy (its signup record, its unsubscribe): "
                      "run `gigo-mail subscribers forget` in the page's folder there too.", soft_wrap=True)




def register(app: typer.Typer) -> None:
    """Add the ``subscribers`` group, with all its commands, to ``app``."""
    app.add_typer(subscribers_app, name="subscribers")
