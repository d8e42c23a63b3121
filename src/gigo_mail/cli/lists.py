"""CLI for lists: `subscribers check`, `status`, and `unsubscribe` (the suppression list)."""

from __future__ import annotations

import contextlib
import csv
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from gigo_mail.cli.console import byte_progress, console, facts_table, local_time
from gigo_mail.config import ANSWERS_NAME, STATE_DIR, Config, load_config
from gigo_mail.errors import (
    GigoError,
    JournalError,
    NobodyToSendError,
    SubscriberListError,
    UnclearOptOutError,
)
from gigo_mail.text import msg_rate, number

if TYPE_CHECKING:  # the journal and the list reader load when a command runs, not for --help
    from gigo_mail.journal.deliveries import Journal, Record, Run, Suppression
    from gigo_mail.lists.reader import ListReport

subscribers_app = typer.Typer(help="Check subscriber lists.", no_args_is_help=True)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


# --- subscribers check ----------------------------------------------------------------------------


def _print_list_report(report: ListReport, limit: int) -> None:
    from gigo_mail.lists.reader import SKIP_KINDS

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
    from gigo_mail.journal.deliveries import Journal
    from gigo_mail.lists.formats import unclear_message
    from gigo_mail.lists.reader import check_list, nobody_message

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


# --- status ---------------------------------------------------------------------------------------


def _runs_table(runs: list[Run]) -> Table:
    table = Table(title="Runs", title_justify="left")
    segments = any(run.segment for run in runs)
    for name, justify in (("#", "right"), ("Started", "left"), ("Ended", "left"), ("Outcome", "left"),
                          ("Duration", "right"), ("Sent", "right"), ("Failed", "right"),
                          ("Rate", "right")) + ((("Segment", "left"),) if segments else ()):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for run in runs:
        running = run.outcome is None
        rate = run.rate
        table.add_row(str(run.id), local_time(run.started), "running" if running else local_time(run.ended),
                      run.outcome or "[yellow]running[/]", _duration(run.duration),
                      number(run.counts.get('sent', 0)), number(run.counts.get('failed', 0)),
                      msg_rate(rate) if rate else "-",
                      *((escape(run.segment) or "whole list",) if segments else ()))
    return table


@contextlib.contextmanager
def _csv_out(target: Path) -> Iterator[Any]:
    """A CSV writer on ``target`` ("-" is stdout, left open); a file that cannot be opened is one line."""
    if str(target) == "-":
        yield csv.writer(sys.stdout)
        return
    try:
        handle = target.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise GigoError(f"cannot write {target}: {exc.strerror}") from None
    with handle:
        yield csv.writer(handle)


def _write_failures(journal: Journal, issue_key: str, target: Path) -> int:
    failures = journal.failures(issue_key)
    with _csv_out(target) as writer:
        writer.writerow(["email", "code", "text", "attempts", "updated_at"])
        for record in failures:
            code = "" if record.code is None else record.code
            writer.writerow([record.email, code, record.text, record.attempts, record.updated_at])
    return len(failures)


def _print_common_refusal(failures: list[Record], issue_key: str) -> None:
    """Say how to put recipients back in the queue when their refusal was likely the session's."""
    from gigo_mail.transport.replies import common_refusal

    found = common_refusal([(r.code or 0, r.text) if r.permanent else (0, "") for r in failures])
    if found is not None:
        reply, count = found
        code = reply.split(" ")[-1]
        console.print(f"{number(count)} recipients failed with {escape(reply)}. If that was about the "
                      "session (login, relaying) rather than them: "
                      f"[bold]gigo-mail status {escape(issue_key)} --requeue {escape(code)}[/] returns them "
                      "to the queue.")


