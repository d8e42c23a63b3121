"""`gigo-mail unsubscribe`: the suppression list (add, remove, import, export, show), a token's
check, and the one-click page (--serve)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gigo_mail.address import check_address
from gigo_mail.cli.console import byte_progress, console, local_time
from gigo_mail.cli.csvout import csv_out
from gigo_mail.config import Config, load_config
from gigo_mail.errors import SubscriberListError
from gigo_mail.journal.deliveries import Journal, Suppression
from gigo_mail.text import number


def unsubscribe(
    emails: Annotated[list[str] | None, typer.Argument(
        metavar="EMAIL", help="Addresses to add to the suppression list.")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", help="Verify an unsubscribe token and suppress its address.")] = None,
    show: Annotated[bool, typer.Option("--list", help="Show the suppression list.")] = False,
    remove: Annotated[bool, typer.Option(
        "--remove", help="Take the EMAILs off the suppression list (they asked to come back).")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with each address).")] = "",
    serve: Annotated[bool, typer.Option(
        "--serve", help="Run the one-click unsubscribe page behind unsubscribe_url (put HTTPS in front).")]
    = False,
    host: Annotated[str, typer.Option("--host", help="With --serve: address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="With --serve: port.")] = 8026,
    from_file: Annotated[Path | None, typer.Option(
        "--from", metavar="FILE", help="Import addresses: one per line, a CSV with an email column, or a "
        "platform export (its opted-out rows).")] = None,
    export: Annotated[Path | None, typer.Option(
        "--export", metavar="FILE", help="Write the suppression list as CSV (email, reason, at; '-' for "
        "stdout).")] = None,
) -> None:
    """Stop mailing addresses: they go on the suppression list, which every send honours."""
    modes = sum((bool(emails), token is not None, show, serve, from_file is not None, export is not None))
    if modes != 1:
        raise typer.BadParameter("give EMAIL addresses, --token TOKEN, --from FILE, --list, --export FILE "
                                 "or --serve (one of them)")
    if remove and not emails:
        raise typer.BadParameter("--remove needs EMAIL addresses")

    config = load_config(required=True)
    if show:
        _show_suppressions(config)
        return
    if export is not None:
        _export_suppressions(config, export)
        return
    if from_file is not None:
        _import_suppressions(config, from_file, reason)
        return
    if serve:
        from gigo_mail.cli.serve import serve_public_page  # the web server only with --serve

        serve_public_page(config, host, port)
        return
    if token is not None:
        from gigo_mail.send.tokens import verifier  # the token's crypto only with --token

        address = verifier(config)(token)
        with Journal.for_root(config.root) as journal:
            added = journal.suppress([address], reason or "unsubscribe link")
        state = "added to the suppression list" if added else "already on the suppression list"
        console.print(f"Token is valid for {escape(address)}: {state}.")
        return
    assert emails
    for email in emails:  # all or nothing: one bad address stops before any change
        try:
            check_address(email)
        except SubscriberListError as exc:
            raise SubscriberListError(f"{exc}; nothing was added") from None
    with Journal.for_root(config.root) as journal:
        if remove:
            count = journal.unsuppress(emails)
            console.print(f"Removed {number(count)} of {number(len(emails))} addresses from the suppression "
                          f"list{'' if count == len(emails) else ' (the others were not on it)'}.")
            return
        count = journal.suppress(emails, reason or "manual")
    already = len(emails) - count
    console.print(f"Added {number(count)} new address{'es' if count != 1 else ''} to the suppression list"
                  f"{f' ({number(already)} already on it)' if already else ''}.")


def _suppressions(config: Config) -> list[Suppression]:
    """The suppression list, read without creating a journal where there is none."""
    journal = Journal.existing(config.root)
    if journal is None:
        return []
    with journal:
        return journal.suppressions()


def _export_suppressions(config: Config, target: Path) -> None:
    rows = _suppressions(config)
    with csv_out(target) as writer:
        writer.writerow(["email", "reason", "at"])
        for row in rows:
            writer.writerow([row.email, row.reason, row.at])
    if str(target) != "-":
        console.print(f"Wrote {number(len(rows))} suppressed addresses to {escape(str(target))}.")


def _import_suppressions(config: Config, path: Path, reason: str) -> None:
    """All or nothing, streamed: every row is checked as it is read and written in one
    transaction that a bad row rolls back; a progress bar shows the bytes read."""
    from gigo_mail.lists.importing import iter_suppressions  # the list formats only with --from

    why = reason or f"imported from {path.name}"
    with byte_progress("importing", path.stat().st_size if path.is_file() else 0) as progress:
        entries = iter_suppressions(path, config.list_settings, progress)
        with Journal.for_root(config.root) as journal:
            added, total = journal.suppress_each((email, f"{kind}: {why}") for email, kind in entries)
    already = total - added
    console.print(f"Added {number(added)} new address{'es' if added != 1 else ''} from {escape(str(path))} "
                  f"to the suppression list{f' ({number(already)} already on it)' if already else ''}.")


def _show_suppressions(config: Config) -> None:
    rows = _suppressions(config)
    if not rows:
        console.print("The suppression list is empty.")
        return
    table = Table(title=f"Suppression list ({number(len(rows))} addresses)", title_justify="left")
    table.add_column("Email", overflow="fold")
    table.add_column("Reason")
    table.add_column("Since")
    for row in rows:
        table.add_row(escape(row.email), escape(row.reason), local_time(row.at))
    console.print(table)



def register(app: typer.Typer) -> None:
    """Add ``unsubscribe`` to ``app``."""
    app.command("unsubscribe")(unsubscribe)
