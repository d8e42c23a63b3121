"""Answers that arrive as JSON from a sending service: Amazon SES notifications (through SNS,
by mail or as files), Postmark and Mailgun webhook payloads. Each becomes the same ``Answer`` a
delivery report gives, so attribution and the suppression rule do not care how it came.

* SES (``notificationType``, or ``eventType`` with event publishing): ``Bounce`` with
  ``bounceType`` Permanent / Transient / Undetermined and its subtype, ``Complaint`` with
  ``complaintFeedbackType``; ``mail.commonHeaders.messageId`` and ``mail.headers``' Message-ID
  are the proof, ``mail.source`` the envelope sender (the VERP address). An SNS envelope
  (``Type: Notification``, the notification as a string in ``Message``) is opened first.
* Postmark (``RecordType`` Bounce / SpamComplaint): ``Type`` decides; its own ``MessageID`` is
  not ours, so only a Message-ID quoted in ``Content`` (the bounce as received) or in
  ``Metadata`` proves anything.
* Mailgun (``event-data`` with ``event`` failed / complained): ``severity`` permanent or
  temporary, ``delivery-status``; ``message.headers.message-id`` is the proof.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from gigo_mail.answers.kinds import COMPLAINT, HARD, OTHER, SOFT, Answer, Failure, judged

MAX_JSON = 2_000_000  # bytes of a body read as JSON; a notification is a few KB
SES = "Amazon SES"

# SES bounce subtypes (docs.aws.amazon.com/ses/latest/dg/notification-contents.html#bounce-types):
# these say the address is dead or SES will not mail it again; suppress as a hard bounce.
_SES_GONE_SUBTYPES = frozenset({"noemail", "suppressed", "onaccountsuppressionlist"})
# Transient subtypes that are about our message, not the mailbox: recorded, nothing counted.
_SES_OUR_FAULT = frozenset({"messagetoolarge", "contentrejected", "attachmentrejected"})
_NOT_COMPLAINTS = frozenset({"not-spam", "auth-failure"})  # as for ARF reports


def _message_id(value: object) -> str:
    text = str(value or "").strip()
    if not text:
        return ""
    return text if text.startswith("<") else f"<{text}>"


def documents(text: str) -> Iterator[dict[str, Any]]:
    """Every notification in a text that holds JSON: one object or a list of them, SNS envelopes
    opened. Text around it is allowed (SNS's "email" protocol adds an unsubscribe footer)."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return
    try:
        value, _ = json.JSONDecoder().raw_decode(text, min(starts))
    except (ValueError, RecursionError):
        return
    yield from _flatten(value, 0)


def _flatten(value: object, depth: int) -> Iterator[dict[str, Any]]:
    if depth > 3:
        return
    if isinstance(value, list):
        for item in value:
            yield from _flatten(item, depth + 1)
    elif isinstance(value, dict):
        inner = value.get("Message")
        if value.get("Type") == "Notification" and isinstance(inner, str):  # an SNS envelope
            try:
                yield from _flatten(json.loads(inner), depth + 1)
            except (ValueError, RecursionError):
                return
        else:
            yield value


def from_json(doc: dict[str, Any]) -> Answer | None:
    """The answer one notification is, or None if it is not one this reads."""
    answer, service = None, ""
    if isinstance(doc.get("event-data"), dict):
        answer, service = _mailgun(doc["event-data"]), "Mailgun"
    elif "RecordType" in doc:
        answer, service = _postmark(doc), "Postmark"
    elif (doc.get("notificationType") or doc.get("eventType")) and isinstance(doc.get("mail"), dict):
        answer, service = _ses(str(doc.get("notificationType") or doc.get("eventType")), doc), SES
    elif doc.get("event") in ("failed", "complained", "delivered"):  # Mailgun's event-data alone
        answer, service = _mailgun(doc), "Mailgun"
    return replace(answer, service=service) if answer is not None else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _ses_ids(mail: dict[str, Any]) -> tuple[str, ...]:
    found = [_message_id(_dict(mail.get("commonHeaders")).get("messageId"))]
    for header in _list(mail.get("headers")):
        header = _dict(header)
        if str(header.get("name", "")).lower() == "message-id":
            found.append(_message_id(header.get("value")))
    return tuple(dict.fromkeys(i for i in found if i))


def _ses(kind: str, doc: dict[str, Any]) -> Answer:
    mail = _dict(doc.get("mail"))
    ids = _ses_ids(mail)
    envelope = tuple(a for a in (str(mail.get("source") or ""),) if "@" in a)
    if kind == "Bounce":
        bounce = _dict(doc.get("bounce"))
        kind_of = str(bounce.get("bounceType", "Undetermined"))
        subtype = str(bounce.get("bounceSubType", ""))
        recipients = _list(bounce.get("bouncedRecipients"))
        failures = tuple(f for f in (_ses_failure(kind_of, subtype, _dict(r)) for r in recipients) if f.email)
        if not failures:
            return Answer(OTHER, f"an {SES} bounce naming no recipient", message_ids=ids)
        answer_kind = HARD if any(f.kind == HARD for f in failures) else SOFT
        return Answer(answer_kind, failures[0].detail, failures, envelope=envelope, message_ids=ids)
    if kind == "Complaint":
        complaint = _dict(doc.get("complaint"))
        feedback = str(complaint.get("complaintFeedbackType") or "abuse").lower()
        if feedback in _NOT_COMPLAINTS:
            return Answer(OTHER, f"an {SES} feedback report of type {feedback}", message_ids=ids)
        who = _list(complaint.get("complainedRecipients"))
        complained = [str(_dict(r).get("emailAddress", "")) for r in who]
        agent = str(complaint.get("userAgent") or "")
        return Answer(COMPLAINT, f"{feedback} report from {SES}" + (f" ({agent})" if agent else ""),
                      addresses=tuple(a for a in complained if "@" in a), envelope=envelope, message_ids=ids)
    return Answer(OTHER, f"an {SES} {kind} notification", message_ids=ids)


def _ses_failure(kind: str, subtype: str, recipient: dict[str, Any]) -> Failure:
    email = str(recipient.get("emailAddress", "")).strip()
    words = " ".join(str(recipient.get(k) or "") for k in ("status", "diagnosticCode")).strip()
    label = f"{SES} {kind}/{subtype}".rstrip("/")
    detail = f"{words} ({label})" if words else label
    low = subtype.lower()
    if kind == "Permanent":
        if low in _SES_GONE_SUBTYPES or not words:
            return Failure(email, HARD, detail, gone=True)
        return judged(email, words, detail=detail)
    if kind == "Transient" and low not in _SES_OUR_FAULT:
        return Failure(email, SOFT, detail)
    return Failure(email, HARD, detail)  # Undetermined, or our message's fault: recorded only


_POSTMARK_GONE = frozenset({"hardbounce", "bademailaddress"})
_POSTMARK_SOFT = frozenset({"softbounce", "transient", "dnserror"})


def _postmark(doc: dict[str, Any]) -> Answer | None:
    record = str(doc.get("RecordType", ""))
    kind = str(doc.get("Type", "")).lower()
    email = str(doc.get("Email", "")).strip()
    metadata = _dict(doc.get("Metadata"))
    ids = [_message_id(v) for k, v in metadata.items() if k.lower().replace("_", "-") == "message-id"]
    ids += _quoted_ids(str(doc.get("Content") or ""))
    message_ids = tuple(dict.fromkeys(i for i in ids if i))
    envelope = tuple(a for a in (str(doc.get("From") or ""),) if "@" in a)
    if record == "SpamComplaint" or kind == "spamcomplaint":
        return Answer(COMPLAINT, "spam complaint from Postmark", addresses=(email,) if "@" in email else (),
                      envelope=envelope, message_ids=message_ids)
    if record != "Bounce" or "@" not in email:
        return None
    words = str(doc.get("Details") or "").strip()
    detail = f"{words} (Postmark {doc.get('Type')})" if words else f"Postmark {doc.get('Type')}"
    if kind in _POSTMARK_GONE:
        failure = judged(email, words, detail=detail) if words and not _says_nothing(words) \
            else Failure(email, HARD, detail, gone=True)
    elif kind in _POSTMARK_SOFT:
        failure = Failure(email, SOFT, detail)
    else:  # AutoResponder, Blocked, SpamNotification, ChallengeVerification...: nothing about the mailbox
        return Answer(OTHER, f"a Postmark {doc.get('Type')} record", message_ids=message_ids)
    return Answer(failure.kind, failure.detail, (failure,), envelope=envelope, message_ids=message_ids)


def _says_nothing(words: str) -> bool:
    """Postmark's test payloads and some records carry placeholder details."""
    return words.lower() in ("test bounce details", "")


def _mailgun(data: dict[str, Any]) -> Answer | None:
    event = str(data.get("event", ""))
    email = str(data.get("recipient", "")).strip()
    message = _dict(data.get("message"))
    headers = _dict(message.get("headers"))
    ids = tuple(i for i in (_message_id(headers.get("message-id")),) if i)
    sender = str(_dict(data.get("envelope")).get("sender") or "")
    envelope = (sender,) if "@" in sender else ()
    if event == "complained":
        return Answer(COMPLAINT, "complaint from Mailgun", addresses=(email,) if "@" in email else (),
                      envelope=envelope, message_ids=ids)
    if event != "failed" or "@" not in email:
        return Answer(OTHER, f"a Mailgun {event or 'unknown'} event", message_ids=ids) if event else None
    status = _dict(data.get("delivery-status"))
    words = " ".join(str(status.get(k) or "")
                     for k in ("code", "enhanced-code", "message", "description")).strip()
    severity = str(data.get("severity", "")).lower()
    reason = str(data.get("reason", "")).lower()
    detail = f"{words} (Mailgun {severity} {reason})".strip()
    if severity != "permanent":
        failure = Failure(email, SOFT, detail)
    elif reason == "suppress-bounce":  # Mailgun refused: the address hard-bounced before
        failure = Failure(email, HARD, detail, gone=True)
    else:
        failure = judged(email, words, detail=detail)
    return Answer(failure.kind, failure.detail, (failure,), envelope=envelope, message_ids=ids)


def _quoted_ids(text: str) -> list[str]:
    return re.findall(r"^(?:message-id):\s*(<[^<>\s]+>)", text, re.I | re.M)[:5]
