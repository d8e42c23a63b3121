"""The sending engine: a stream of subscribers in, one journaled delivery per recipient out.

Shape of a run::

    CSV stream -> selection (journal) -> bounded queue -> N connection workers -> journal
                                             ^                   |
                                             +-- retry (backoff) -+  (4xx, dropped connection)

* The CSV is never held in memory: at most ``window`` recipients are between the reader
  and a final outcome, retries waiting for their backoff included.
* Each worker owns one persistent connection (a Transport) that carries many messages,
  is reopened when the server drops it and after ``max_per_connection`` messages.
* One RateLimiter paces every connection together and adapts to throttling replies.
* A recipient is marked sent only after the server's 250 for its DATA; "sending" is
  written just before the final dot, so a crash leaves the uncertain ones visible.
* No reply after the final dot (a timeout, a dropped connection) leaves the recipient
  uncertain, never retried: the server may have queued it. When every connection has
  timed out with nothing accepted since, the run stops rather than wait for hours.
* A refusal about the session (MAIL FROM refused, authentication required, relaying
  denied) stops the run and charges no recipient. Until the first message is accepted,
  the refusal breaker holds refusals of unknown scope; the same reply for
  ``refusal_breaker`` different recipients stops the run instead of recording bounces.
* A 4xx about the session (421, a deferred MAIL FROM, "TLS required") or a failed
  reconnect is nobody's soft bounce: the recipient goes back to the queue uncharged and
  the next connection waits a backoff; ``attempts`` of them per connection in a row,
  with nothing accepted, stop the run.
* A recipient re-sent because it was uncertain stays uncertain, with its first
  Message-ID, unless the server accepts the new copy (``_record_unsent``).
* Fatal failures (login refused, TLS failure, unreachable server at the start) raise
  before anyone is tried; mid-run they stop the run with its state saved. An error at
  the end of the run (a full disk) never hides the one that stopped it.
* ``stop()`` (Ctrl-C) stops taking recipients and lets in-flight messages finish,
  for at most ``drain_timeout`` seconds.

The engine never prints: it reports through ``on_progress`` and its SendResult.
"""


from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from gigo_mail.errors import (
    GigoError,
    SMTPConnectFailed,
    SMTPFatalError,
    SMTPPermanentError,
    SMTPSessionRefused,
    SMTPTransientError,
    SMTPUncertainError,
)
from gigo_mail.lists.reader import SkippedRow, Subscriber
from gigo_mail.send.options import BuildMessage, SendOptions, SendResult, SendStats
from gigo_mail.send.outcomes import Outcomes, _Job
from gigo_mail.send.ratelimit import RateLimiter
from gigo_mail.send.selection import FAILED, UNCERTAIN, Selector, select
from gigo_mail.transport import Envelope, Transport
from gigo_mail.transport.replies import THROTTLE_CODES

if TYPE_CHECKING:
    from gigo_mail.journal.deliveries import Journal
    from gigo_mail.send.early import EarlyConnections

PROGRESS_EVERY = 0.1  # seconds between progress callbacks


