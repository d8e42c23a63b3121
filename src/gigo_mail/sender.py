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
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .bounces import hard_bounce_reason
from .config import Smtp
from .errors import (
    GigoError,
    SMTPConnectFailed,
    SMTPFatalError,
    SMTPPermanentError,
    SMTPSessionRefused,
    SMTPTransientError,
    SMTPUncertainError,
)
from .ratelimit import RateLimiter
from .selection import FAILED, UNCERTAIN, Selector
from .subscribers import SkippedRow, Subscriber
from .transport import THROTTLE_CODES, Envelope, Transport

if TYPE_CHECKING:
    from .journal import Journal

PROGRESS_EVERY = 0.1  # seconds between progress callbacks
KEEP_FAILURES = 200  # failures kept in the result for the summary; the journal has them all


class BuildMessage(Protocol):
    """MessageFactory.build: ``message_id`` reuses the id of a first, uncertain attempt."""

    def __call__(self, subscriber: Subscriber, message_id: str | None = None) -> BuiltMessageLike: ...


class BuiltMessageLike(Protocol):
    """What MessageFactory.build returns (message.BuiltMessage)."""

    @property
    def message_id(self) -> str: ...

    @property
    def data(self) -> bytes: ...


@dataclass(frozen=True)
class SendOptions:
    """How fast and how stubbornly to send. The first five default to ``config.Smtp``'s
    (the [smtp] settings of gigo-mail.toml), the one place those defaults are written."""

    concurrency: int = Smtp.concurrency
    rate: float = Smtp.rate  # messages per second across all connections; 0 = unlimited
    max_per_connection: int = Smtp.max_per_connection
    attempts: int = Smtp.attempts  # tries per recipient for transient failures
    max_errors: int = Smtp.max_errors  # stop the run after this many failed recipients
    limit: int | None = None  # send to at most this many recipients in this run
    retry_failed: bool = False
    resend_uncertain: bool = False
    backoff: float = 1.0  # first retry delay in seconds; doubles per try, with jitter
    backoff_max: float = 60.0
    drain_timeout: float = 10.0
    min_rate: float = 1.0  # throttling never slows the run below this (messages per second)
    window: int = 0  # recipients between reader and outcome; 0 = 32 per connection
    refusal_breaker: int = Smtp.refusal_breaker  # the same refusal for this many before any success: stop
    segment: str = ""  # the list's segment (recorded with the run)
    soft_bounce_limit: int = 3  # issues in a row with a transient failure before an address is suppressed

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.max_per_connection < 1:
            raise ValueError("max_per_connection must be at least 1")

    @classmethod
    def from_settings(cls, smtp: Smtp, **overrides: Any) -> SendOptions:
        """The [smtp] settings of gigo-mail.toml, then the command's ``overrides``."""
        values = {"concurrency": smtp.concurrency, "rate": smtp.rate,
                  "max_per_connection": smtp.max_per_connection, "attempts": smtp.attempts,
                  "max_errors": smtp.max_errors, "refusal_breaker": smtp.refusal_breaker}
        return cls(**(values | overrides))

    @property
    def queue_window(self) -> int:
        return self.window or 32 * self.concurrency


@dataclass(frozen=True, slots=True)
class Failure:
    email: str
    code: int | None
    text: str
    permanent: bool


@dataclass
class SendStats:
    """Live counters; ``on_progress`` receives this object."""

    planned: int | None = None
    sent: int = 0
    failed: int = 0
    uncertain: int = 0  # the final dot went out, no reply came: may or may not have it
    untried: int = 0  # handed back to the queue (a refusal about the session, not them)
    retries: int = 0
    throttled: int = 0
    connections: int = 0
    errors: int = 0
    not_selected: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    rate_limit: float | None = None  # the limiter's current rate (None = unlimited)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def done(self) -> int:
        return self.sent + self.failed

    @property
    def throughput(self) -> float:
        elapsed = self.elapsed
        return self.sent / elapsed if elapsed > 0 else 0.0


