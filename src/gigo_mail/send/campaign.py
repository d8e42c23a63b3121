"""One send of one issue, set up from the config and the command's options.

``prepare_send`` is the core entry point of ``gigo-mail send``: it compiles the
issue, maps the [smtp] settings and the options to SendOptions, picks the
destination (SMTP, or files for a dry run), opens the journal when the send is
recorded, and counts the plan in one pass over the list. The command shows the
result, asks, and calls ``Campaign.sender`` to run it. Nothing here prints.

A list send and a list dry run count the same plan: the recognised list format, the
rows skipped per reason (opt-outs, unclear opt-out values, outside the ``--tag`` /
``--where`` segment, suppressed), and who is selected.

Which sends touch the journal:

* a list send records every outcome in it (created if needed);
* a dry run reads it, if it exists, to select like the real send would, and writes nothing;
* a test send (``--to``) neither reads nor writes it.

A list send first pulls new suppressions from ``[unsubscribe] sync_url`` (the
one-click page on another machine) into the journal, so the plan skips them; if the
pull fails, the send does not start (SyncError), unless the request is ``offline``.
A list dry run reads them the same way (``sync.peek_suppressions``) but keeps them in
memory, so its plan is the send's and nothing is written.

With ``[signup]`` on, a list send to ``[list] path`` then takes in the readers who confirmed
on the signup page (``signups.pull_signups``), so they are in the plan; a dry run does not
(run ``gigo-mail subscribers pull`` first to see them in it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from gigo_mail.compose.cache import compile_cached
from gigo_mail.compose.compiled import CompiledIssue, build_dir
from gigo_mail.config import Config
from gigo_mail.errors import (
    CompileError,
    NobodyToSendError,
    UnclearOptOutError,
)
from gigo_mail.journal.deliveries import Journal
from gigo_mail.journal.sync import PullResult, peek_suppressions, pull_suppressions
from gigo_mail.lists.formats import unclear_message
from gigo_mail.lists.reader import (
    SkippedRow,
    Subscriber,
    ValidatedAddresses,
    nobody_message,
    read_subscribers,
    sample_subscriber,
)
from gigo_mail.lists.segment import Segment
from gigo_mail.send.early import EarlyConnections
from gigo_mail.send.engine import Sender, SendOptions, SendStats
from gigo_mail.send.message import MessageFactory
from gigo_mail.send.request import Early, SendRequest, endpoint_for
from gigo_mail.send.request import open_early as open_early_connections
from gigo_mail.send.samples import configured_sample, list_sample_fields
from gigo_mail.send.selection import Selector, SendPlan, plan_send
from gigo_mail.send.signups import SignupPull, pull_signups, signups_url
from gigo_mail.transport import FileTransport, SmtpTransport, SmtpUrl, Transport

if TYPE_CHECKING:
    from gigo_mail.send.dkim import DkimSigner


def send_options(config: Config, request: SendRequest, segment: Segment | None = None) -> SendOptions:
    """The [smtp] settings, then the command's options. A dry run writes files one at a
    time and unpaced (nothing is on the wire), with the same attempts and max_errors."""
    smtp = config.smtp
    options = SendOptions.from_settings(
        smtp, concurrency=request.concurrency or smtp.concurrency,
        rate=smtp.rate if request.rate is None else request.rate, limit=request.limit,
        retry_failed=request.retry_failed, resend_uncertain=request.resend_uncertain,
        segment=segment.describe() if segment else "", soft_bounce_limit=config.suppression.soft_bounces)
    return replace(options, concurrency=1, rate=0.0) if request.dry_run else options


def dkim_signer(config: Config) -> DkimSigner | None:
    """The [dkim] signer; cryptography (about 40 ms of imports) is loaded only when it signs."""
    if not config.dkim.enabled:
        return None
    from gigo_mail.send.dkim import signer_for

    return signer_for(config)


@dataclass
class Campaign:
    """A send ready to run: what the command shows, asks about, then runs."""

    request: SendRequest
    compiled: CompiledIssue
    factory: MessageFactory
    options: SendOptions
    make_transport: Callable[[], Transport]
    url: SmtpUrl | None = None  # None for a dry run
    folder: Path | None = None  # a dry run's .eml folder
    journal: Journal | None = None  # read (dry run) or written (list send)
    selector: Selector | None = None
    plan: SendPlan | None = None  # a list send's (or list dry run's) plan, counted before asking
    missing_columns: list[str] = field(default_factory=list)  # the issue reads them, the list lacks them
    pulled: PullResult | None = None  # suppressions pulled from sync_url before the plan
    signups: SignupPull | None = None  # readers pulled from the signup page into the list before the plan
    unsynced: frozenset[str] = frozenset()  # a dry run's: keys the page suppresses, not written here
    segment: Segment | None = None
    list_format: str = ""  # the recognised format of the list, as shown to the user
    # a list send: what the plan pass validated, so the send pass re-validates no plain address
    validated: ValidatedAddresses | None = None
    early: EarlyConnections | None = None  # connections opened while compiling and planning

    @property
    def issue_key(self) -> str:
        return self.compiled.issue.key

    @property
    def records(self) -> bool:
        """Whether this send writes the journal (only a real list send does)."""
        return not self.request.dry_run and not self.request.to

    @property
    def planned(self) -> int | None:
        if self.request.to and not self.request.dry_run:
            return len(self.request.to)
        return self.plan.to_send if self.plan is not None else None

    def suppression_check(self) -> Callable[[str], bool] | None:
        """Who must not be mailed: the journal's list, and what a dry run saw on the page."""
        journal, unsynced = self.journal, self.unsynced
        check = journal.suppression_check() if journal is not None else None  # a set, kept up to date
        if not unsynced:
            return check
        return lambda key: key in unsynced or (check is not None and check(key))

    def rows(self) -> Iterable[Subscriber | SkippedRow]:
        """A fresh stream of the recipients: the list is read again, never held in memory."""
        if self.request.to:
            return test_recipients(self.compiled.config, self.request.to)
        assert self.request.list_path is not None
        suppressed = self.suppression_check()
        settings = self.compiled.config.list_settings
        return read_subscribers(self.request.list_path, suppressed, settings=settings, segment=self.segment,
                                validated=self.validated)

    def resend_uncertain_too(self) -> None:
        """The user said yes to re-sending the uncertain recipients: select and plan again."""
        list_path = self.request.list_path
        assert self.journal is not None and list_path is not None
        self.request = replace(self.request, resend_uncertain=True)
        self.options = replace(self.options, resend_uncertain=True)
        self.selector = Selector(self.journal, self.issue_key, retry_failed=self.request.retry_failed,
                                 resend_uncertain=True)
        _plan(self)

    def refusal(self) -> UnclearOptOutError | NobodyToSendError | None:
        """Why this send must not start though its plan was counted: the list holds opt-out values
        no rule explains, or it leaves nobody to mail at all (every row skipped, or none), said with
        the count per reason (the one place these rules live; the CLI shows the plan, then this)."""
        plan, list_path = self.plan, self.request.list_path
        if plan is None or list_path is None:
            return None
        if plan.unclear:
            return UnclearOptOutError(unclear_message(str(list_path), plan.unclear))
        if plan.nobody:
            return NobodyToSendError(nobody_message(str(list_path), plan.rows, plan.skipped))
        return None

    def sender(self, on_progress: Callable[[SendStats], None] | None = None) -> Sender:
        """The engine for this send; the refusal above stops a program exactly as it stops the command."""
        if (refused := self.refusal()) is not None:
            raise refused
        return Sender(issue_key=self.issue_key, envelope_from=self.factory.envelope_from,
                      build=self.factory.build, transport_factory=self.make_transport, options=self.options,
                      journal=self.journal if self.records else None, on_progress=on_progress,
                      planned=self.planned, selector=self.selector, envelope_for=self.factory.envelope_for,
                      verp_tag=self.factory.verp_tag, early=self.early)

    def event_loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the early connections opened on, for the engine to run on (None: a new one)."""
        return self.early.handoff() if self.early is not None else None

    def close(self) -> None:
        """Close the journal, and the early connections unused if the send never started."""
        try:
            if self.early is not None:
                self.early.close()
        finally:
            if self.journal is not None:
                self.journal.close()

    def __enter__(self) -> Campaign:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def test_recipients(config: Config, to: Iterable[str]) -> list[Subscriber]:
    """--to recipients, filled with the configured list's first sendable row (else sample values),
    so that a test copy shows what a real subscriber gets."""
    row = configured_sample(config)
    if row is None:
        return [sample_subscriber(address) for address in to]
    fields = {k: v for k, v in row.fields.items() if k != "email"}
    return [sample_subscriber(address, row.name, fields=fields) for address in to]


def _plan(campaign: Campaign) -> Campaign:
    """Count the plan of a list send or list dry run in one pass (the list is opened once)."""
    request, config = campaign.request, campaign.compiled.config
    assert request.list_path is not None and campaign.selector is not None
    rows = read_subscribers(request.list_path, campaign.suppression_check(), settings=config.list_settings,
                            segment=campaign.segment, validated=campaign.validated)
    header = rows.header
    if campaign.segment is not None:
        try:
            campaign.segment.check_fields(header.fields, header.open_ended, str(request.list_path),
                                          tagged=bool(header.format.tags_column))
        except BaseException:
            rows.close()
            raise
    campaign.list_format = header.format.label
    if not header.open_ended:
        campaign.missing_columns = sorted(campaign.compiled.required_columns - header.fields)
    campaign.plan = plan_send(rows, campaign.selector, request.limit)
    return campaign


def pulls_signups(config: Config, request: SendRequest) -> bool:
    """A list send to ``[list] path`` with ``[signup]`` on first takes in the confirmed readers
    (``--offline`` skips them only when the page runs elsewhere; a dry run writes nothing)."""
    settings = config.list_settings
    if not (config.signup.enabled and settings.path and request.list_path and not request.dry_run):
        return False
    if request.offline and signups_url(config):
        return False
    return (config.root / settings.path).resolve() == Path(request.list_path).resolve()


def prepare_send(config: Config, request: SendRequest, ask_password: Callable[[SmtpUrl], str] | None = None,
                 *, open_early: bool = False, early: Early | None = None) -> Campaign:
    """Compile, configure and plan one send (see the module docs); close the result when done.
    ``open_early``: the run will not stop to ask, so a list send opens its SMTP connections
    while it compiles and plans (``send.early``); ``early``: the caller opened them already
    (``send.request.open_early``). Either way they are closed unused if it does not start."""
    if early is None and open_early:
        early = open_early_connections(config, request)
    try:
        return _prepare(config, request, ask_password, early)
    except BaseException:
        if early is not None:
            early[2].close()
        raise


def _prepare(config: Config, request: SendRequest, ask_password: Callable[[SmtpUrl], str] | None,
             early: Early | None) -> Campaign:
    compiled = compile_cached(config, request.ref, sample=list_sample_fields(config) if request.to else None)
    if compiled.report.errors:
        raise CompileError(f"issue {compiled.issue.key} has build errors ({compiled.report.errors[0]}); "
                           f"run 'gigo-mail build {compiled.issue.key}' and fix them first")
    config = compiled.config
    segment = Segment.build(request.tags, request.where)
    options = send_options(config, request, segment)
    factory = MessageFactory(compiled, secret=config.secret(), test=bool(request.to),
                             signer=dkim_signer(config))

    if request.dry_run:
        folder = request.out or build_dir(compiled) / "outbox"
        transport = FileTransport(folder, keep=not request.no_write)
        journal = None if request.to else Journal.existing(config.root)
        selector = Selector(journal, compiled.issue.key, retry_failed=request.retry_failed,
                            resend_uncertain=request.resend_uncertain)
        campaign = Campaign(request, compiled, factory, options, lambda: transport, folder=folder,
                            journal=journal, selector=selector, segment=segment)
        if request.to:
            return campaign
        try:
            if config.unsubscribe.sync_url and not request.offline:  # as a send would pull, writing nothing
                campaign.pulled, campaign.unsynced = peek_suppressions(config, journal)
            return _plan(campaign)  # the same plan a real send shows
        except BaseException:
            campaign.close()
            raise

    url, endpoint = early[:2] if early is not None else endpoint_for(config, request, ask_password)

    def make_transport() -> Transport:
        return SmtpTransport(endpoint)

    if request.to:
        return Campaign(request, compiled, factory, options, make_transport, url=url)

    assert request.list_path is not None
    journal = Journal.for_root(config.root)
    try:
        pulled = signups = None
        if config.unsubscribe.sync_url and not request.offline:  # before the plan: it must see them
            pulled = pull_suppressions(config, journal)
        if pulls_signups(config, request):  # after the suppressions: a newer signup may lift one
            signups = pull_signups(config, journal)
    except BaseException:
        journal.close()
        raise
    selector = Selector(journal, compiled.issue.key, retry_failed=request.retry_failed,
                        resend_uncertain=request.resend_uncertain)
    campaign = Campaign(request, compiled, factory, options, make_transport, url=url, journal=journal,
                        selector=selector, segment=segment, pulled=pulled, validated=ValidatedAddresses(),
                        signups=signups, early=early[2] if early is not None else None)
    try:
        return _plan(campaign)
    except BaseException:
        campaign.close()
        raise
