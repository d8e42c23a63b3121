"""What an answer is, as data: its kind, the recipients a bounce reports and every clue to whom
it refers. Shared by the readers of mail (``classify``) and of JSON (``notifications``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gigo_mail.address import address_key
from gigo_mail.transport.gone import GONE, TEMPORARY, verdict

HARD = "hard bounce"
SOFT = "soft bounce"
COMPLAINT = "complaint"
UNSUBSCRIBE = "unsubscribe"
AUTO_REPLY = "auto-reply"
REFUSED = "refused"  # a permanent failure that does not say the mailbox is gone: recorded, not suppressed
OTHER = "other"  # none of the above: a person's reply, spam, a report we do not read


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce reports, with the kind it gets."""

    email: str  # the address that failed (Final-Recipient)
    kind: str  # HARD (permanent) or SOFT (transient)
    detail: str  # status code and diagnostic (or the notification's words about it), for the report
    gone: bool = False  # the one rule (transport.refusals) says the mailbox does not exist
    original: str = ""  # Original-Recipient (RFC 3464): the address we sent to, when it was forwarded

    @property
    def mailbox_gone(self) -> bool:
        """A permanent failure that says the mailbox does not exist: the send path's rule."""
        return self.kind == HARD and self.gone

    def names(self, email: str) -> bool:
        """Whether this failure is about ``email``, as sent (Original-Recipient) or as finally
        delivered: attribution asks it with the one recipient an answer proves."""
        wanted = address_key(email)
        return any(address_key(a) == wanted for a in (self.email, self.original) if a.strip())


def judged(email: str, words: str, *, detail: str = "", original: str = "", delayed: bool = False) -> Failure:
    """A failure whose kind and gone-ness the one rule reads from its words (status, diagnostic)."""
    said = verdict(words)
    kind = SOFT if delayed or said == TEMPORARY else HARD
    return Failure(email, kind, detail or words, gone=kind == HARD and said == GONE, original=original)


@dataclass(frozen=True)
class Answer:
    """What a message is, and every clue to whom it refers."""

    kind: str
    detail: str = ""
    failures: tuple[Failure, ...] = ()  # bounces: the recipients it reports
    addresses: tuple[str, ...] = ()  # complaint: original recipient(s); unsubscribe: the sender
    envelope: tuple[str, ...] = ()  # addresses it was delivered to, or the original's return path (VERP)
    message_ids: tuple[str, ...] = field(default=())  # Message-IDs of the original it answers
    # the sending service whose JSON notification this is ("Amazon SES", "Postmark", "Mailgun"),
    # "" for mail a mail system wrote: a notification is no DSN, so the mail-system sender rule
    # does not apply to it; its proof is the same MAC'd Message-ID or return address
    service: str = ""