def _answer_rows(root: Path, issue_key: str, sent: int, table: Table, soft_limit: int
                 ) -> list[tuple[str, str, str]]:
    """Bounces, complaints (with the rate against Gmail's line) and unsubscribes by mail."""
    if not (root / STATE_DIR / ANSWERS_NAME).is_file():
        return []  # `bounces` never ran: the answer reader (and the transport it pulls in) stays unloaded
    from gigo_mail.answers.classify import COMPLAINT, HARD, REFUSED, SOFT, UNSUBSCRIBE
    from gigo_mail.answers.process import (  # the bounce reader only here
        GMAIL_SPAM_LINE,
        answer_counts,
        complaint_rate,
    )

    with answer_counts(root) as store:
        if store is None:
            return []
        counts, answers = store.counts(issue_key), store.for_issue(issue_key)
    table.add_row("hard bounces", number(counts[HARD]), "suppressed" if counts[HARD] else "")
    if counts[REFUSED]:
        table.add_row("other refusals", number(counts[REFUSED]),
                      "permanent, mailbox not gone: not suppressed")
    table.add_row("soft bounces", number(counts[SOFT]),
                  f"counted; suppressed after {soft_limit} issues in a row" if counts[SOFT] else "")
    rate = complaint_rate(counts[COMPLAINT], sent)
    line = f"Gmail's line is {GMAIL_SPAM_LINE:.1%}"
    note = "" if rate is None else (f"[bold red]{rate:.2%} of sent: over {line}[/]" if rate >= GMAIL_SPAM_LINE
                                    else f"{rate:.2%} of sent ({line})")
    table.add_row("complaints", number(counts[COMPLAINT]), note)
    table.add_row("unsubscribed by mail", number(counts[UNSUBSCRIBE]), "")
    return answers


def _print_status(root: Path, journal: Journal, issue_key: str, shown: int, soft_limit: int) -> None:
    counts = journal.counts(issue_key)
    runs = journal.runs(issue_key)
    failures = journal.failures(issue_key)
    permanent = sum(1 for record in failures if record.permanent)
    recorded = sum(counts.values())
    console.print(f"[bold]Issue {escape(issue_key)}[/]: {number(recorded)} recipients "
                  f"in {escape(str(journal.path))}")
    table = facts_table("bold", "", "dim", right=1)
    table.add_row("sent", number(counts['sent']), "skipped by every later run")
    transient = len(failures) - permanent
    table.add_row("failed", number(counts['failed']),
                  f"{number(permanent)} permanent (re-sent only with --retry-failed), "
                  f"{number(transient)} transient (re-sent by the next run)" if failures else "")
    table.add_row("uncertain", number(counts['sending']),
                  "no reply came after the final dot; they may have it (--accept-uncertain, "
                  "or send --resend-uncertain)"
                  if counts["sending"] else "")
    table.add_row("pending", number(counts['pending']), "")
    answers = _answer_rows(root, issue_key, counts["sent"], table, soft_limit)
    last_total = runs[-1].total if runs else None
    if last_total is not None and last_total > recorded:
        table.add_row("not tried", number(last_total - recorded),
                      f"of {number(last_total)} in the last run's list")
    console.print(table)
    if failures:
        failed = Table(title="Failures", title_justify="left")
        for name in ("Email", "Code", "Reply", "Attempts", "When"):
            failed.add_column(name, overflow="fold")
        for record in failures[:shown]:
            kind = "" if record.permanent else " [dim](transient)[/]"
            failed.add_row(escape(record.email), "-" if record.code is None else str(record.code),
                           escape(record.text) + kind, str(record.attempts), local_time(record.updated_at))
        console.print(failed)
        if len(failures) > shown:
            console.print(f"... and {number(len(failures) - shown)} more failures "
                          "(write them all with --failed FILE)")
        _print_common_refusal(failures, issue_key)
    if answers:
        answered = Table(title="Answers (from gigo-mail bounces)", title_justify="left")
        for name in ("Kind", "Email", "Detail"):
            answered.add_column(name, overflow="fold")
        for kind, email, detail in answers[:shown]:
            answered.add_row(kind, escape(email), escape(detail))
        console.print(answered)
        if len(answers) > shown:
            console.print(f"... and {number(len(answers) - shown)} more answers")
    uncertain = journal.uncertain(issue_key, limit=shown + 1)
    if uncertain:
        listing = ", ".join(escape(record.email) for record in uncertain[:shown])
        extra = " ..." if len(uncertain) > shown else ""
        console.print(f"Uncertain (not re-sent unless you ask for it): {listing}{extra}")
    if runs:
        console.print(_runs_table(runs))