@dataclass
class SendResult:
    """``outcome``: "complete" (every listed recipient has it), "unresolved" (the list was
    done, but some recipients failed or are uncertain, in this run or before), "interrupted",
    "stopped" (error threshold) or "failed" (fatal)."""

    outcome: str
    stats: SendStats
    reason: str = ""  # one line: why the run stopped early
    run_id: int | None = None
    abandoned: int = 0  # in flight when the drain timeout hit: may or may not have gone out

    @property
    def uncertain(self) -> int:
        """Listed recipients whose delivery is unknown: cut off in this run or an earlier one."""
        return self.stats.uncertain + self.abandoned + self.stats.not_selected[UNCERTAIN]

    @property
    def failed(self) -> int:
        """Listed recipients that failed: in this run, or permanently before (and skipped)."""
        return self.stats.failed + self.stats.not_selected[FAILED]

    @property
    def ok(self) -> bool:
        return self.outcome == "complete"


@dataclass(slots=True)
class _Job:
    subscriber: Subscriber
    tries: int = 0
    message: BuiltMessageLike | None = None
    first_id: str | None = None  # re-sending an uncertain recipient: its first Message-ID


_ANGLED = re.compile(r"<[^>]*>")


def _refusal_signature(code: int | None, text: str, email: str) -> tuple[int | None, str]:
    """A reply with the recipient taken out, to see that different recipients got the same."""
    return code, _ANGLED.sub("<>", text).replace(email, "")


