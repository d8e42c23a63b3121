"""`gigo-mail send`, once its connections are opening (``cli.send``): show what will happen, ask, send
with a progress bar, summarise.

Exit codes: 0 every listed recipient has the issue; 1 a failure, a stop (one red line
says why), a list that leaves nobody to send to (its rows all skipped, counted per reason;
the dry run and ``subscribers check`` say the same), or anyone left failed or uncertain (the
last lines say how many and the command that resolves them); 130 Ctrl-C (in-flight
messages finish first, the journal is saved, the summary is printed).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from gigo_mail.cli.console import console, err_console, facts_table
from gigo_mail.cli.privacy import warn_tracked_lists
from gigo_mail.compose.compiled import CompiledIssue
from gigo_mail.config import Config, load_config, shown_path
from gigo_mail.errors import ConfirmationRequired
from gigo_mail.lists.reader import OUTSIDE_SEGMENT, SkippedRow, Subscriber
from gigo_mail.send.campaign import Campaign, prepare_send
from gigo_mail.send.engine import Sender, SendResult, SendStats
from gigo_mail.send.request import Early, SendRequest
from gigo_mail.send.selection import ALREADY_SENT, FAILED, NOT_FAILED, UNCERTAIN, SendPlan
from gigo_mail.text import msg_rate, number
from gigo_mail.transport import SmtpUrl


def _header(compiled: CompiledIssue, where: str, extra: Iterable[tuple[str, str]] = ()) -> Table:
    table = facts_table("bold", "", tight=True)
    table.add_row("issue", f"{compiled.issue.key}  {escape(compiled.issue.display_path)}")
    table.add_row("subject", escape(compiled.preview_subject()))
    table.add_row("from", escape(compiled.config.newsletter.from_addr))
    table.add_row("to", escape(where))
    for label, value in extra:
        table.add_row(label, value)
    return table


def _plan_rows(plan: SendPlan) -> list[tuple[str, str]]:
    rows = [("will get it", f"[bold]{number(plan.to_send)}[/]")]
    labels = {ALREADY_SENT: "already have it", UNCERTAIN: "uncertain (use --resend-uncertain)",
              FAILED: "failed before (use --retry-failed)", NOT_FAILED: "not failed before"}
    for reason, label in labels.items():
        if plan.not_selected[reason]:
            rows.append((label, number(plan.not_selected[reason])))
    if plan.beyond_limit:
        rows.append(("beyond --limit", number(plan.beyond_limit)))
    for kind, count in sorted(plan.skipped.items()):
        rows.append((kind if kind == OUTSIDE_SEGMENT else f"skipped: {kind}", number(count)))
    return rows


def _show_skipped(plan: SendPlan, list_path: Path) -> None:
    """The first skipped rows with their line numbers, so a broken row is easy to find."""
    for row in plan.examples:
        console.print(f"[yellow]skipped[/] {escape(str(list_path))}:{row.line}: {escape(row.reason)}")
    more = sum(n for kind, n in plan.skipped.items() if kind != OUTSIDE_SEGMENT) - len(plan.examples)
    if more > 0:
        console.print(f"… and {number(more)} more: gigo-mail subscribers check {escape(str(list_path))}")


def _warn_missing_columns(missing: list[str], list_path: Path) -> None:
    """A template column the list lacks would go out empty: say so before anyone is asked."""
    for column in missing:
        console.print(f"[yellow]warning:[/] the issue uses subscriber.{escape(column)} but "
                      f"{escape(str(list_path))} has no '{escape(column)}' column: it will be empty "
                      f"(or its | default(...))")


def _summary(result: SendResult, dry_run: bool, written: bool = True) -> Table:
    stats = result.stats
    table = Table(title="dry run" if dry_run else "summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    done = ("written" if written else "rendered") if dry_run else "sent"
    table.add_row(done, f"[green]{number(stats.sent)}[/]")
    table.add_row("failed", f"[red]{number(stats.failed)}[/]" if stats.failed else "0")
    uncertain = stats.uncertain + result.abandoned
    if uncertain:
        table.add_row("uncertain (no reply after the final dot)", f"[yellow]{number(uncertain)}[/]")
    if stats.untried:
        table.add_row("not tried (handed back to the queue)", number(stats.untried))
    for reason, count in sorted(stats.not_selected.items()):
        table.add_row(f"not sent: {reason}", number(count))
    for kind, count in sorted(stats.skipped.items()):
        table.add_row(kind if kind == OUTSIDE_SEGMENT else f"skipped: {kind}", number(count))
    if stats.retries:
        table.add_row("retries", number(stats.retries))
    if stats.throttled:
        table.add_row("throttling replies", number(stats.throttled))
    if not dry_run:
        table.add_row("connections", number(stats.connections))
    table.add_row("time", f"{stats.elapsed:.1f} s")
    table.add_row("rate", msg_rate(stats.throughput))
    table.add_row("outcome", result.outcome)
    return table


def _run(sender: Sender, rows: Iterable[Subscriber | SkippedRow],
         loop: asyncio.AbstractEventLoop | None = None) -> tuple[SendResult, bool]:
    """Run the engine (on ``loop``, where its connections opened early, else a new one); the
    first Ctrl-C stops gracefully, a second one quits at once."""
    interrupted = False

    async def main() -> SendResult:
        nonlocal interrupted
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_sigint() -> None:
            nonlocal interrupted
            if interrupted and task is not None:
                task.cancel()
                return
            interrupted = True
            err_console.print("[yellow]stopping:[/] letting messages in flight finish "
                              "(Ctrl-C again to quit now)")
            sender.stop()

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, on_sigint)
            loop.add_signal_handler(signal.SIGTERM, on_sigint)
        try:
            return await sender.run(rows)
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)

    try:
        with asyncio.Runner(loop_factory=None if loop is None else lambda: loop) as runner:
            result = runner.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        err_console.print("[bold red]interrupted:[/] quit without waiting; recipients in flight are "
                          "marked uncertain in the journal")
        raise typer.Exit(130) from None
    return result, interrupted


def _progress_callback(progress: Progress | None, task_id: int | None) -> Callable[[SendStats], None] | None:
    if progress is None or task_id is None:
        return None

    def update(stats: SendStats) -> None:
        limit = stats.rate_limit
        # a rate limit or throttling
        description = "sending" if limit is None else f"sending ≤{msg_rate(limit)}"
        progress.update(task_id, completed=stats.done, sent=number(stats.sent),  # type: ignore[arg-type]
                        failed=number(stats.failed),
                        rate=msg_rate(stats.throughput), description=description)

    return update


def _unresolved(result: SendResult, issue_key: str, list_path: Path) -> None:
    """The last lines of a run that leaves anyone uncertain or failed: how many, and what resolves it."""
    again = f"gigo-mail send {issue_key} --list {shown_path(list_path)}"
    if result.uncertain:
        err_console.print(
            f"[bold yellow]uncertain:[/] {result.uncertain} recipient(s) got the message up to its final "
            "dot but no reply came, so the server may have it; resolve with "
            f"[bold]{escape(again)} --resend-uncertain[/] (the same Message-ID, so most mailboxes keep "
            f"one copy) or, if they have it, [bold]gigo-mail status {issue_key} --accept-uncertain[/]",
            soft_wrap=True)
    if result.failed:
        err_console.print(
            f"[bold red]failed:[/] {result.failed} recipient(s) failed (see [bold]gigo-mail status "
            f"{issue_key}[/]); once the cause is fixed, [bold]{escape(again)} --retry-failed[/] re-sends "
            "them", soft_wrap=True)


def _send(campaign: Campaign) -> int:
    """Run the prepared send with a progress bar, then draw the summary; the exit code."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),  # 1,100/5,000 as everywhere
               TextColumn("[green]{task.fields[sent]} sent[/] [red]{task.fields[failed]} failed[/]"),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    show = console.is_terminal
    progress = Progress(*columns, console=console, transient=False) if show else None
    task_id = (progress.add_task("sending", total=campaign.planned, sent="0", failed="0", rate=msg_rate(0))
               if progress else None)
    sender = campaign.sender(_progress_callback(progress, task_id))
    with progress or contextlib.nullcontext():
        result, interrupted = _run(sender, campaign.rows(), campaign.event_loop())
    console.print(_summary(result, campaign.request.dry_run, not campaign.request.no_write))
    for note in result.stats.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    for failure in result.stats.failures[:10]:
        code = f"{failure.code} " if failure.code else ""
        console.print(f"[red]failed:[/] {escape(failure.email)}: {escape(code + failure.text)}",
                      soft_wrap=True)
    if result.stats.failed > 10:
        console.print(f"... and {result.stats.failed - 10} more: "
                      f"gigo-mail status {campaign.issue_key} --failed failed.csv")
    if result.abandoned:
        err_console.print(f"[yellow]warning:[/] {result.abandoned} message(s) got no answer before the "
                          "drain timeout; they are marked uncertain")
    stopped = interrupted or result.outcome == "interrupted"
    if stopped:
        err_console.print("[yellow]interrupted:[/] progress saved; run the same command again to resume")
    elif result.outcome not in ("complete", "unresolved"):
        err_console.print(f"[bold red]error:[/] {escape(result.reason)}", soft_wrap=True)
    if campaign.request.dry_run:
        done = result.outcome in ("complete", "unresolved") and not result.stats.failed
        return 130 if stopped else 0 if done else 1
    if campaign.request.list_path is not None:
        _unresolved(result, campaign.issue_key, campaign.request.list_path)
    elif result.stats.uncertain or result.abandoned:  # a test send: nothing journaled to resolve
        err_console.print("[bold yellow]uncertain:[/] no reply came after the final dot; check the inbox "
                          "before sending the test again")
    if stopped:
        return 130
    return 0 if result.ok else 1


