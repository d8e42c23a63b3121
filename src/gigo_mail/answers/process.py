"""The answers a send gets back, acted on: ``gigo-mail bounces``' core.

Each message from a mail source is classified (``bounces.classify``), tied to the
subscriber and issue it answers, acted on, and remembered:

* hard bounce (a permanent failure that says the mailbox is gone, by the send path's rule:
  ``bounces.says_gone``), complaint, unsubscribe request: the address goes on the
  suppression list (reason ``hard bounce``, ``complaint``, ``unsubscribe by mail``);
* any other permanent failure (policy, spam, size): recorded as ``refused``, suppresses
  nothing, as at RCPT time;
* soft bounce: counted in the journal (``Journal.record_soft_bounce``, at the report's
  Date), the same count as the send path's; after ``[suppression] soft_bounces`` issues in
  a row the journal suppresses the address (reason ``soft bounces: ...``);
* auto-reply, or anything else: nothing.

Attribution is ``answers.proof``'s: an answer counts only for the one recipient whose
message it proves by a MAC (its VERP return address, or its Message-ID), never for an
address it merely names; a mailed unsubscribe request counts for its From, and is proven
when written to the reader's tokenised address. An answer tied to nobody is reported with
the reason it was not believed (``AnswersReport.refused``) and left alone (not moved).

The answers are kept in ``.gigo/answers.sqlite3`` (by the answer's own Message-ID, or a
hash of its bytes), so a second run over the same mailbox changes nothing. The order is
act, then remember: a crash in between acts twice, which is harmless.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC
from email import message_from_bytes, policy
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

from gigo_mail.answers import classify as bounces
from gigo_mail.answers.classify import (
    AUTO_REPLY,
    COMPLAINT,
    HARD,
    OTHER,
    REFUSED,
    SOFT,
    UNSUBSCRIBE,
    Answer,
    Failure,
)
from gigo_mail.answers.proof import (
    BAD_TOKEN,
    LEGACY_SPRAYED,
    NO_PROOF,
    OLD_MESSAGE_ID,
    UNKNOWN_SENDER,
    Prover,
    named_others,
)
from gigo_mail.answers.source import MailSource
from gigo_mail.config import ANSWERS_NAME, STATE_DIR, Config
from gigo_mail.errors import JournalError
from gigo_mail.journal.deliveries import Journal, Record
from gigo_mail.journal.schema import now
from gigo_mail.journal.store import connect, immediate

GMAIL_SPAM_LINE = 0.003  # Gmail's bulk sender rule: keep the reported spam rate under 0.3 %
UNATTRIBUTED = "unattributed"
REASONS = {HARD: "hard bounce", COMPLAINT: "complaint", UNSUBSCRIBE: "unsubscribe by mail"}
SUMMARY_KINDS = (HARD, REFUSED, SOFT, COMPLAINT, UNSUBSCRIBE, AUTO_REPLY, OTHER, UNATTRIBUTED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    answer_id TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,
    email     TEXT NOT NULL DEFAULT '',
    key       TEXT NOT NULL DEFAULT '',
    issue_key TEXT NOT NULL DEFAULT '',
    detail    TEXT NOT NULL DEFAULT '',
    at        TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS answers_by_issue ON answers (issue_key, kind);
CREATE INDEX IF NOT EXISTS answers_by_key ON answers (key, kind)
"""


