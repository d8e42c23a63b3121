"""What an answer to a send is (a bounce, a complaint, an unsubscribe request, an auto-reply).

Pure classification; tying an answer to a subscriber is ``process``' job.

* RFC 3464 delivery status notifications (``report-type=delivery-status``), found at any
  depth (a gateway may wrap the report in multipart/mixed or forward it as an attachment):
  one failure per recipient, with its Original-Recipient when a forward changed the address.
* RFC 5965 feedback reports (ARF, ``report-type=feedback-report``): a complaint.
* Non-standard bounces (Exchange, qmail, Exim, old Postfix, Yahoo, ...): flufl.bounce's
  detectors, only for mail from a mailer daemon, so that a person's reply is never read
  as a bounce by a heuristic.
* A sending service's JSON notification in the body (Amazon SES through SNS): read by
  ``notifications``, as ``bounces --json`` reads the same JSON from a file.
* RFC 3834 auto-replies (``Auto-Submitted`` other than ``no``, and the vendor headers
  that mean the same): ignored. Checked after the reports, because DSNs carry
  ``Auto-Submitted: auto-replied`` too.
* Mail to the ``unsubscribe_mailto`` address, or with "unsubscribe" in its subject: a
  request from its From address.

Whether a failure is hard or soft, and whether it says the mailbox is gone, is the one rule in
``transport.gone`` (the send path asks it for a 5xx at RCPT): words and codes as data in
``data/bounces/wordings.toml``. Only a failure that says the mailbox is absent or disabled
suppresses; a temporary one (4.x.x, mailbox full, a timeout, "try again") counts a soft bounce;
every other permanent failure (policy, spam, size, DMARC) is recorded and suppresses nothing.
"""

from __future__ import annotations

import logging
import re
from email import message_from_bytes, policy
from email.message import Message
from email.utils import getaddresses, parseaddr

from gigo_mail.answers.kinds import (
    AUTO_REPLY,
    COMPLAINT,
    HARD,
    OTHER,
    REFUSED,
    SOFT,
    UNSUBSCRIBE,
    Answer,
    Failure,
    judged,
)
from gigo_mail.answers.notifications import MAX_JSON, documents, from_json
from gigo_mail.transport.gone import REFUSED as REFUSED_VERDICT
from gigo_mail.transport.gone import TEMPORARY, specific_code, verdict

__all__ = ["AUTO_REPLY", "COMPLAINT", "ENVELOPE_HEADERS", "HARD", "OTHER", "REFUSED", "SOFT", "UNSUBSCRIBE",
           "Answer", "Failure", "bounce_kind", "classify", "is_auto_reply"]

# flufl.bounce logs a traceback for every detector that trips over a malformed message; a hostile
# mailbox must not print them (the failure is handled below).
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())
logging.getLogger("flufl.bounce").propagate = False


_MESSAGE_ID_RE = re.compile(r"^(?:message-id|original-message-id):\s*(<[^<>\s]+>)", re.I | re.M)
_DAEMON_RE = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mailer|bounces?|noreply-dsn)$", re.I)
_DAEMON_NAME_RE = re.compile(r"mail delivery (system|subsystem)|mailer.?daemon", re.I)
_UNSUBSCRIBE_RE = re.compile(r"\bunsubscribe\b", re.I)
# Outlook's and others' auto-reply subjects, in the languages of the big European markets too.
_AUTO_SUBJECT_RE = re.compile(r"^\s*(out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response)|"
                              r"autoreply|abwesenheit(snotiz)?|automatische antwort|r[ée]ponse automatique|"
                              r"respuesta autom[áa]tica|risposta automatica|automatisch antwoord|"
                              r"resposta autom[áa]tica|autosvar|absence|vacation)\b", re.I)
# Headers that name the address a message was delivered to, in the order they are trusted.
ENVELOPE_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to", "cc")


def bounce_kind(status: str, diagnostic: str = "") -> str:
    """HARD for a permanent failure, SOFT for one that may pass (a 4.x.x status, a 4xx reply, or
    the words of a timeout or a "try again": ``transport.gone.verdict``). The one rule for bounces."""
    return SOFT if verdict(f"{status} {diagnostic}") == TEMPORARY else HARD


def _text(value: object) -> str:
    return str(value or "").strip()