class Sender(Outcomes):
    """Runs one send of one issue. Create, then ``await run(rows)``; ``stop()`` from a signal."""

    def __init__(self, *, issue_key: str, envelope_from: str,
                 build: BuildMessage,
                 transport_factory: Callable[[], Transport], options: SendOptions | None = None,
                 journal: Journal | None = None, on_progress: Callable[[SendStats], None] | None = None,
                 planned: int | None = None, selector: Selector | None = None,
                 rng: Callable[[], float] = random.random,
                 envelope_for: Callable[[Subscriber], str] | None = None,
                 verp_tag: Callable[[str], int | None] | None = None,
                 early: EarlyConnections | None = None) -> None:
        self.issue_key = issue_key
        self.envelope_from = envelope_from
        self.envelope_for = envelope_for  # per-recipient envelope sender (VERP), else envelope_from
        self.verp_tag = verp_tag  # an envelope sender's lookup tag, kept with its "sending" mark
        self.build = build
        self.transport_factory = transport_factory
        self.early = early  # connections opened before the run, on the loop it runs on
        self._dropping: set[asyncio.Task[None]] = set()  # early connections the plan does not need
        self.options = options or SendOptions()
        self.journal = journal
        self.on_progress = on_progress
        self.rng = rng
        self.selector = selector
        self.stats = SendStats(planned=planned)
        self.limiter = RateLimiter(self.options.rate, floor=self.options.min_rate)
        self._stopping = False
        self._outcome = "complete"
        self._reason = ""
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._window = asyncio.Semaphore(self.options.queue_window)
        self._outstanding = 0
        self._producer_done = False
        self._finished = asyncio.Event()
        self._timers: set[asyncio.TimerHandle] = set()
        self._session_faults = 0  # failed reconnects and 4xx about the session since the last 250, pool-wide
        self._last_progress = 0.0
        self._crash: Exception | None = None
        self._accepted = False  # the server has accepted a message in this run
        self._timed_out: set[int] = set()  # connections that timed out since the last success
        self._held: list[tuple[_Job, SMTPPermanentError]] = []  # refusals before any success
        self._tripped = False  # the refusal breaker stopped the run

    # --- control --------------------------------------------------------------------------------

    def stop(self, reason: str = "interrupted", outcome: str = "interrupted") -> None:
        """Stop taking recipients; in-flight messages finish (Ctrl-C, thresholds, fatal errors)."""
        if not self._stopping:
            self._stopping = True
            self._outcome, self._reason = outcome, reason
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._finished.set()

    # --- the run ----------------------------------------------------------------------------------

    async def run(self, rows: Iterable[Subscriber | SkippedRow]) -> SendResult:
        """Send to every selected row. Raises SMTPFatalError if the first connection fails
        (nothing is sent and the journal is untouched)."""
        early = self.early
        first = early.transports[0] if early is not None else self.transport_factory()
        await (early.first() if early is not None else first.open())  # fatal problems surface here
        self.stats.connections += 1
        self.stats.started = time.monotonic()
        run_id = (self.journal.begin_run(self.issue_key, self.stats.planned, self.options.segment)
                  if self.journal else None)
        if self.journal is not None:  # marks share commits: at most one per message, not two
            self.journal.group_commits(asyncio.get_running_loop())
        selector = self.selector or Selector(self.journal, self.issue_key,
                                             retry_failed=self.options.retry_failed,
                                             resend_uncertain=self.options.resend_uncertain)
        ready = early.rest() if early is not None else []  # the other early connections' opens
        if self.stats.planned is not None and len(ready) >= max(1, self.stats.planned):
            keep = max(0, self.stats.planned - 1)  # no more sessions than readers, as a lazy open gives
            for transport, opened in ready[keep:]:
                self._dropping.add(asyncio.create_task(_close_unused(transport, opened)))
            ready = ready[:keep]
        transports = [first, *(t for t, _ in ready)]
        transports += [self.transport_factory() for _ in range(self.options.concurrency - len(transports))]
        waits: list[Awaitable[bool] | None] = [None, *(w for _, w in ready)]
        workers = [asyncio.create_task(self._worker(t, waits[i] if i < len(waits) else None))
                   for i, t in enumerate(transports)]
        producer = asyncio.create_task(self._produce(rows, selector))
        abandoned = 0
        try:
            await self._finished.wait()
        finally:
            self._stopping = True
            producer.cancel()
            for _ in workers:  # wakes workers waiting for work (a streaming one may still be busy)
                self._queue.put_nowait(None)
            # Idle workers (waiting for work, a rate slot or a reconnect) go at once;
            # busy ones get drain_timeout to hear the server's reply.
            for task in workers:
                if not getattr(task, "gigo_busy", False):
                    task.cancel()
            busy = [w for w in workers if not w.done()]
            if busy:
                _, pending = await asyncio.wait(busy, timeout=self.options.drain_timeout)
                abandoned = sum(1 for w in pending if getattr(w, "gigo_busy", False))
                for task in pending:
                    task.cancel()
            await asyncio.gather(producer, *workers, *self._dropping, return_exceptions=True)
            for note in (note for t in transports for note in getattr(t, "notes", ())):
                if note not in self.stats.notes:
                    self.stats.notes.append(note)
            try:
                self._record_held()
                if self._outcome == "complete" and (self.stats.failed or self.stats.uncertain or abandoned
                                                    or self.stats.not_selected[UNCERTAIN]
                                                    or self.stats.not_selected[FAILED]):
                    self._outcome = "unresolved"
                if self.journal is not None and run_id is not None:
                    self.journal.end_run(run_id, self._outcome)
            except GigoError as exc:  # the disk is full, say: the error that stopped the run stays shown
                self._note_late_error(exc)
            if self.journal is not None:
                try:
                    self.journal.group_commits(None)
                    if run_id is not None:  # a worker stopped while its mark was committed still delivered
                        self.stats.sent = self.journal.delivered_in_run(run_id)
                except GigoError as exc:
                    self._note_late_error(exc)
            self._progress(force=True)
        if self._crash is not None:
            raise self._crash
        return SendResult(self._outcome, self.stats, self._reason, run_id, abandoned)

    def _note_late_error(self, exc: GigoError) -> None:
        """An error while closing the run becomes its reason only if nothing stopped it before."""
        if self._outcome in ("complete", "unresolved"):
            self._outcome, self._reason = "failed", str(exc)

    async def _produce(self, rows: Iterable[Subscriber | SkippedRow], selector: Selector) -> None:
        stats = self.stats

        def skipped(row: SkippedRow) -> None:
            stats.skipped[row.kind] += 1

        def not_selected(reason: str) -> None:
            stats.not_selected[reason] += 1

        for row in select(rows, selector, self.options.limit, skipped=skipped, not_selected=not_selected):
            if self._stopping:
                return
            if row is None:
                await asyncio.sleep(0)  # let workers run while a fast reader streams the list
                continue
            await self._window.acquire()
            if self._stopping:
                return
            self._outstanding += 1
            self._queue.put_nowait(_Job(row, first_id=selector.first_message_id(row.key)))
        self._producer_done = True
        if self._outstanding == 0:
            self._finished.set()

    def _settle(self) -> None:
        """A recipient reached its final outcome in this run."""
        self._outstanding -= 1
        self._window.release()
        if self._producer_done and self._outstanding == 0:
            self._finished.set()
        self._progress()

    async def _worker(self, transport: Transport, opening: Awaitable[bool] | None = None) -> None:
        """One connection's loop. With PIPELINING the next recipient's envelope rides with this
        message's final dot (one round trip per message); with CHUNKING too, up to the
        transport's ``in_flight`` BDAT transactions are on the wire at once. ``opening``: the
        connection's early open (a failed one is opened again, as a dropped one is, when needed)."""
        task = asyncio.current_task()
        job: _Job | None = None  # taken, and paced; perhaps already on the wire ahead
        streamed: set[asyncio.Task[None]] = set()
        try:
            if opening is not None:
                with contextlib.suppress(GigoError, OSError):
                    if await opening:
                        self.stats.connections += 1
            while True:
                if job is None:
                    if self._stopping:
                        break
                    job = await self._queue.get()
                    if job is None or self._stopping:
                        break
                    await self.limiter.acquire()
                    if self._stopping:
                        break
                # streamed transactions count from when they are started, not when they are written
                used = transport.messages + len(streamed)
                reconnect = not transport.is_open or used >= self.options.max_per_connection
                if reconnect:
                    if streamed:  # let the transactions on the wire finish first
                        await asyncio.wait(streamed)
                    if not await self._reopen(transport, job):
                        job = None
                        continue
                if getattr(transport, "streams", False):
                    setattr(task, "gigo_busy", True)  # noqa: B010
                    while len(streamed) >= max(1, getattr(transport, "in_flight", 1)):
                        await asyncio.wait(streamed, return_when=asyncio.FIRST_COMPLETED)
                    child = asyncio.create_task(self._guarded(self._deliver(transport, job)))
                    streamed.add(child)
                    child.add_done_callback(streamed.discard)
                    job = None
                    continue
                following = self._following(transport)
                if following is not None:
                    await self.limiter.acquire()  # unlimited: returns at once, counts the message
                setattr(task, "gigo_busy", True)  # noqa: B010
                try:
                    await self._deliver(transport, job, following)
                finally:
                    setattr(task, "gigo_busy", False)  # noqa: B010
                job = following
        except GigoError as exc:  # the journal cannot be written, or the like: stop, say why
            self.stop(str(exc), "failed")
        except Exception as exc:  # a bug: stop cleanly, then let it surface
            self._crash = exc
            self.stop(f"internal error: {exc!r}", "failed")
        finally:
            try:
                # Stopping, the transactions on the wire get their replies; cancelled (the drain
                # timeout ran out, and that cancel was spent on the await it hit) they wait no more.
                if streamed and not (task is not None and task.cancelling()):
                    await asyncio.wait(streamed)
            finally:
                for child in streamed:
                    child.cancel()  # their recipients stay "sending": uncertain, never sent
                if streamed:
                    await asyncio.wait(streamed)
                with contextlib.suppress(Exception):
                    await asyncio.shield(transport.close())

    async def _guarded(self, delivery: Awaitable[None]) -> None:
        """A streamed delivery runs as its own task: its errors stop the run as the worker's would."""
        try:
            await delivery
        except GigoError as exc:
            self.stop(str(exc), "failed")
        except Exception as exc:
            self._crash = exc
            self.stop(f"internal error: {exc!r}", "failed")

    def _following(self, transport: Transport) -> _Job | None:
        """The recipient whose envelope can go out with this message's final dot: one that is
        waiting now, on a pipelining connection with room, when no rate limit paces starts."""
        if (self._stopping or not getattr(transport, "pipelining", False) or self.limiter.rate is not None
                or transport.messages + 1 >= self.options.max_per_connection):
            return None
        try:
            job = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        if job is None:  # the stop signal: leave it for the loop
            self._queue.put_nowait(None)
        return job

    async def _reopen(self, transport: Transport, job: _Job) -> bool:
        if self._session_faults:  # the last sessions failed: give the server a moment
            await asyncio.sleep(self._backoff(min(self._session_faults, 6)))
            if self._stopping:
                return False
        try:
            await transport.open()
        except SMTPConnectFailed as exc:  # refused, dropped, or a 421 greeting
            self._session_fault(job, exc)
            return False
        except SMTPFatalError as exc:
            self.stop(str(exc), "failed")
            return False
        self.stats.connections += 1
        return True

    def _envelope_of(self, job: _Job | None) -> Envelope | None:
        """The next message's envelope, built now so it can go ahead; None if it cannot."""
        if job is None:
            return None
        if job.message is None:
            try:
                job.message = (self.build(job.subscriber, job.first_id) if job.first_id
                               else self.build(job.subscriber))
            except GigoError:
                return None  # its own delivery records why
        return Envelope(self._sender(job), job.subscriber.smtp_address, job.message.data,
                        job.subscriber.needs_smtputf8)

    def _sender(self, job: _Job) -> str:
        """The job's envelope sender, made once: the envelope sent ahead and the delivery share it."""
        if job.sender is None:
            job.sender = self.envelope_for(job.subscriber) if self.envelope_for else self.envelope_from
        return job.sender

    async def _deliver(self, transport: Transport, job: _Job, following: _Job | None = None) -> None:
        subscriber = job.subscriber
        journal, issue_key = self.journal, self.issue_key
        if job.message is None:
            try:
                job.message = self.build(subscriber, job.first_id) if job.first_id else self.build(subscriber)
            except GigoError as exc:
                self._fail(job, None, f"cannot build the message: {exc}", permanent=True)
                return
        message = job.message
        envelope = self._sender(job)
        before_commit = None
        if journal is not None:
            tag = self.verp_tag(envelope) if self.verp_tag else None

            async def before_commit() -> None:  # "sending" is in the file before the final dot leaves
                journal.mark_sending(issue_key, subscriber.key, subscriber.email, message.message_id, tag)
                await journal.committed()
        try:
            reply = await transport.send(envelope, subscriber.smtp_address, message.data,
                                         smtputf8=subscriber.needs_smtputf8, before_commit=before_commit,
                                         wire=getattr(message, "wire", None),  # prepared by message.py
                                         then=self._envelope_of(following))
        except SMTPSessionRefused as exc:  # about the session: nobody is charged, the run stops
            self._release(job, exc.code, exc.text)
            self.stop(str(exc), "failed")
            return
        except SMTPUncertainError as exc:  # after the final dot: never retried
            if journal is not None:
                journal.mark_uncertain(issue_key, subscriber.key, subscriber.email, exc.text)
            self.stats.uncertain += 1
            self._settle()
            self._note_timeout(transport, exc)
            return
        except SMTPPermanentError as exc:
            self._refused(job, exc)
            return
        except SMTPTransientError as exc:
            self._note_timeout(transport, exc)
            if exc.code in THROTTLE_CODES:
                self.stats.throttled += 1
                self.limiter.on_throttle()
                self.stats.rate_limit = self.limiter.rate
            text = exc.text or str(exc)
            if exc.about_session:  # not this recipient's: a new connection, uncharged
                await transport.close()
                self._record_unsent(job, exc.code, text, failed=False)  # not "sending" any more
                self._session_fault(job, exc)
                return
            job.tries += 1
            if job.tries >= self.options.attempts:
                self._fail(job, exc.code, f"{text} (gave up after {job.tries} tries)", permanent=False)
            else:
                self._record_unsent(job, exc.code, text, failed=True)  # not "sending" any more
                self._retry_later(job, exc.code, text)
            return
        if journal is None:
            self._delivered(None)
            return
        journal.mark_sent(issue_key, subscriber.key, subscriber.email, message.message_id,
                          reply.code, reply.text)
        # Counted sent once the file says so (a full disk: it stays uncertain). Not awaited: the
        # next message's "sending" mark joins the same commit, and its final dot waits for it.
        journal.when_committed(self._delivered)

    def _progress(self, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        if force or now - self._last_progress >= PROGRESS_EVERY:
            self._last_progress = now
            self.on_progress(self.stats)


async def _close_unused(transport: Transport, opened: Awaitable[bool]) -> None:
    """An early connection the run does not need (fewer readers than connections): QUIT once open."""
    with contextlib.suppress(Exception):
        if await opened:
            await transport.close()