class AnswerStore:
    """Which answers were processed, and what each was (per issue, for ``status``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect(path, "answers store")  # the journal's conventions
        try:
            for statement in _SCHEMA.split(";"):
                self._db.execute(statement)
        except sqlite3.Error as exc:
            self._db.close()
            raise JournalError(f"{path}: cannot use the answers store: {exc}") from None

    @classmethod
    def for_root(cls, root: Path) -> AnswerStore:
        return cls(Path(root) / STATE_DIR / ANSWERS_NAME)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AnswerStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            return list(self._db.execute(sql, params))
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot use the answers store: {exc}") from None

    def seen(self, answer_id: str) -> str | None:
        """The kind an answer was given when it was processed, or None if it is new."""
        rows = self._query("SELECT kind FROM answers WHERE answer_id = ?", (answer_id,))
        return str(rows[0][0]) if rows else None

    def remember(self, answer_id: str, rows: list[tuple[str, str, str, str, str]]) -> None:
        """Record an answer as processed: one row per (kind, email, key, issue, detail) it acted on."""
        at = now()
        try:
            with immediate(self._db):
                for index, (kind, email, key, issue, detail) in enumerate(rows or [(OTHER, "", "", "", "")]):
                    self._db.execute("INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
                                     (answer_id if index == 0 else f"{answer_id}#{index}", kind, email, key,
                                      issue, detail, at))
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot record an answer: {exc}") from None

    def counts(self, issue_key: str) -> Counter[str]:
        """Answers per kind for one issue (each address counted once per kind)."""
        rows = self._query("SELECT kind, COUNT(DISTINCT key) FROM answers WHERE issue_key = ? GROUP BY kind",
                           (issue_key,))
        return Counter({str(kind): int(count) for kind, count in rows})  # type: ignore[call-overload]


    def for_issue(self, issue_key: str) -> list[tuple[str, str, str]]:
        """(kind, email, detail) of every attributed answer to one issue, oldest first."""
        rows = self._query("SELECT kind, email, detail FROM answers WHERE issue_key = ? AND email != '' "
                           "ORDER BY at, email", (issue_key,))
        return [(str(kind), str(email), str(detail)) for kind, email, detail in rows]


def complaint_rate(complaints: int, sent: int) -> float | None:
    """Complaints per message delivered (the figure Gmail holds under GMAIL_SPAM_LINE)."""
    return complaints / sent if sent else None


@dataclass(frozen=True)
class Outcome:
    """What was done with one message of the source."""

    kind: str  # one of SUMMARY_KINDS
    email: str
    issue_key: str
    detail: str
    subject: str
    sender: str
    suppressed: bool = False
    proof: str = ""  # how the answer proved its reader ("return address", "unsubscribe token", ...)


@dataclass
class AnswersReport:
    outcomes: list[Outcome] = field(default_factory=list)
    already: int = 0  # processed by an earlier run
    moved: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # why answers were not believed: count each
    ignored_addresses: int = 0  # addresses proven answers named besides their reader (not suppressed)

    def count(self, kind: str) -> int:
        return sum(1 for outcome in self.outcomes if outcome.kind == kind)


def answer_id(msg: Message, data: bytes) -> str:
    """The answer's own Message-ID, else a hash of its bytes."""
    value = " ".join(str(msg.get("message-id", "")).split())
    return value or "sha256:" + hashlib.sha256(data).hexdigest()


def _failure_kind(failure: Failure) -> str:
    """HARD only when the mailbox is gone (the send path's rule); other permanent ones REFUSED."""
    if failure.kind == HARD and not failure.mailbox_gone:
        return REFUSED
    return failure.kind


@dataclass(frozen=True)
class _Target:
    kind: str
    record: Record
    detail: str
    proof: str


def _failure_for(answer: Answer, record: Record) -> Failure:
    """The failure reported for the proven recipient; any other (a forwarded address, as
    Original-Recipient is) stands for it, the worst first."""
    for failure in answer.failures:
        if failure.names(record.email):  # as delivered, or as sent (Original-Recipient)
            return failure
    return next((f for f in answer.failures if f.kind == HARD), answer.failures[0])


def _targets(answer: Answer, msg: Message, who: Prover, report: AnswersReport) -> tuple[list[_Target], str]:
    """What the answer proves, for whom (at most one reader for a bounce or complaint; see
    ``answers.proof``), else why it is not believed."""
    if answer.kind in (HARD, SOFT, COMPLAINT):
        proof = who.prove(answer, msg)
        if proof.record is None:
            return [], proof.refused
        report.ignored_addresses += named_others(answer, proof.record)
        if answer.kind == COMPLAINT:
            return [_Target(COMPLAINT, proof.record, answer.detail, proof.how)], ""
        failure = _failure_for(answer, proof.record)
        return [_Target(_failure_kind(failure), proof.record, failure.detail, proof.how)], ""
    if answer.kind != UNSUBSCRIBE:
        return [], NO_PROOF  # a kind no rule acts on
    targets = []
    token = who.unsubscribe_proof(answer)
    if token.record is not None:
        targets.append(_Target(UNSUBSCRIBE, token.record, f"{answer.detail}, proven by its {token.how}",
                               token.how))
    elif token.refused == BAD_TOKEN:  # still honoured by its From, below
        report.refused[BAD_TOKEN] += 1
    sender = who.by_address(answer.addresses[0]) if answer.addresses else None
    if sender is not None and all(t.record.key != sender.key for t in targets):
        targets.append(_Target(UNSUBSCRIBE, sender, f"{answer.detail}, by its From (not proven)", "From"))
    return targets, "" if targets else UNKNOWN_SENDER


def _parse(data: bytes) -> Message:
    return message_from_bytes(data, policy=policy.compat32)