def _addresses(msg: Message, names: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    for name in names:
        for _, address in getaddresses([str(v) for v in msg.get_all(name, [])]):
            if "@" in address and address not in found:
                found.append(address)
    return found


def _report(msg: Message, types: tuple[str, ...]) -> tuple[Message, Message] | None:
    """(the part holding it, the status part) of the first report at any depth: a gateway may
    wrap a report in multipart/mixed, or forward it as an attachment."""
    for part in msg.walk():
        if not part.is_multipart() or part.get_content_maintype() == "message":
            continue
        payload = part.get_payload()
        for child in payload if isinstance(payload, list) else []:
            if isinstance(child, Message) and child.get_content_type() in types:
                return part, child
    return None


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if part.get_content_type() == "message/global-delivery-status" and isinstance(payload, list) \
            and len(payload) == 1 and isinstance(payload[0], Message):
        payload = payload[0].as_string()  # parsed as one enclosed message: its blocks are in the body
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


def _address(value: object) -> str:
    text = _text(value)
    return text.partition(";")[2].strip() if ";" in text else text


def _dsn(msg: Message) -> Answer | None:
    found = _report(msg, ("message/delivery-status", "message/global-delivery-status"))
    if found is None:
        return None
    report, status_part = found
    failures: list[Failure] = []
    human: dict[str, str] | None = None
    for block in _field_blocks(status_part)[1:]:  # the first block is per-message
        action = _text(block.get("action")).lower()
        if action not in ("failed", "delayed"):
            continue  # delivered, relayed, expanded: not a bounce
        final, first = _address(block.get("final-recipient")), _address(block.get("original-recipient"))
        status = _text(block.get("status"))
        diagnostic = " ".join(_text(block.get("diagnostic-code")).partition(";")[2].split())
        words = f"{status} {diagnostic}".strip()
        if verdict(words) == REFUSED_VERDICT and specific_code(words) is None:
            # only a generic status and no words that decide (Lotus Domino writes "5.0.0" and puts
            # "not listed in Domino Directory" in the notification): the human-readable part decides
            human = _notification_words(report, [a for a in (final, first) if a]) if human is None else human
            said = human.get(final) or human.get(first) or ""
            words = f"{words} {said}".strip()[:400]
        original = first if first and first.lower() != (final or first).lower() else ""
        failures.append(judged(final or first, words, original=original, delayed=action == "delayed"))
    original_msg = _original(report)
    ids = _quoted_message_ids(msg)
    if not failures:
        return Answer(OTHER, "a delivery report with no failure (delivered or relayed)",
                      envelope=_envelope(msg, original_msg, []), message_ids=tuple(ids))
    kind = HARD if any(f.kind == HARD for f in failures) else SOFT
    return Answer(kind, failures[0].detail, tuple(failures), envelope=_envelope(msg, original_msg, []),
                  message_ids=tuple(ids))


def _arf(msg: Message) -> Answer | None:
    found = _report(msg, ("message/feedback-report",))
    if found is None:
        return None
    report, feedback_part = found
    blocks = _field_blocks(feedback_part)
    fields = blocks[0] if blocks else Message()
    feedback = _text(fields.get("feedback-type")).lower() or "abuse"
    original = _original(report)
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
    from flufl.bounce import all_failures  # its detectors' patterns load when a bounce is read

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
    failures = [judged(address, words.get(address) or "permanent failure") if kind == HARD
                else Failure(address, SOFT, words.get(address) or "temporary failure")
                for address, kind in reported]
    if not failures:
        return None
    kind = HARD if any(f.kind == HARD for f in failures) else SOFT
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


def _notification(msg: Message) -> Answer | None:
    """A sending service's JSON notification in a mail body (Amazon SES through SNS, by the
    "email" or "email-json" protocol), read by ``notifications``."""
    for part in msg.walk():
        if part.get_content_maintype() == "message":
            break  # an enclosed original is not the notification
        if part.get_content_type() not in ("text/plain", "application/json"):
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes) or len(payload) > MAX_JSON:
            continue
        for doc in documents(payload.decode("utf-8", "replace")):
            answer = from_json(doc)
            if answer is not None:
                return answer
    return None


def classify(msg: Message, unsubscribe_mailto: str = "") -> Answer:
    """What ``msg`` is (see the module docs for the order, which matters)."""
    for check in (_arf, _dsn, _nonstandard_bounce, _notification):
        answer = check(msg)
        if answer is not None:
            return answer
    if is_auto_reply(msg):
        return Answer(AUTO_REPLY, " ".join(_text(msg.get("subject")).split())[:120])
    answer = _unsubscribe(msg, unsubscribe_mailto)
    if answer is not None:
        return answer
    return Answer(OTHER, " ".join(_text(msg.get("subject")).split())[:120])