def _show_plan(campaign: Campaign, where: str, extra: list[tuple[str, str]]) -> SendPlan:
    """What a list send (or its dry run) will do: the same lines for both. After showing them,
    the campaign's refusal: UnclearOptOutError when the list holds opt-out values no rule explains,
    NobodyToSendError when it leaves nobody to mail."""
    plan, list_path = campaign.plan, campaign.request.list_path
    assert plan is not None and list_path is not None
    facts = [("format", escape(campaign.list_format))]
    if where != str(list_path):
        facts.insert(0, ("list", escape(str(list_path))))
    if campaign.segment is not None:
        facts.append(("segment", escape(campaign.segment.describe())))
    console.print(_header(campaign.compiled, where, [*facts, *extra, *_plan_rows(plan)]))
    _show_skipped(plan, list_path)
    _warn_missing_columns(campaign.missing_columns, list_path)
    if (refused := campaign.refusal()) is not None:
        raise refused
    return plan


def _ask_password(url: SmtpUrl) -> str:
    return str(typer.prompt(f"Password for {url.user} at {url.host}", hide_input=True))


def _show_pull(campaign: Campaign) -> None:
    """What the page's suppression list added before the plan (a dry run only looked)."""
    pulled, request = campaign.pulled, campaign.request
    if pulled is not None:
        verb, note = ("read", "; a dry run writes none of them") if request.dry_run else ("pulled", "")
        console.print(f"{verb} {number(pulled.received)} unsubscribes from {escape(pulled.url)} "
                      f"({number(pulled.added)} new{note})")
    if campaign.signups is not None:
        added = campaign.signups.added
        plural = "s" if added != 1 else ""
        console.print(f"took in {number(added)} new reader{plural} who confirmed on the signup page")
    if pulled is None and request.offline and campaign.compiled.config.unsubscribe.sync_url:
        err_console.print("[yellow]offline:[/] unsubscribes made on the page since the last pull are "
                          "not known to this send")


