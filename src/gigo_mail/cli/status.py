"""`gigo-mail status`: what the delivery journal knows about an issue, and the fixes it offers
(--accept-uncertain, --requeue, --failed FILE)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gigo_mail.cli.console import console, facts_table, local_time
from gigo_mail.cli.csvout import csv_out
from gigo_mail.compose.issue import resolve_issue_key
from gigo_mail.config import ANSWERS_NAME, STATE_DIR, load_config
from gigo_mail.errors import JournalError
from gigo_mail.journal.deliveries import Journal, Record, Run
from gigo_mail.text import msg_rate, number


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"



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


def _write_failures(journal: Journal, issue_key: str, target: Path) -> int:
    failures = journal.failures(issue_key)
    with csv_out(target) as writer:
        writer.writerow(["email", "code", "text", "attempts", "updated_at"])
        for record in failures:
            code = "" if record.code is None else record.code
            writer.writerow([record.email, code, record.text, record.attempts, record.updated_at])
    return len(failures)


def _print_common_refusal(failures: list[Record], issue_key: str) -> None:
    """Say how to put recipients back in the queue when their refusal was likely the session's."""
    from gigo_mail.transport.replies import common_refusal  # the reply rules only when some failed

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



def register(app: typer.Typer) -> None:
    """Add ``status`` to ``app``."""
    app.command("status")(status)
