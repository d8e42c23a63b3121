"""What an answer to a send is (a bounce, a complaint, an unsubscribe request, an auto-reply),
and which refusals mean "this mailbox does not exist", so the address is suppressed for good.

Pure classification; tying an answer to a subscriber is ``answers``' job.

* RFC 3464 delivery status notifications (``multipart/report;
  report-type=delivery-status``): one entry per recipient, hard or soft by its status
  code (:func:`bounce_kind`).
* RFC 5965 feedback reports (ARF, ``report-type=feedback-report``): a complaint.
* Non-standard bounces (Exchange, qmail, Exim, old Postfix, Yahoo, ...): flufl.bounce's
  detectors, only for mail from a mailer daemon, so that a person's reply is never read
  as a bounce by a heuristic.
* RFC 3834 auto-replies (``Auto-Submitted`` other than ``no``, and the vendor headers
  that mean the same): ignored. Checked after the reports, because DSNs carry
  ``Auto-Submitted: auto-replied`` too.
* Mail to the ``unsubscribe_mailto`` address, or with "unsubscribe" in its subject: a
  request from its From address.

The mailbox-gone rule (``transport.gone``: ``mailbox_gone``, ``hard_bounce_reason``) is the one place
for it, shared by the send path (a 5xx at RCPT) and the bounce processor (a DSN that
arrives later). Only a refusal that names the mailbox as absent or disabled suppresses:
enhanced status codes (RFC 3463) 5.1.1 bad destination mailbox, 5.1.2 bad destination
system, 5.1.10 null MX (RFC 7505) and 5.2.1 mailbox disabled, or, from servers that send
no enhanced code, the plain-text phrases that say the same. Every other 5xx (policy, spam,
size, relaying) is recorded and suppresses nothing: retrying those after fixing the cause
is the user's call.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from email.utils import getaddresses, parseaddr

from flufl.bounce import all_failures

from gigo_mail.transport.gone import enhanced_code, says_gone

# flufl.bounce logs a traceback for every detector that trips over a malformed message; a hostile
# mailbox must not print them (the failure is handled below).
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())
logging.getLogger("flufl.bounce").propagate = False

HARD = "hard bounce"
SOFT = "soft bounce"
COMPLAINT = "complaint"
UNSUBSCRIBE = "unsubscribe"
AUTO_REPLY = "auto-reply"
REFUSED = "refused"  # a permanent failure that does not say the mailbox is gone: recorded, not suppressed
OTHER = "other"  # none of the above: a person's reply, spam, a report we do not read

_MESSAGE_ID_RE = re.compile(r"^(?:message-id|original-message-id):\s*(<[^<>\s]+>)", re.I | re.M)
_DAEMON_RE = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailer|bounces?|noreply-dsn)$", re.I)
_DAEMON_NAME_RE = re.compile(r"mail delivery (system|subsystem)|mailer.?daemon", re.I)
_UNSUBSCRIBE_RE = re.compile(r"\bunsubscribe\b", re.I)
_AUTO_SUBJECT_RE = re.compile(r"^\s*(out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response)|"
                              r"autoreply|abwesenheit|absence|vacation)\b", re.I)
# Headers that name the address a message was delivered to, in the order they are trusted.
ENVELOPE_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to", "cc")


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce reports, with the kind it gets."""

    email: str
    kind: str  # HARD (permanent) or SOFT (transient)
    detail: str  # status code and diagnostic (or the notification's words about it), for the report

    @property
    def mailbox_gone(self) -> bool:
        """A permanent failure that says the mailbox does not exist: the send path's rule."""
        return self.kind == HARD and says_gone(self.detail)


@dataclass(frozen=True)
class Answer:
    """What a message is, and every clue to whom it refers."""

    kind: str
    detail: str = ""
    failures: tuple[Failure, ...] = ()  # bounces: the recipients it reports
    addresses: tuple[str, ...] = ()  # complaint: original recipient(s); unsubscribe: the sender
    envelope: tuple[str, ...] = ()  # addresses it was delivered to, or the original's return path (VERP)
    message_ids: tuple[str, ...] = field(default=())  # Message-IDs of the original it answers


def bounce_kind(status: str, diagnostic: str = "") -> str:
    """HARD for a permanent failure (5.x.x), SOFT for a transient one (4.x.x), by the status code
    (else by the SMTP reply code at the start of the diagnostic). The one rule for bounces."""
    enhanced = enhanced_code(status) or enhanced_code(diagnostic)
    if enhanced:
        return HARD if enhanced[0] == "5" else SOFT
    code = re.match(r"\s*(?:smtp;\s*)?([45])\d\d\b", diagnostic, re.I)
    if code:
        return HARD if code.group(1) == "5" else SOFT
    return HARD


