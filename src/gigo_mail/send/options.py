"""What a send is told and what it reports: SendOptions in, SendStats and SendResult out.

Plain data, apart from the engine, so the CLI and the campaign can build and read them
without the engine's machinery.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from gigo_mail.config import Smtp, SuppressionSettings
from gigo_mail.lists.reader import Subscriber
from gigo_mail.send.selection import FAILED, UNCERTAIN


class BuildMessage(Protocol):
    """MessageFactory.build: ``message_id`` reuses the id of a first, uncertain attempt."""

    def __call__(self, subscriber: Subscriber, message_id: str | None = None) -> BuiltMessageLike: ...


class BuiltMessageLike(Protocol):
    """What MessageFactory.build returns (message.BuiltMessage)."""

    @property
    def message_id(self) -> str: ...

    @property
    def data(self) -> bytes: ...


@dataclass(frozen=True, kw_only=True)
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
    # issues in a row with a transient failure before an address is suppressed
    soft_bounce_limit: int = SuppressionSettings.soft_bounces

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
    notes: list[str] = field(default_factory=list)  # one-line facts about the server (e.g. no BDAT)

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
