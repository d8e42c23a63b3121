"""The per-recipient outcome policy of a send: what each reply or fault does to a recipient.

A delivery counted once its mark is in the journal (``_delivered``), retry with backoff,
session faults, refusals and the refusal breaker, the stall stop, what the journal records
for an attempt that did not deliver (``_record_unsent``), and the suppressions that stay.
The engine (:mod:`gigo_mail.send.engine`) moves recipients; this decides, in one place, what
becomes of them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gigo_mail.errors import (
    GigoError,
    SMTPConnectFailed,
    SMTPPermanentError,
    SMTPTransientError,
    SMTPUncertainError,
)
from gigo_mail.lists.reader import Subscriber
from gigo_mail.send.options import BuiltMessageLike, Failure, SendOptions, SendStats
from gigo_mail.transport.gone import hard_bounce_reason

if TYPE_CHECKING:
    from gigo_mail.journal.deliveries import Journal
    from gigo_mail.send.ratelimit import RateLimiter
    from gigo_mail.transport import Transport

KEEP_FAILURES = 200  # failures kept in the result for the summary; the journal has them all


@dataclass(slots=True)
class _Job:
    subscriber: Subscriber
    tries: int = 0
    message: BuiltMessageLike | None = None
    first_id: str | None = None  # re-sending an uncertain recipient: its first Message-ID
    sender: str | None = None  # its envelope sender (a VERP address is one HMAC), made once


_ANGLED = re.compile(r"<[^>]*>")


def _refusal_signature(code: int | None, text: str, email: str) -> tuple[int | None, str]:
    """A reply with the recipient taken out, to see that different recipients got the same."""
    return code, _ANGLED.sub("<>", text).replace(email, "")


class Outcomes:
    """The outcome policy, mixed into Sender; the state it reads is Sender's."""

    options: SendOptions
    journal: Journal | None
    stats: SendStats
    issue_key: str
    rng: Callable[[], float]
    stop: Callable[[str, str], None]
    _settle: Callable[[], None]
    _stopping: bool
    _queue: asyncio.Queue[_Job | None]
    _timers: set[asyncio.TimerHandle]
    _session_faults: int
    _accepted: bool
    _timed_out: set[int]
    _held: list[tuple[_Job, SMTPPermanentError]]
    _tripped: bool
    _crash: Exception | None
    limiter: RateLimiter

    def _delivered(self, error: GigoError | None) -> None:
        """A 250 whose "sent" mark is now in the journal; a mark that could not be written stops
        the run (the recipient stays uncertain). Called from inside the journal's commit, not from
        a worker: whatever goes wrong here stops the run itself."""
        try:
            if error is not None:
                raise error
            self.stats.sent += 1
            self._timed_out.clear()
            self._session_faults = 0
            if not self._accepted:
                self._accepted = True
                self._record_held()
            self.limiter.on_success()
            self.stats.rate_limit = self.limiter.rate
            self._settle()
        except GigoError as exc:
            self.stop(str(exc), "failed")
        except Exception as exc:  # a bug: stop cleanly, and run() raises it
            self._crash = exc
            self.stop(f"internal error: {exc!r}", "failed")

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