def _text(value: object) -> str:
    return str(value or "").strip()


def _addresses(msg: Message, names: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for name in names:
        for _, address in getaddresses([str(v) for v in msg.get_all(name, [])]):
            if "@" in address and address not in found:
                found.append(address)
    return found


def _report_parts(msg: Message, report_type: str) -> list[Message]:
    if msg.get_content_type() != "multipart/report":
        return []
    if _text(msg.get_param("report-type")).lower() != report_type:
        return []
    return [part for part in msg.walk()
            if not part.is_multipart() or part.get_content_maintype() == "message"]


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    if isinstance(payload, str):  # some parsers leave it as text
        from email import message_from_string

        return [message_from_string(chunk) for chunk in re.split(r"\r?\n\r?\n", payload) if chunk.strip()]
    return []


def _original(msg: Message) -> Message | None:
    """The original message (or its headers) enclosed in a report or bounce."""
    for part in msg.walk():
        if part is msg:
            continue
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if kind in ("text/rfc822-headers", "text/global-headers"):
            from email import message_from_string

            raw = part.get_payload(decode=True)
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(part.get_payload())
            return message_from_string(text)
    return None


def _quoted_message_ids(msg: Message) -> list[str]:
    """Message-IDs quoted anywhere below the top-level headers (enclosed originals, pasted text)."""
    found: list[str] = []
    for part in msg.walk():
        if part is not msg and part.get("message-id") and str(part["message-id"]).strip() not in found:
            found.append(str(part["message-id"]).strip())
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(part.get_payload())
        for match in _MESSAGE_ID_RE.finditer(text):
            if match.group(1) not in found:
                found.append(match.group(1))
    return found


def _envelope(msg: Message, original: Message | None, extra: list[str]) -> tuple[str, ...]:
    found = _addresses(msg, ENVELOPE_HEADERS) + extra
    if original is not None:
        found += _addresses(original, ("return-path",))
    return tuple(dict.fromkeys(found))


def _dsn(msg: Message) -> Answer | None:
    parts = [p for p in _report_parts(msg, "delivery-status") if p.get_content_type() in
             ("message/delivery-status", "message/global-delivery-status")]
    if not parts:
        return None
    failures: list[Failure] = []
    for block in _field_blocks(parts[0])[1:]:  # the first block is per-message
        action = _text(block.get("action")).lower()
        if action not in ("failed", "delayed"):
            continue  # delivered, relayed, expanded: not a bounce
        recipient = _text(block.get("final-recipient") or block.get("original-recipient"))
        address = recipient.partition(";")[2].strip() if ";" in recipient else recipient
        status = _text(block.get("status"))
        diagnostic = " ".join(_text(block.get("diagnostic-code")).partition(";")[2].split())
        kind = SOFT if action == "delayed" else bounce_kind(status, diagnostic)
        failures.append(Failure(address, kind, f"{status} {diagnostic}".strip()))
    original = _original(msg)
    ids = _quoted_message_ids(msg)
    if not failures:
        return Answer(OTHER, "a delivery report with no failure (delivered or relayed)",
                      envelope=_envelope(msg, original, []), message_ids=tuple(ids))
    kind = HARD if any(f.kind == HARD for f in failures) else SOFT
    return Answer(kind, failures[0].detail, tuple(failures), envelope=_envelope(msg, original, []),
                  message_ids=tuple(ids))


def _arf(msg: Message) -> Answer | None:
    parts = [p for p in _report_parts(msg, "feedback-report") if p.get_content_type() ==
             "message/feedback-report"]
    if not parts:
        return None
    blocks = _field_blocks(parts[0])
    fields = blocks[0] if blocks else Message()
    feedback = _text(fields.get("feedback-type")).lower() or "abuse"
    original = _original(msg)
    if feedback in ("not-spam", "auth-failure"):
        return Answer(OTHER, f"a feedback report of type {feedback}",
                      message_ids=tuple(_quoted_message_ids(msg)))
    recipients = _addresses(fields, ("original-rcpt-to",))
    if original is not None:
        recipients += [a for a in _addresses(original, ("to",)) if a not in recipients]
    mail_from = _addresses(fields, ("original-mail-from",))
    agent = _text(fields.get("user-agent"))
    return Answer(COMPLAINT, f"{feedback} report" + (f" from {agent}" if agent else ""),
                  addresses=tuple(recipients), envelope=_envelope(msg, original, mail_from),
                  message_ids=tuple(_quoted_message_ids(msg)))


def _from_daemon(msg: Message) -> bool:
    name, address = parseaddr(str(msg.get("from", "")))
    local = address.partition("@")[0]
    return bool(_DAEMON_RE.match(local) or _DAEMON_NAME_RE.search(name))


def _nonstandard_bounce(msg: Message) -> Answer | None:
    if not _from_daemon(msg) and msg.get_content_type() != "multipart/report":
        return None
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001 - its detectors trip over malformed headers: try the strict parser
        try:
            temporary, permanent = all_failures(message_from_bytes(msg.as_bytes(), policy=policy.default))
        except Exception:  # noqa: BLE001 - unreadable as a bounce: the caller reports it as other mail
            return None
    reported = [(a.decode("ascii", "replace"), HARD) for a in sorted(permanent)]
    reported += [(a.decode("ascii", "replace"), SOFT) for a in sorted(temporary - permanent)]
    words = _notification_words(msg, [address for address, _ in reported])
    failures = [Failure(address, kind, words.get(address) or
                        ("permanent failure" if kind == HARD else "temporary failure"))
                for address, kind in reported]
    if not failures:
        return None
    kind = HARD if permanent else SOFT
    subject = " ".join(_text(msg.get("subject")).split())
    return Answer(kind, f"{failures[0].detail}: {subject}"[:200], tuple(failures),
                  envelope=_envelope(msg, _original(msg), []), message_ids=tuple(_quoted_message_ids(msg)))


_QUOTE_START_RE = re.compile(r"^\s*-+\s*(below this line|original message|this is a copy)", re.I | re.M)


def _notification_words(msg: Message, addresses: list[str]) -> dict[str, str]:
    """What a non-standard bounce says about each address: its human-readable part (not the
    quoted original) from the address up to the next reported one, for the mailbox-gone rule."""
    text = ""
    for part in msg.walk():
        if part.get_content_maintype() == "message":
            break  # the enclosed original, and everything after it
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            text = (payload.decode("utf-8", "replace") if isinstance(payload, bytes)
                    else str(part.get_payload()))
            break
    quote = _QUOTE_START_RE.search(text)
    text = text[:quote.start()] if quote else text
    lowered = text.lower()
    starts = sorted((lowered.find(a.lower()), a) for a in addresses if a.lower() in lowered)
    words: dict[str, str] = {}
    for index, (start, address) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else start + 500
        words[address] = " ".join(text[start + len(address):end].strip(" <>:\r\n\t").split())[:300]
    return words


def is_auto_reply(msg: Message) -> bool:
    """RFC 3834 Auto-Submitted, or the vendor headers and subjects that mean the same."""
    auto = _text(msg.get("auto-submitted")).lower()
    if auto and not auto.startswith("no"):
        return True
    if msg.get("x-autoreply") or msg.get("x-autorespond") or msg.get("x-autoresponder"):
        return True
    if _text(msg.get("precedence")).lower() in ("auto_reply", "auto-reply"):
        return True
    return bool(_AUTO_SUBJECT_RE.match(_text(msg.get("subject"))))


def _to_mailbox(address: str, mailbox: str) -> bool:
    """``address`` is ``mailbox`` itself or one of its ``local+token@domain`` forms."""
    local, _, domain = address.lower().rpartition("@")
    base_local, _, base_domain = mailbox.lower().rpartition("@")
    return bool(base_local) and domain == base_domain and local.partition("+")[0] == base_local


def _unsubscribe(msg: Message, mailto: str) -> Answer | None:
    envelope = _addresses(msg, ENVELOPE_HEADERS)
    to_mailto = bool(mailto) and any(_to_mailbox(address, mailto) for address in envelope)
    subject = _text(msg.get("subject"))
    if not to_mailto and not _UNSUBSCRIBE_RE.search(subject):
        return None
    sender = parseaddr(str(msg.get("from", "")))[1]
    why = f"mail to {mailto}" if to_mailto else f"subject '{subject[:80]}'"
    return Answer(UNSUBSCRIBE, why, addresses=(sender,) if "@" in sender else (),
                  envelope=tuple(envelope), message_ids=tuple(_addresses_ids(msg)))


def _addresses_ids(msg: Message) -> list[str]:
    return re.findall(r"<[^<>\s]+>", " ".join(str(v) for v in (msg.get_all("in-reply-to", []) +
                                                             msg.get_all("references", []))))


def classify(msg: Message, unsubscribe_mailto: str = "") -> Answer:
    """What ``msg`` is (see the module docs for the order, which matters)."""
    for check in (_arf, _dsn, _nonstandard_bounce):
        answer = check(msg)
        if answer is not None:
            return answer
    if is_auto_reply(msg):
        return Answer(AUTO_REPLY, " ".join(_text(msg.get("subject")).split())[:120])
    answer = _unsubscribe(msg, unsubscribe_mailto)
    if answer is not None:
        return answer
    return Answer(OTHER, " ".join(_text(msg.get("subject")).split())[:120])
