"""Which reader an answer is about, believed only on proof: the one place for that rule.

Anyone can write a DSN or an abuse report, and name any address in it. So an answer counts
only for the recipient of the one message it proves, by a MAC under the newsletter's
secret that only that message carried:

* the VERP return address it arrived at (``bounce+<issue>.<mac>@domain``, as the mailbox
  shows it in ``Delivered-To``, ``X-Original-To``, the report's ``To``, or the original's
  ``Return-Path`` quoted in it); an address of that shape whose MAC verifies for nobody
  makes the whole answer unbelieved, whatever else it quotes;
* the original's Message-ID (``send.msgid``: a MAC of issue and recipient), found in the
  journal and checked against the recipient it was sent to.

Every proof an answer carries must name the same message. The addresses the answer reports
are never a proof: a bounce affects only the proven recipient (another address it names
is the forwarded one, as ``Original-Recipient`` is, or a forgery), so one DSN listing 100
addresses suppresses at most one reader.

**Messages sent before these IDs** carry a guessable ``<time.random.N@domain>``. An
answer quoting one is believed only when the journal recorded that exact ID, the answer
reports that delivery's own address as the failed (or complaining) recipient, the delivery
is at most :data:`LEGACY_DAYS` old, and no other answer of the same run tried that ID or
that address in a combination that did not match (:meth:`Prover.sprayed`: trying every
reader's address against every guessed ID gives itself away). Someone who knows a reader's
address and guesses the one ID of that reader's copy can still forge one during that
window; after it, only MACs count. (An ID made under a secret that has since changed is
treated the same way.)

A bounce (a DSN or a mail system's own format) counts only from a mail system: the null
sender (``Return-Path: <>``, RFC 5321 4.5.5, RFC 3464) or MAILER-DAEMON / postmaster.
A complaint counts only as an ARF report (RFC 5965) with a proof; ``classify`` makes no
complaint of anything else but a sending service's notification. Those (Amazon SES through
SNS, Postmark, Mailgun: ``answers.notifications``, an Answer with a ``service``) come from the
service's own address or from a file the user gave, not from a mail system, and need the same
MAC proof (their ``mail.source`` is the return address, their quoted Message-ID the original's).

A mailed unsubscribe request is honoured by its From (the law wants every request
honoured; a forged one can only stop mail), and is *proven* when it was written to the
reader's own ``unsubscribe+<issue>.<mac>@domain`` from ``List-Unsubscribe``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import parseaddr

from gigo_mail.address import address_key
from gigo_mail.answers.classify import COMPLAINT, HARD, SOFT, Answer
from gigo_mail.config import Config
from gigo_mail.journal.deliveries import Journal, Record
from gigo_mail.send.msgid import MessageIds
from gigo_mail.send.verp import UNSUBSCRIBE_CONTEXT, VerpIndex

LEGACY_DAYS = 30  # how long answers to messages with the old, guessable Message-IDs are still believed

# Why an answer was not believed (one line each in `bounces`' report).
NOT_A_MAIL_SYSTEM = "a bounce not from a mail system (neither the null sender nor MAILER-DAEMON/postmaster)"
BAD_VERP = "sent to a return address whose MAC does not verify"
BAD_MESSAGE_ID = "quotes no Message-ID with a valid MAC of ours"
LEGACY_OTHER_RECIPIENT = "quotes an old Message-ID but does not name the reader it was sent to"
LEGACY_TOO_OLD = f"quotes an old Message-ID of a delivery more than {LEGACY_DAYS} days old"
LEGACY_SPRAYED = "quotes an old Message-ID that answers in this run also tried with other addresses"
NO_PROOF = "proves no message of ours (no return address or Message-ID with a MAC)"
PROOFS_DISAGREE = "its proofs name different messages"
UNKNOWN_SENDER = "an unsubscribe request from an address this list never mailed"
BAD_TOKEN = "written to an unsubscribe address whose token does not verify"

_SYSTEM_LOCAL = re.compile(r"^(mailer-daemon|mailer_daemon|mail-daemon|mailerdaemon|postmaster)$", re.I)


def from_mail_system(msg: Message) -> bool:
    """Whether a bounce comes from a mail system: its envelope sender (the ``Return-Path`` the
    delivering server wrote) is null or a daemon, or, when no Return-Path was written, its
    From is MAILER-DAEMON or postmaster. A display name ("Mail Delivery System") proves nothing."""
    paths = msg.get_all("return-path") or []
    if paths:
        path = str(paths[0]).strip().strip("<>").strip()
        return not path or bool(_SYSTEM_LOCAL.match(path.rpartition("@")[0] or path))
    address = parseaddr(str(msg.get("from", "")))[1]
    return bool(_SYSTEM_LOCAL.match(address.rpartition("@")[0] or address))


OLD_MESSAGE_ID = "old Message-ID"
UNSUBSCRIBE_TOKEN = "unsubscribe token"
REPLY = "reply to its Message-ID"


@dataclass(frozen=True)
class Proof:
    """The record an answer proves (and how), or why none is believed."""

    record: Record | None
    how: str = ""  # "return address", "Message-ID", "old Message-ID", "unsubscribe token"
    refused: str = ""  # one of the reasons above when record is None


def key_of(address: str) -> str:
    """The address's journal key, or '' for one that is nobody's."""
    try:
        return str(address_key(address))
    except Exception:  # noqa: BLE001 - a malformed address in a report is simply nobody's
        return ""


def _recent(record: Record, now: datetime) -> bool:
    try:
        when = datetime.fromisoformat(record.updated_at)
    except ValueError:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return now - when <= timedelta(days=LEGACY_DAYS)


class Prover:
    """Ties answers to journal records by their proofs (see the module docs)."""

    def __init__(self, config: Config, journal: Journal, now: datetime | None = None) -> None:
        self.journal = journal
        self.secret = config.secret()
        self.now = now or datetime.now(UTC)
        base = config.bounces.envelope_base(config.newsletter.from_address)
        self.verp = VerpIndex(journal, self.secret, base) if "@" in base else None
        mailto = config.newsletter.unsubscribe_mailto
        self.tokens = (VerpIndex(journal, self.secret, mailto, UNSUBSCRIBE_CONTEXT)
                       if "@" in mailto else None)
        self._ids: dict[str, MessageIds] = {}
        self._tried_ids: set[str] = set()  # old Message-IDs quoted with another recipient named
        self._tried_keys: set[str] = set()  # addresses named beside an old Message-ID that is not theirs

    def _mac_ok(self, message_id: str, record: Record) -> bool:
        ids = self._ids.get(record.issue_key)
        if ids is None:
            ids = self._ids[record.issue_key] = MessageIds(self.secret, record.issue_key)
        return ids.proves(message_id, record.key)

    def prove(self, answer: Answer, msg: Message) -> Proof:
        """The one record a bounce or complaint proves; see the module docs for the rules."""
        if _is_bounce(answer) and not from_mail_system(msg):
            return Proof(None, refused=NOT_A_MAIL_SYSTEM)
        proven: list[tuple[Record, str]] = []
        if self.verp is not None:
            for address in answer.envelope:
                if not self.verp.is_ours(address):
                    continue
                record = self.verp.resolve(address)
                if record is None:
                    return Proof(None, refused=BAD_VERP)
                proven.append((record, "return address"))
        legacy: list[Record] = []
        for message_id in answer.message_ids:
            record = self.journal.find_message(message_id)
            if record is None:
                continue
            if self._mac_ok(message_id, record):
                proven.append((record, "Message-ID"))
            else:
                legacy.append(record)
        if proven:
            if len({(r.issue_key, r.key) for r, _ in proven}) > 1:
                return Proof(None, refused=PROOFS_DISAGREE)
            return Proof(proven[0][0], how=proven[0][1])
        return self._legacy(answer, legacy)

    def _legacy(self, answer: Answer, candidates: list[Record]) -> Proof:
        """An old, guessable Message-ID: believed only with its own recipient named, while recent."""
        if not candidates:
            return Proof(None, refused=BAD_MESSAGE_ID if answer.message_ids else NO_PROOF)
        named = {key_of(address) for address in _named(answer)} - {""}
        matching = [record for record in candidates if record.key in named]
        if not matching:
            self._tried_ids.update(record.message_id for record in candidates)
            self._tried_keys.update(named)
            return Proof(None, refused=LEGACY_OTHER_RECIPIENT)
        if len({(r.issue_key, r.key) for r in matching}) > 1:
            return Proof(None, refused=PROOFS_DISAGREE)
        if not _recent(matching[0], self.now):
            return Proof(None, refused=LEGACY_TOO_OLD)
        return Proof(matching[0], how=OLD_MESSAGE_ID)

    def sprayed(self, record: Record) -> bool:
        """Whether other answers tried this old ID, or this address, with a combination that did not
        match: guessing, not a mail system reporting (see ``process_answers``)."""
        return record.message_id in self._tried_ids or record.key in self._tried_keys

    def unsubscribe_proof(self, answer: Answer) -> Proof:
        """The reader a request proves: the tokenised unsubscribe address it was written to, else
        the MAC'd Message-ID it replies to (In-Reply-To, References). Old IDs prove nothing here."""
        if self.tokens is not None:
            for address in answer.envelope:
                if self.tokens.is_ours(address):
                    record = self.tokens.resolve(address)
                    return Proof(record, how=UNSUBSCRIBE_TOKEN) if record else Proof(None, refused=BAD_TOKEN)
        for message_id in answer.message_ids:
            record = self.journal.find_message(message_id)
            if record is not None and self._mac_ok(message_id, record):
                return Proof(record, how=REPLY)
        return Proof(None, refused=NO_PROOF)

    def by_address(self, email: str) -> Record | None:
        """The latest delivery to an address (a mailed unsubscribe request's From)."""
        key = key_of(email)
        return self.journal.latest_delivery(key) if key else None


def _is_bounce(answer: Answer) -> bool:
    """A DSN or a mail system's own bounce. A sending service's JSON notification (an Answer with
    a ``service``) is no DSN and comes from the service's own address: it needs the same MAC
    proof, but not the mail-system sender."""
    return answer.kind in (HARD, SOFT) and not answer.service


def _named(answer: Answer) -> Iterable[str]:
    """The addresses an answer reports as failed or complaining (a forwarded failure names the
    address it was sent to as well, its Original-Recipient)."""
    if answer.kind == COMPLAINT:
        return answer.addresses
    return [address for failure in answer.failures
            for address in (failure.email, failure.original) if address]


def named_others(answer: Answer, record: Record) -> int:
    """How many other addresses an answer names besides the proven recipient (ignored); the address
    a reader's mail was forwarded to (a failure whose Original-Recipient is the reader) is theirs."""
    own = {key_of(failure.email) for failure in answer.failures if failure.names(record.email)}
    return len({key_of(address) for address in _named(answer)} - own - {record.key, ""})