def report_time(msg: Message) -> str:
    """When the report was written (its Date, in the journal's UTC format), else now: a soft
    bounce counts against the delivery it came after."""
    try:
        when = parsedate_to_datetime(str(msg.get("date", "")))
    except (TypeError, ValueError, IndexError):
        return now()
    if when.tzinfo is None:
        return now()
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def _soft_bounce(journal: Journal, config: Config, record: Record, detail: str, at: str, dry_run: bool
                 ) -> bool:
    """Count a soft bounce the way the send path does; True if it (would) suppress the address."""
    limit = config.suppression.soft_bounces
    if dry_run:
        return journal.soft_bounces_in_a_row(record.email) + 1 >= limit
    return journal.record_soft_bounce(record.issue_key, record.email, detail, limit, at=at)


@dataclass
class _Run:
    """One pass over a mail source: acts on proven answers, records the rest."""

    config: Config
    journal: Journal
    store: AnswerStore
    who: Prover
    dry_run: bool
    report: AnswersReport = field(default_factory=AnswersReport)
    done: list[str] = field(default_factory=list)  # uids to move

    def refuse(self, ident: str, answer: Answer, reason: str, subject: str, sender: str) -> None:
        """Not believed: counted by reason, remembered, left where it is for a person to look at."""
        self.report.refused[reason] += 1
        shown = ", ".join([f.email for f in answer.failures] + list(answer.addresses))[:200] or "-"
        self.report.outcomes.append(Outcome(UNATTRIBUTED, shown, "", f"{answer.kind}: {reason}", subject,
                                            sender))
        if not self.dry_run:
            self.store.remember(ident, [(UNATTRIBUTED, "", "", "", answer.detail)])

    def act(self, uid: str, ident: str, msg: Message, targets: list[_Target], subject: str, sender: str
            ) -> None:
        rows = []
        for target in targets:
            kind, record, detail = target.kind, target.record, target.detail
            suppress = kind in REASONS
            if suppress and not self.dry_run:
                self.journal.suppress([record.email], REASONS[kind])
            if kind == SOFT:
                suppress = _soft_bounce(self.journal, self.config, record, detail, report_time(msg),
                                        self.dry_run)
            rows.append((kind, record.email, record.key, record.issue_key, detail))
            self.report.outcomes.append(Outcome(kind, record.email, record.issue_key, detail, subject, sender,
                                                suppress, target.proof))
        if not self.dry_run:
            self.store.remember(ident, rows)
        self.done.append(uid)


def process_answers(config: Config, source: MailSource, *, dry_run: bool = False, move_to: str = "",
                    ) -> AnswersReport:
    """Read every message of ``source``, act on the answers, remember them; see the module docs.

    Answers proven only by an old Message-ID are acted on last, and not at all when another
    answer of the run quoted that ID, or named that address, with an old ID that did not match
    (``Prover.sprayed``): someone trying addresses against guessed IDs."""
    mailto = config.newsletter.unsubscribe_mailto
    with Journal.for_root(config.root) as journal, AnswerStore.for_root(config.root) as store:
        run = _Run(config, journal, store, Prover(config, journal), dry_run)
        report = run.report
        deferred = []
        for uid, data in source.messages():
            msg = _parse(data)
            ident = answer_id(msg, data)
            earlier = store.seen(ident)
            if earlier is not None:
                report.already += 1
                if earlier != UNATTRIBUTED:
                    run.done.append(uid)  # processed, but still here (an earlier move failed): move it now
                continue
            answer = bounces.classify(msg, mailto)
            subject = " ".join(str(msg.get("subject", "")).split())[:120]
            sender = " ".join(str(msg.get("from", "")).split())[:120]
            if answer.kind in (AUTO_REPLY, OTHER):
                report.outcomes.append(Outcome(answer.kind, "", "", answer.detail, subject, sender))
                if not dry_run:
                    store.remember(ident, [(answer.kind, "", "", "", answer.detail)])
                run.done.append(uid)
                continue
            targets, refused = _targets(answer, msg, run.who, report)
            if not targets:
                run.refuse(ident, answer, refused, subject, sender)
            elif targets[0].proof == OLD_MESSAGE_ID:
                deferred.append((uid, ident, msg, answer, targets, subject, sender))
            else:
                run.act(uid, ident, msg, targets, subject, sender)
        for uid, ident, msg, answer, targets, subject, sender in deferred:
            if run.who.sprayed(targets[0].record):
                run.refuse(ident, answer, LEGACY_SPRAYED, subject, sender)
            else:
                run.act(uid, ident, msg, targets, subject, sender)
    if move_to and run.done and not dry_run:
        report.moved = source.move(run.done, move_to)
    return report


@contextmanager
def answer_counts(root: Path) -> Iterator[AnswerStore | None]:
    """The answers store if one exists (read-only commands must not create state)."""
    path = Path(root) / STATE_DIR / ANSWERS_NAME
    if not path.is_file():
        yield None
        return
    with AnswerStore(path) as store:
        yield store