def _warn_before_send(compiled: CompiledIssue, smtp_url: str) -> None:
    """The quick preflight's problems as warnings: a send goes on, but the sender knows. Here, not
    in the `check` command's module, which loads the compiler (a send after `build` does not)."""
    from gigo_mail.check.run import preflight  # the checks (DNS, spam) only for a server

    problems = preflight(compiled, smtp_url)
    for finding in problems:
        err_console.print(f"[yellow]warning:[/] {escape(finding.subject)}: {escape(finding.detail)}",
                          soft_wrap=True)
    if problems:
        err_console.print(f"[yellow]warning:[/] run 'gigo-mail check {compiled.issue.key}' for the full "
                          "preflight", soft_wrap=True)


def command(request: SendRequest, yes: bool, config: Config | None = None, early: Early | None = None) -> int:
    """Prepare the send in the core, show it, ask, run it. ``early``: its connections, opened by
    the command before this module loaded (``cli.send``); else a run that will not ask opens them
    while it compiles and plans."""
    try:
        ask = _ask_password if sys.stdin.isatty() else None
        config = config or load_config(required=True)
        warn_tracked_lists(config, request.list_path)
    except BaseException:
        if early is not None:
            early[2].close()
        raise
    will_not_ask = yes or not sys.stdin.isatty()
    with prepare_send(config, request, ask, open_early=will_not_ask, early=early) as campaign:
        compiled = campaign.compiled
        if campaign.url is not None:
            _warn_before_send(compiled, str(campaign.url))
        if request.dry_run:
            where = "nowhere (render only)" if request.no_write else f"{campaign.folder}/*.eml"
            mode = ("mode", "dry run: no connection, no journal")
            if request.to:
                console.print(_header(compiled, where, [mode]))
                return _send(campaign)
            _show_pull(campaign)
            _show_plan(campaign, where, [mode])
            if campaign.plan is not None and campaign.plan.to_send == 0:
                console.print("nothing to render: every listed subscriber has the issue or is left for later")
                return 0
            return _send(campaign)
        if request.to:
            console.print(_header(compiled, ", ".join(request.to),
                                  [("server", str(campaign.url)), ("mode", "test send, not journaled")]))
            return _send(campaign)
        list_path = request.list_path
        assert list_path is not None
        draft = _draft_note(compiled) if compiled.issue.draft else ""
        if draft and (yes or not sys.stdin.isatty()):
            raise ConfirmationRequired(f"not sending: {draft}")
        _show_pull(campaign)
        plan = _show_plan(campaign, str(list_path), [("server", str(campaign.url))])
        uncertain = plan.not_selected[UNCERTAIN]
        if uncertain and not request.resend_uncertain and not yes and sys.stdin.isatty():
            console.print(f"[yellow]{number(uncertain)} recipient(s) are uncertain:[/] an earlier run sent "
                          "their message up to the final dot and heard no reply, so the server may have it.")
            if typer.confirm(f"Re-send those {number(uncertain)} too (the same Message-ID as their first "
                             "copy)?", default=False):
                campaign.resend_uncertain_too()
                assert campaign.plan is not None
                plan = campaign.plan
                console.print(f"will get it: [bold]{number(plan.to_send)}[/]")
        if plan.to_send == 0:  # an empty list was refused by the core (Campaign.refusal)
            if plan.not_selected[UNCERTAIN] or plan.not_selected[FAILED]:
                console.print("nothing to send in this run")
                _unresolved(SendResult("unresolved", SendStats(not_selected=plan.not_selected)),
                            campaign.issue_key, list_path)
                return 1
            console.print(f"nothing to send: every listed subscriber has issue {campaign.issue_key} "
                          f"(see 'gigo-mail status {campaign.issue_key}')")
            return 0
        if draft:
            console.print(f"[yellow]draft:[/] {escape(draft)}", soft_wrap=True)
        if not yes:
            if not sys.stdin.isatty():
                raise ConfirmationRequired(f"not sending {number(plan.to_send)} messages without "
                                           "confirmation: no terminal to ask on; add --yes")
            question = "Send the draft" if draft else "Send issue"
            typer.confirm(f"{question} {campaign.issue_key} to {number(plan.to_send)} subscribers?",
                          abort=True)
        return _send(campaign)


def _draft_note(compiled: CompiledIssue) -> str:
    """Why a draft is not sent without a yes, and how to un-draft it."""
    return (f"{compiled.issue.display_path} is a draft (draft: true in its front matter); "
            "delete that line, or set draft: false, when it is ready for the list")


def run_send(request: SendRequest, yes: bool) -> int:
    """A send as `gigo-mail send` makes it, for commands that send an issue themselves (the welcome)."""
    return command(request, yes)