def status(
    issue: Annotated[str, typer.Argument(help="The issue: 011, 11, or its path.")],
    failed: Annotated[Path | None, typer.Option(
        "--failed", metavar="FILE", help="Write every failure to FILE as CSV ('-' for stdout).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many failures to list.")] = 20,
    accept_uncertain: Annotated[bool, typer.Option(
        "--accept-uncertain", help="Record the uncertain recipients as delivered (they have it).")] = False,
    requeue: Annotated[str | None, typer.Option(
        "--requeue", metavar="CODE", help="Return recipients that failed with CODE (554, or 5.7.1) to the "
        "queue: a refusal that was about the session, not them. The next send sends them.")] = None,
) -> None:
    """What the delivery journal knows about an issue: counts, failures and runs."""
    if requeue is not None and not re.fullmatch(r"[245]\d\d|[245]\.\d{1,3}\.\d{1,3}", requeue):
        raise typer.BadParameter("give a reply code like 554 or an enhanced status like 5.7.1",
                                 param_hint="--requeue")
    from gigo_mail.compose.issue import resolve_issue_key  # the issue reader (YAML) only for this command
    from gigo_mail.journal.deliveries import Journal

    config = load_config(required=True)
    journal = Journal.existing(config.root)
    try:
        issue_key = resolve_issue_key(config.root, issue, journal.issue_keys() if journal else ())
        if journal is None or issue_key not in journal.issue_keys():
            console.print(f"Nothing has been sent for issue {escape(issue_key)} yet "
                          f"(no deliveries in {escape(str(config.journal_path))}).")
            if failed is not None and str(failed) != "-":
                raise JournalError(f"no failures to write to {failed}: issue {issue_key} has no deliveries")
            return
        if accept_uncertain:
            accepted = journal.accept_uncertain(issue_key)
            console.print(f"Recorded {number(accepted)} uncertain recipient{'s' if accepted != 1 else ''} "
                          "as delivered.")
        if requeue is not None:
            returned = journal.requeue_failed(issue_key, requeue)
            console.print(f"Returned {number(returned)} recipient{'s' if returned != 1 else ''} that failed "
                          f"with {escape(requeue)} to the queue; the next send of {escape(issue_key)} "
                          "sends them.")
        if failed is not None:
            written = _write_failures(journal, issue_key, failed)
            if str(failed) == "-":
                return
            console.print(f"Wrote {number(written)} failures to {escape(str(failed))}")
        _print_status(config.root, journal, issue_key, limit, config.suppression.soft_bounces)
    finally:
        if journal is not None:
            journal.close()


# --- unsubscribe ----------------------------------------------------------------------------------


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
    from gigo_mail.address import check_address
    from gigo_mail.journal.deliveries import Journal
    from gigo_mail.send.tokens import verifier

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
        from gigo_mail.cli.signup import serve_public_page

        serve_public_page(config, host, port)
        return
    if token is not None:
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
    from gigo_mail.journal.deliveries import Journal

    journal = Journal.existing(config.root)
    if journal is None:
        return []
    with journal:
        return journal.suppressions()


def _export_suppressions(config: Config, target: Path) -> None:
    rows = _suppressions(config)
    with _csv_out(target) as writer:
        writer.writerow(["email", "reason", "at"])
        for row in rows:
            writer.writerow([row.email, row.reason, row.at])
    if str(target) != "-":
        console.print(f"Wrote {number(len(rows))} suppressed addresses to {escape(str(target))}.")


def _import_suppressions(config: Config, path: Path, reason: str) -> None:
    """All or nothing, streamed: every row is checked as it is read and written in one
    transaction that a bad row rolls back; a progress bar shows the bytes read."""
    from gigo_mail.journal.deliveries import Journal
    from gigo_mail.lists.importing import iter_suppressions

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
    """Add this module's commands to ``app``."""
    from gigo_mail.cli import signup  # the signup page's commands join the `subscribers` group

    for name in ("pull", "consent", "forget"):
        subscribers_app.command(name)(getattr(signup, name))
    app.add_typer(subscribers_app, name="subscribers")
    app.command("status")(status)
    app.command("unsubscribe")(unsubscribe)
