"""The resume policy and the plan: who in a list is sent in this run, decided from the journal.

This is the one place the policy is written; the engine (``sender``) applies it to
each row as it streams, and ``plan_send`` counts it before anyone is asked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gigo_mail.lists.formats import UNCLEAR
from gigo_mail.lists.reader import OUTSIDE_SEGMENT, SkippedRow, Subscriber, note_unclear

if TYPE_CHECKING:
    from gigo_mail.journal.deliveries import Journal

# Why a listed subscriber is not sent in this run (from the journal).
ALREADY_SENT = "sent"
UNCERTAIN = "uncertain"
FAILED = "failed"  # failed permanently before; --retry-failed re-sends
NOT_FAILED = "not failed"  # --retry-failed: only failures are re-sent



class Selector:
    """The resume policy: decides, from the journal, whether a listed subscriber is sent in this run.

    * ``sent``: skipped, always;
    * ``sending``: uncertain, re-sent only with ``resend_uncertain`` (with its first
      Message-ID, see :meth:`first_message_id`), with or without ``retry_failed``;
    * ``failed`` permanently (a 5xx): skipped;
    * ``failed`` transiently (4xx, dropped connection, retries exhausted), ``pending``
      (handed back after a session refusal) or no row: sent;
    * with ``retry_failed``: only the ``failed`` ones (permanent or not) are sent, nobody else.
    """

    def __init__(self, journal: Journal | None, issue_key: str, *, retry_failed: bool = False,
                 resend_uncertain: bool = False) -> None:
        self.journal = journal
        self.issue_key = issue_key
        self.retry_failed = retry_failed
        self.resend_uncertain = resend_uncertain
        # A first send of an issue needs no lookup per row.
        self._empty = journal is None or not any(journal.counts(issue_key).values())

    def reason_to_skip(self, key: str) -> str | None:
        """None to send, else why not (ALREADY_SENT, UNCERTAIN, FAILED, NOT_FAILED)."""
        if self._empty or self.journal is None:
            return NOT_FAILED if self.retry_failed else None
        record = self.journal.record(self.issue_key, key)
        status = record.status if record else None
        if status == "sending":
            return None if self.resend_uncertain else UNCERTAIN
        if self.retry_failed:
            return None if status == "failed" else NOT_FAILED
        if status == "sent":
            return ALREADY_SENT
        if status == "failed" and record is not None and record.permanent:
            return FAILED
        return None

    def first_message_id(self, key: str) -> str | None:
        """For an uncertain recipient being re-sent: the Message-ID of its first attempt, so
        that a second copy is the same message (mailboxes fold copies by Message-ID)."""
        if not self.resend_uncertain or self._empty or self.journal is None:
            return None
        record = self.journal.record(self.issue_key, key)
        if record is None or record.status != "sending":
            return None
        return record.message_id or None


SHOWN_SKIPPED = 5


@dataclass
class SendPlan:
    """What a run would do, counted in one streaming pass before asking to confirm."""

    to_send: int = 0
    not_selected: Counter[str] = field(default_factory=Counter)  # journal reasons
    skipped: Counter[str] = field(default_factory=Counter)  # SkippedRow kinds
    beyond_limit: int = 0
    needs_smtputf8: int = 0
    examples: list[SkippedRow] = field(default_factory=list)  # the first few skipped rows, to show
    unclear: dict[str, set[str]] = field(default_factory=dict)  # opt-out column -> values no rule covers

    @property
    def rows(self) -> int:
        """Every non-blank row of the list, whatever became of it."""
        return self.to_send + self.beyond_limit + sum(self.not_selected.values()) + sum(self.skipped.values())

    @property
    def nobody(self) -> bool:
        """Nobody on the list can be mailed at all (every row skipped, or no rows), as opposed
        to a list whose readers all have the issue already."""
        return not self.to_send and not self.beyond_limit and not any(self.not_selected.values())


TICK = 512  # rows read between the ``None`` ticks ``select`` yields, so an engine can let others run


def select(rows: Iterable[Subscriber | SkippedRow], selector: Selector, limit: int | None, *,
           skipped: Callable[[SkippedRow], None], not_selected: Callable[[str], None],
           beyond_limit: Callable[[], None] | None = None) -> Iterator[Subscriber | None]:
    """The one loop that decides who in a list is mailed in this run, for the plan and the send alike.

    Skipped rows and readers the resume policy leaves out are told to the callbacks; the rest are
    yielded, at most ``limit`` of them. Past the limit, ``beyond_limit`` is told of each further
    reader (the plan counts them) or, without it, the loop ends (the send stops reading). Every
    ``TICK`` rows read it yields ``None``, so that an asynchronous consumer can yield in turn."""
    chosen = 0
    for index, row in enumerate(rows):
        if index % TICK == TICK - 1:
            yield None
        if isinstance(row, SkippedRow):
            skipped(row)
            continue
        reason = selector.reason_to_skip(row.key)
        if reason is not None:
            not_selected(reason)
            continue
        if limit is not None and chosen >= limit:
            if beyond_limit is None:
                return
            beyond_limit()
            continue
        chosen += 1
        yield row


def plan_send(rows: Iterable[Subscriber | SkippedRow], selector: Selector, limit: int | None = None
              ) -> SendPlan:
    """Count what a send of ``rows`` would do, by the same loop the send runs (``select``)."""
    plan = SendPlan()

    def skipped(row: SkippedRow) -> None:
        plan.skipped[row.kind] += 1
        if row.kind == UNCLEAR:
            note_unclear(plan.unclear, row)
        if len(plan.examples) < SHOWN_SKIPPED and row.kind != OUTSIDE_SEGMENT:
            plan.examples.append(row)

    def not_selected(reason: str) -> None:
        plan.not_selected[reason] += 1

    def beyond_limit() -> None:
        plan.beyond_limit += 1

    for row in select(rows, selector, limit, skipped=skipped, not_selected=not_selected,
                      beyond_limit=beyond_limit):
        if row is not None:
            plan.to_send += 1
            plan.needs_smtputf8 += row.needs_smtputf8
    return plan