class Sender:
    """Runs one send of one issue. Create, then ``await run(rows)``; ``stop()`` from a signal."""

    def __init__(self, *, issue_key: str, envelope_from: str,
                 build: BuildMessage,
                 transport_factory: Callable[[], Transport], options: SendOptions | None = None,
                 journal: Journal | None = None, on_progress: Callable[[SendStats], None] | None = None,
                 planned: int | None = None, selector: Selector | None = None,
                 rng: Callable[[], float] = random.random,
                 envelope_for: Callable[[Subscriber], str] | None = None) -> None:
        self.issue_key = issue_key
        self.envelope_from = envelope_from
        self.envelope_for = envelope_for  # per-recipient envelope sender (VERP), else envelope_from
        self.build = build
        self.transport_factory = transport_factory
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
        first = self.transport_factory()
        await first.open()  # fatal problems surface here, before anyone is tried
        self.stats.connections += 1
        self.stats.started = time.monotonic()
        run_id = (self.journal.begin_run(self.issue_key, self.stats.planned, self.options.segment)
                  if self.journal else None)
        if self.journal is not None:  # one commit per event-loop turn, not two per message
            self.journal.group_commits(asyncio.get_running_loop())
        selector = self.selector or Selector(self.journal, self.issue_key,
                                             retry_failed=self.options.retry_failed,
                                             resend_uncertain=self.options.resend_uncertain)
        transports = [first] + [self.transport_factory() for _ in range(self.options.concurrency - 1)]
        workers = [asyncio.create_task(self._worker(t)) for t in transports]
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
            await asyncio.gather(producer, *workers, return_exceptions=True)
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
        limit = self.options.limit
        queued = 0
        for index, row in enumerate(rows):
            if self._stopping:
                return
            if index % 512 == 511:
                await asyncio.sleep(0)  # let workers run while a fast reader streams the list
            if isinstance(row, SkippedRow):
                self.stats.skipped[row.kind] += 1
                continue
            reason = selector.reason_to_skip(row.key)
            if reason is not None:
                self.stats.not_selected[reason] += 1
                continue
            if limit is not None and queued >= limit:
                break
            await self._window.acquire()
            if self._stopping:
                return
            self._outstanding += 1
            queued += 1
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

    async def _worker(self, transport: Transport) -> None:
        """One connection's loop. With PIPELINING the next recipient's envelope rides with this
        message's final dot (one round trip per message); with CHUNKING too, up to the
        transport's ``in_flight`` BDAT transactions are on the wire at once."""
        task = asyncio.current_task()
        job: _Job | None = None  # taken, and paced; perhaps already on the wire ahead
        streamed: set[asyncio.Task[None]] = set()
        try:
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
                if streamed:
                    await asyncio.wait(streamed)
            finally:
                for child in streamed:
                    child.cancel()
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

    def _session_fault(self, job: _Job, exc: SMTPConnectFailed | SMTPTransientError) -> None:
        """Trouble with the session, not with this recipient: a failed reconnect, or a 4xx about
        the session. The recipient goes back to the queue without being charged a try, and the
        next connection waits a backoff; ``attempts`` faults per connection in a row, with
        nothing accepted since, stop the run."""
        self._session_faults += 1
        if self._session_faults >= self.options.attempts * self.options.concurrency:
            self.stop(f"{exc} ({self._session_faults} times in a row, on new connections, with nothing "
                      "accepted since); no recipient was charged for it; run the same command again "
                      "to resume", "failed")
            return
        self._retry_later(job, getattr(exc, "code", None), str(exc))


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
        sender = self.envelope_for(job.subscriber) if self.envelope_for else self.envelope_from
        return Envelope(sender, job.subscriber.smtp_address, job.message.data, job.subscriber.needs_smtputf8)

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
        before_commit = None
        if journal is not None:
            async def before_commit() -> None:  # "sending" is in the file before the final dot leaves
                journal.mark_sending(issue_key, subscriber.key, subscriber.email, message.message_id)
                await journal.committed()
        try:
            envelope = self.envelope_for(subscriber) if self.envelope_for else self.envelope_from
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
        if journal is not None:
            journal.mark_sent(issue_key, subscriber.key, subscriber.email, message.message_id,
                              reply.code, reply.text)
            await journal.committed()  # counted sent once the file says so (a full disk: it stays uncertain)
        self.stats.sent += 1
        self._timed_out.clear()
        self._session_faults = 0
        if not self._accepted:
            self._accepted = True
            self._record_held()
        self.limiter.on_success()
        self.stats.rate_limit = self.limiter.rate
        self._settle()

    def _note_timeout(self, transport: Transport, exc: SMTPTransientError | SMTPUncertainError) -> None:
        """Every connection timed out with nothing accepted since: the server is stuck."""
        if not exc.timed_out:
            return
        self._timed_out.add(id(transport))
        if len(self._timed_out) >= self.options.concurrency and not self._stopping:
            self.stop(f"{exc}; every connection ({len(self._timed_out)}) timed out with nothing accepted "
                      "since, so the run stopped; recipients not tried yet are left for the next run",
                      "failed")

    def _refused(self, job: _Job, exc: SMTPPermanentError) -> None:
        """A 5xx. About the recipient (X.1.x, X.2.x), or once the server has accepted mail:
        recorded. Before that, the refusal breaker holds it: the same reply for
        ``refusal_breaker`` different recipients is about the session, not about them."""
        limit = self.options.refusal_breaker
        text = exc.text or str(exc)
        if self._tripped:  # in flight when the breaker tripped
            self._release(job, exc.code, text)
            return
        if exc.about_recipient or self._accepted or limit <= 0:
            self._fail(job, exc.code, text, permanent=True)
            return
        signature = _refusal_signature(exc.code, text, job.subscriber.email)
        if self._held and _refusal_signature(self._held[0][1].code, self._held[0][1].text,
                                             self._held[0][0].subscriber.email) != signature:
            self._record_held()  # different replies for different recipients: about them
            self._fail(job, exc.code, text, permanent=True)
            return
        self._held.append((job, exc))
        self._settle()
        if len(self._held) >= limit:
            self._tripped = True
            held, self._held = self._held, []
            for held_job, held_exc in held:
                self._release(held_job, held_exc.code, held_exc.text, settle=False)
            code = f"{exc.code} " if exc.code else ""
            self.stop(f"the first {len(held)} recipients were all refused with the same reply "
                      f"({code}{text}) and nothing has been accepted yet: that is about the session "
                      "(login, relay permission, sender address), not the recipients, so none was "
                      "recorded as failed; fix the cause and run again (if they really are bad "
                      "addresses, set refusal_breaker = 0 under [smtp] for one run)", "failed")

    def _record_held(self) -> None:
        """The breaker did not trip: the held refusals are real failures after all."""
        held, self._held = self._held, []
        for job, exc in held:
            self._fail(job, exc.code, exc.text or str(exc), permanent=True, settle=False)

    def _release(self, job: _Job, code: int | None, text: str, *, settle: bool = True) -> None:
        """Back to the queue for the next run: the refusal was not about this recipient."""
        if self._record_unsent(job, code, text, failed=False):
            self.stats.uncertain += 1
        else:
            self.stats.untried += 1
        if settle:
            self._settle()

    def _record_unsent(self, job: _Job, code: int | None, text: str, *, failed: bool,
                       permanent: bool = False) -> bool:
        """Journal a recipient this attempt did not deliver: ``failed`` (``permanent`` or not), or
        back to ``pending`` for the next run. One re-sent because it was uncertain stays uncertain,
        with its first Message-ID, whatever went wrong: nothing short of a 250 for the new copy
        says whether the first one arrived. Returns True for those."""
        subscriber, journal = job.subscriber, self.journal
        uncertain = job.first_id is not None
        if journal is None:
            return uncertain
        if uncertain:
            journal.mark_uncertain(self.issue_key, subscriber.key, subscriber.email,
                                   f"still uncertain, the re-send failed: {text}", code)
        elif failed:
            journal.mark_failed(self.issue_key, subscriber.key, subscriber.email, code, text, permanent)
        else:
            journal.mark_untried(self.issue_key, subscriber.key, subscriber.email, code, f"not tried: {text}")
        return uncertain

    def _retry_later(self, job: _Job, code: int | None, text: str) -> None:
        if job.tries >= self.options.attempts:
            self._fail(job, code, f"{text} (gave up after {job.tries} tries)", permanent=False)
            return
        self.stats.retries += 1
        loop = asyncio.get_running_loop()

        def requeue() -> None:
            self._timers.discard(timer)
            if not self._stopping:
                self._queue.put_nowait(job)

        timer = loop.call_later(self._backoff(max(job.tries, 1)), requeue)
        self._timers.add(timer)

    def _backoff(self, tries: int) -> float:
        """Exponential with jitter: base * 2^(tries-1), times 0.5..1.5, capped."""
        delay = min(self.options.backoff_max, self.options.backoff * 2 ** (tries - 1))
        return delay * (0.5 + self.rng())

    def _fail(self, job: _Job, code: int | None, text: str, *, permanent: bool, settle: bool = True) -> None:
        uncertain = self._record_unsent(job, code, text, failed=True, permanent=permanent)
        if self.journal is not None:
            self._remember_bounce(job.subscriber, code, text, permanent, counted=not uncertain)
        if uncertain:
            self.stats.uncertain += 1
        else:
            self.stats.failed += 1
            if len(self.stats.failures) < KEEP_FAILURES:
                self.stats.failures.append(Failure(job.subscriber.email, code, text, permanent))
        self.stats.errors += 1
        if settle:
            self._settle()
        if self.stats.errors >= self.options.max_errors and not self._stopping:
            self.stop(f"stopped after {self.stats.errors} errors (max_errors = {self.options.max_errors}); "
                      "fix the cause, then run the same command again to resume", "stopped")

    def _remember_bounce(self, subscriber: Subscriber, code: int | None, text: str, permanent: bool,
                         counted: bool = True) -> None:
        """Suppression that stays: a recorded refusal saying the mailbox does not exist suppresses
        the address for every later issue; a recipient given up on after transient failures counts
        a soft bounce, unless an earlier copy may have arrived (``counted`` False: uncertain).
        (Session refusals never get here: nobody is charged for them.)"""
        assert self.journal is not None
        if permanent:
            reason = hard_bounce_reason(code, text)
            if reason is not None:
                self.journal.suppress([subscriber.email], reason)
        elif code is not None and counted:  # a server's 4xx, not a connection that could not be opened
            self.journal.record_soft_bounce(self.issue_key, subscriber.email, text,
                                            self.options.soft_bounce_limit)

    def _progress(self, force: bool = False) -> None:
        if self.on_progress is None:
            return
        now = time.monotonic()
        if force or now - self._last_progress >= PROGRESS_EVERY:
            self._last_progress = now
            self.on_progress(self.stats)
