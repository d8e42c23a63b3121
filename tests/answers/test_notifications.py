"""JSON notifications read as answers: Amazon SES bounce types and subtypes and complaint feedback
types, SNS envelopes and the SNS mail footer, Postmark and Mailgun shapes, and hostile JSON."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from gigo_mail.answers.classify import COMPLAINT, HARD, OTHER, SOFT
from gigo_mail.answers.notifications import documents, from_json

MID = "<672f1a2b.c0ffee5eed00.9@gigo.dev>"


def ses(kind: str, subtype: str, status: str = "", diagnostic: str = "") -> dict[str, Any]:
    recipient = {"emailAddress": "ann@example.org", "action": "failed"}
    if status:
        recipient["status"] = status
    if diagnostic:
        recipient["diagnosticCode"] = diagnostic
    return {"notificationType": "Bounce",
            "bounce": {"bounceType": kind, "bounceSubType": subtype, "bouncedRecipients": [recipient]},
            "mail": {"source": "bounce+011.abc@gigo.dev", "commonHeaders": {"messageId": MID}}}


@pytest.mark.parametrize(("kind", "subtype", "status", "diagnostic", "answer", "gone"), [
    ("Permanent", "General", "5.1.1", "smtp; 550 5.1.1 user unknown", HARD, True),
    ("Permanent", "General", "", "", HARD, True),  # SES: "remove the recipient's email address"
    ("Permanent", "General", "5.7.1", "smtp; 550 5.7.1 Message rejected as spam", HARD, False),
    ("Permanent", "General", "5.2.2", "smtp; 552 5.2.2 Mailbox full", SOFT, False),  # the one rule
    ("Permanent", "NoEmail", "", "", HARD, True),
    ("Permanent", "Suppressed", "5.1.1", "Amazon SES has suppressed sending to this address because it has a "
     "recent history of bouncing as an invalid address.", HARD, True),
    ("Permanent", "OnAccountSuppressionList", "", "", HARD, True),
    ("Transient", "General", "4.4.7", "smtp; 421 timed out", SOFT, False),
    ("Transient", "MailboxFull", "5.2.2", "smtp; 552 5.2.2 over quota", SOFT, False),
    # about our message, not the mailbox: recorded only
    ("Transient", "MessageTooLarge", "5.3.4", "smtp; 552 5.3.4 message too big", HARD, False),
    ("Transient", "ContentRejected", "5.7.1", "smtp; 554 5.7.1 content rejected", HARD, False),
    ("Transient", "AttachmentRejected", "", "", HARD, False),
    ("Undetermined", "Undetermined", "", "", HARD, False),  # nobody can tell: recorded, never suppressed
])
def test_ses_bounce_types_and_subtypes(kind: str, subtype: str, status: str, diagnostic: str, answer: str,
                                       gone: bool) -> None:
    found = from_json(ses(kind, subtype, status, diagnostic))
    assert found is not None and found.kind == answer
    (failure,) = found.failures
    assert failure.email == "ann@example.org" and failure.mailbox_gone is gone, failure
    assert found.message_ids == (MID,) and found.envelope == ("bounce+011.abc@gigo.dev",)
    assert found.service == "Amazon SES"
    assert f"{kind}/{subtype}" in failure.detail


@pytest.mark.parametrize(("feedback", "kind"), [
    ("abuse", COMPLAINT), ("fraud", COMPLAINT), ("virus", COMPLAINT), ("other", COMPLAINT), (None, COMPLAINT),
    ("not-spam", OTHER), ("auth-failure", OTHER),
])
def test_ses_complaint_feedback_types(feedback: str | None, kind: str) -> None:
    complaint: dict[str, Any] = {"complainedRecipients": [{"emailAddress": "ann@example.org"}]}
    if feedback:
        complaint["complaintFeedbackType"] = feedback
    found = from_json({"eventType": "Complaint", "complaint": complaint,
                       "mail": {"commonHeaders": {"messageId": MID.strip("<>")}}})
    assert found is not None and found.kind == kind
    assert found.message_ids == (MID,)  # a Message-ID without its angle brackets gets them
    if kind == COMPLAINT:
        assert found.addresses == ("ann@example.org",)


def test_sns_mail_with_its_footer_and_an_envelope_and_a_list() -> None:
    message = json.dumps(ses("Permanent", "NoEmail"))
    footer = "\n\n--\nIf you wish to stop receiving notifications from this topic, please click ...\n"
    assert [d["notificationType"] for d in documents(message + footer)] == ["Bounce"]
    envelope = json.dumps({"Type": "Notification", "Message": message})
    assert [d["bounce"]["bounceSubType"] for d in documents(envelope)] == ["NoEmail"]
    assert len(list(documents(json.dumps([json.loads(envelope), json.loads(message)])))) == 2


@pytest.mark.parametrize("text", ["", "no json here", "{", "[" * 100_000, '{"Type": "Notification", '
                                  '"Message": "{not json"}', "[1, 2, 3]", '"a string"', "{}"])
def test_garbage_gives_nothing_and_never_raises(text: str) -> None:
    for doc in documents(text):
        assert from_json(doc) is None


def test_postmark_and_mailgun_shapes() -> None:
    postmark = from_json({"RecordType": "Bounce", "Type": "HardBounce", "Email": "ann@example.org",
                          "Details": "smtp;550 5.1.1 user unknown", "Metadata": {"message-id": MID}})
    assert postmark is not None and postmark.kind == HARD and postmark.failures[0].mailbox_gone
    assert postmark.message_ids == (MID,)
    auto = from_json({"RecordType": "Bounce", "Type": "AutoResponder", "Email": "ann@example.org"})
    assert auto is not None and auto.kind == OTHER
    mailgun = from_json({"event-data": {"event": "failed", "severity": "permanent",
                                        "reason": "suppress-bounce", "recipient": "ann@example.org",
                                        "message": {"headers": {"message-id": MID.strip("<>")}}}})
    assert mailgun is not None and mailgun.failures[0].mailbox_gone and mailgun.message_ids == (MID,)
    assert (postmark.service, mailgun.service) == ("Postmark", "Mailgun")
    soft = from_json({"event": "failed", "severity": "temporary", "recipient": "ann@example.org",
                      "delivery-status": {"code": 550, "message": "5.1.1 user unknown"}})
    assert soft is not None and soft.kind == SOFT and not soft.failures[0].mailbox_gone


def test_mangled_notifications_never_raise() -> None:
    rnd = random.Random(19)
    base = json.dumps([ses("Permanent", "General", "5.1.1", "smtp; 550 5.1.1 x"),
                       {"RecordType": "Bounce", "Type": "HardBounce", "Email": "a@b.c"},
                       {"event-data": {"event": "failed", "severity": "permanent", "recipient": "a@b.c"}}])
    for _ in range(300):
        data = list(base)
        for _ in range(rnd.randint(1, 8)):
            data[rnd.randrange(len(data))] = rnd.choice('{}[]":,0a@ ')
        for doc in documents("".join(data)):
            from_json(doc)  # any answer or None, never an exception
    for odd in ({"notificationType": 3, "mail": {"headers": "x"}, "bounce": {"bouncedRecipients": [1, None]}},
                {"RecordType": ["Bounce"], "Email": {"a": 1}}, {"event-data": {"event": None}}):
        from_json(odd)  # type: ignore[arg-type]
