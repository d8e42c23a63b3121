"""`gigo-mail bounces` over the round-2 answers: every hard bounce and complaint suppressed (the
forwarded one under the reader's own address), nobody lost to a soft one; JSON notifications from
Amazon SES, Postmark and Mailgun through `bounces --json FILE`; Exchange Online's 5.4.1 at RCPT."""

from __future__ import annotations

import asyncio
import json
import mailbox
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import SmtpServer
from gigo_mail.address import address_key
from gigo_mail.answers.classify import REFUSED, SOFT
from gigo_mail.answers.process import AnswerStore
from gigo_mail.cli.app import app
from gigo_mail.journal.deliveries import Journal
from gigo_mail.lists.reader import Subscriber, sample_subscriber
from gigo_mail.send.engine import Sender, SendOptions
from gigo_mail.transport import SmtpEndpoint, SmtpTransport, parse_smtp_url
from support import make_newsletter

ROUND2 = Path(__file__).parents[1] / "data" / "answers" / "round2"
MID = "<672f1a2b.c0ffee5eed00.{}@gigo.dev>"
runner = CliRunner()

# who issue 011 went to, with the number in the Message-ID each answer quotes
SENT = {"lena@oldhost.example": 101, "kim.reader@aol.com": 102, "no.such.reader@yahoo.com": 103,
        "old.reader@yahoo.de": 104, "left.team@contoso.example": 105, "gone.person@fabrikam.example": 106,
        "moved.on@partner.example": 107, "forwarder@alumni.example": 108, "ivan.reader@yandex.ru": 109,
        "lost.reader@yahoo.com": 110, "hans.meier@corp.example": 111,
        "reader@flaky-dns.example": 121, "reader2@flaky-dns.example": 122,
        "reader3@flaky-dns.example": 128, "kari@x400.example": 123,
        "reader@slow-mx.example": 124, "grey@greylist.example": 125, "full.inbox@gmail.com": 126,
        "hoarder@example.com": 127, "careful.reader@gmail.com": 131, "maybe.there@hotmail.com": 132,
        "ses.gone@example.org": 141, "ses.annoyed@example.org": 142, "ses.full@example.org": 143,
        "pat@reader.example": 151, "urlaub@reader.example": 152,
        # the JSON notifications' readers
        "json.noemail@example.org": 201, "json.spam@example.org": 202, "json.transient@example.org": 203,
        "json.undetermined@example.org": 204, "json.complaint@example.org": 205,
        "json.notspam@example.org": 206,
        "json.delivered@example.org": 207, "json.sns@example.org": 208, "pm.hard@example.org": 211,
        "pm.soft@example.org": 212, "pm.complaint@example.org": 213, "mg.gone@example.org": 221,
        "mg.temp@example.org": 222, "mg.complaint@example.org": 223, "mg.spam@example.org": 224}


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = make_newsletter(tmp_path / "nl")
    monkeypatch.chdir(root)
    monkeypatch.setenv("GIGO_UNSUBSCRIBE_SECRET", "round2-secret")
    with Journal.for_root(root) as journal:
        for email, number in SENT.items():
            journal.mark_sent("011", address_key(email), email, MID.format(number), 250, "ok")
    return root


def suppressions(root: Path) -> dict[str, str]:
    with Journal.for_root(root) as journal:
        return {row.email.lower(): row.reason for row in journal.suppressions()}


def answered(root: Path, kind: str) -> set[str]:
    """The readers of issue 011 the answers store recorded an answer of ``kind`` for."""
    with AnswerStore.for_root(root) as store:
        return {email for found, email, _ in store.for_issue("011") if found == kind}


def counted(out: str, label: str) -> int:
    match = re.search(rf"^\s*{label}\s+(\d+)\b", out, re.M)
    assert match, (label, out)
    return int(match.group(1))


HARD_ROUND2 = {"lena@oldhost.example", "kim.reader@aol.com", "no.such.reader@yahoo.com",
               "old.reader@yahoo.de", "left.team@contoso.example", "gone.person@fabrikam.example",
               "moved.on@partner.example",
               "forwarder@alumni.example", "ivan.reader@yandex.ru", "ses.gone@example.org",
               "lost.reader@yahoo.com", "hans.meier@corp.example"}
SOFT_ROUND2 = {"reader@flaky-dns.example", "reader2@flaky-dns.example", "reader3@flaky-dns.example",
               "kari@x400.example",
               "reader@slow-mx.example", "grey@greylist.example", "full.inbox@gmail.com",
               "hoarder@example.com", "ses.full@example.org"}


def test_round2_mailbox_suppresses_every_hard_bounce_and_no_soft_one(root: Path, tmp_path: Path) -> None:
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for path in sorted(ROUND2.glob("*.eml")):
        box.add(path.read_bytes())
    box.close()
    result = runner.invoke(app, ["bounces", "--maildir", str(tmp_path / "Maildir"), "--limit", "100"])
    assert result.exit_code == 0, result.output
    expected = {email: "hard bounce" for email in HARD_ROUND2} | {"ses.annoyed@example.org": "complaint"}
    assert suppressions(root) == expected  # the forwarded reader, never dead.box@forward.example
    # the address a reader's mail was forwarded to is theirs, not "another address named"
    assert "other addresses named" not in result.output
    assert answered(root, SOFT) == SOFT_ROUND2
    assert answered(root, REFUSED) == {"careful.reader@gmail.com", "maybe.there@hotmail.com"}
    out = result.output
    assert (counted(out, "hard bounces"), counted(out, "soft bounces"), counted(out, "other refusals"),
            counted(out, "complaints"), counted(out, "ignored"), counted(out, "unattributed")
            ) == (12, 9, 2, 1, 2, 0)


def ses_mail(number: int, email: str) -> dict[str, Any]:
    return {"timestamp": "2024-11-12T09:14:00.000Z", "source": "newsletter@gigo.dev",
            "messageId": "0102019310a1b2c3-aaaa-000000", "destination": [email],
            "headers": [{"name": "Message-ID", "value": MID.format(number)}],
            "commonHeaders": {"messageId": MID.format(number), "to": [email],
                              "subject": "GIGO Tech Trends 011"}}


def ses_bounce(number: int, email: str, kind: str, subtype: str, status: str = "", diagnostic: str = ""
               ) -> dict[str, Any]:
    recipient = {"emailAddress": email, "action": "failed"} | ({"status": status} if status else {}) | (
        {"diagnosticCode": diagnostic} if diagnostic else {})
    return {"notificationType": "Bounce", "mail": ses_mail(number, email),
            "bounce": {"bounceType": kind, "bounceSubType": subtype, "bouncedRecipients": [recipient],
                       "timestamp": "2024-11-12T09:15:00.000Z", "feedbackId": f"feed-{number}"}}


def ses_complaint(number: int, email: str, feedback: str | None) -> dict[str, Any]:
    complaint: dict[str, Any] = {"complainedRecipients": [{"emailAddress": email}],
                                 "timestamp": "2024-11-12T10:00:00.000Z", "feedbackId": f"feed-{number}"}
    if feedback:
        complaint["complaintFeedbackType"] = feedback
    return {"eventType": "Complaint", "mail": ses_mail(number, email), "complaint": complaint}


NOTIFICATIONS: list[dict[str, Any]] = [
    ses_bounce(201, "json.noemail@example.org", "Permanent", "NoEmail"),
    ses_bounce(202, "json.spam@example.org", "Permanent", "General", "5.7.1",
               "smtp; 550 5.7.1 Message rejected as spam"),
    ses_bounce(203, "json.transient@example.org", "Transient", "General", "4.4.7", "smtp; 421 timeout"),
    ses_bounce(204, "json.undetermined@example.org", "Undetermined", "Undetermined"),
    ses_complaint(205, "json.complaint@example.org", "abuse"),
    ses_complaint(206, "json.notspam@example.org", "not-spam"),
    {"notificationType": "Delivery", "mail": ses_mail(207, "json.delivered@example.org"),
     "delivery": {"recipients": ["json.delivered@example.org"], "smtpResponse": "250 ok"}},
    {"Type": "Notification", "MessageId": "sns-1", "Timestamp": "2024-11-12T09:20:00.000Z",
     "Message": json.dumps(ses_bounce(208, "json.sns@example.org", "Permanent", "General", "5.1.1",
                                      "smtp; 550 5.1.1 user unknown"))},
    {"RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce", "TypeCode": 1,
     "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Email": "pm.hard@example.org",
     "From": "newsletter@gigo.dev", "BouncedAt": "2024-11-12T09:16:00Z", "Inactive": True,
     "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
     "Content": f"Return-Path: <>\nTo: newsletter@gigo.dev\n\nMessage-ID: {MID.format(211)}\n"},
    {"RecordType": "Bounce", "Type": "SoftBounce", "TypeCode": 4096, "Email": "pm.soft@example.org",
     "Details": "smtp;452 4.2.2 mailbox full", "Metadata": {"message-id": MID.format(212)}},
    {"RecordType": "SpamComplaint", "Type": "SpamComplaint", "Email": "pm.complaint@example.org",
     "Metadata": {"message-id": MID.format(213)}},
    {"signature": {"timestamp": "1731402944", "token": "t", "signature": "s"},
     "event-data": {"event": "failed", "severity": "permanent", "reason": "bounce",
                    "recipient": "mg.gone@example.org",
                    "timestamp": 1731402944.5, "message": {"headers": {"message-id": MID.format(221)[1:-1]}},
                    "delivery-status": {"code": 550, "message": "5.1.1 The email account that you tried to "
                                        "reach does not exist", "description": ""}}},
    {"event-data": {"event": "failed", "severity": "temporary", "reason": "generic",
                    "recipient": "mg.temp@example.org",
                    "message": {"headers": {"message-id": MID.format(222)}},
                    "delivery-status": {"code": 451, "message": "4.3.0 try again later"}}},
    {"event-data": {"event": "complained", "recipient": "mg.complaint@example.org",
                    "message": {"headers": {"message-id": MID.format(223)}}}},
    {"event-data": {"event": "failed", "severity": "permanent", "reason": "generic",
                    "recipient": "mg.spam@example.org",
                    "message": {"headers": {"message-id": MID.format(224)}},
                    "delivery-status": {"code": 554, "message": "5.7.1 rejected by policy"}}},
]


def test_json_notifications_from_a_file(root: Path, tmp_path: Path) -> None:
    path = tmp_path / "feedback.json"
    path.write_text(json.dumps(NOTIFICATIONS, indent=1))
    result = runner.invoke(app, ["bounces", "--json", str(path), "--limit", "100"])
    assert result.exit_code == 0, result.output
    assert suppressions(root) == {
        "json.noemail@example.org": "hard bounce", "json.sns@example.org": "hard bounce",
        "pm.hard@example.org": "hard bounce", "mg.gone@example.org": "hard bounce",
        "json.complaint@example.org": "complaint", "pm.complaint@example.org": "complaint",
        "mg.complaint@example.org": "complaint"}
    assert answered(root, SOFT) == {"json.transient@example.org", "pm.soft@example.org",
                                    "mg.temp@example.org"}
    assert answered(root, REFUSED) == {"json.spam@example.org", "json.undetermined@example.org",
                                       "mg.spam@example.org"}
    out = result.output
    assert (counted(out, "hard bounces"), counted(out, "other refusals"), counted(out, "soft bounces"),
            counted(out, "complaints"), counted(out, "ignored"), counted(out, "unattributed")
            ) == (4, 3, 3, 3, 2, 0)
    again = runner.invoke(app, ["bounces", "--json", str(path)])
    assert again.exit_code == 0 and counted(again.output, "already processed") == len(NOTIFICATIONS)


def test_one_json_notification_and_a_dry_run(root: Path, tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(NOTIFICATIONS[0]))
    result = runner.invoke(app, ["bounces", "--json", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would suppress" in result.output and suppressions(root) == {}
    assert runner.invoke(app, ["bounces", "--json", str(path)]).exit_code == 0
    assert suppressions(root) == {"json.noemail@example.org": "hard bounce"}


def test_a_notification_that_proves_nothing_is_left_alone(root: Path, tmp_path: Path) -> None:
    """A Postmark record carries only Postmark's own MessageID: no proof of which message it is."""
    path = tmp_path / "stranger.json"
    path.write_text(json.dumps([{"RecordType": "Bounce", "Type": "HardBounce", "Email": "nobody@example.org",
                                 "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483"}]))
    result = runner.invoke(app, ["bounces", "--json", str(path)])
    assert result.exit_code == 0, result.output
    assert counted(result.output, "unattributed") == 1 and suppressions(root) == {}


@pytest.mark.parametrize(("content", "words"), [
    ("{not json", "is not JSON"), ("[1, 2", "is not JSON"), (None, "cannot read it"),
])
def test_a_bad_json_file_is_one_line(root: Path, tmp_path: Path, content: str | None, words: str) -> None:
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    result = runner.invoke(app, ["bounces", "--json", str(path)])
    assert result.exit_code == 1, result.output
    assert words in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_json_and_a_mailbox_together_is_a_usage_error(root: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["bounces", "--json", str(tmp_path / "a.json"),
                                 "--mbox", str(tmp_path / "b")])
    assert result.exit_code == 2 and "--json" in result.output


@dataclass(frozen=True)
class Msg:
    message_id: str
    data: bytes


def build(subscriber: Subscriber) -> Msg:
    return Msg(f"<{subscriber.key}@gigo.example>",
               f"From: <news@gigo.example>\r\nTo: <{subscriber.smtp_address}>\r\nSubject: t\r\n\r\nhi\r\n"
               .encode())


@pytest.mark.slow
def test_exchange_online_5_4_1_at_rcpt_is_the_recipients_refusal(start_smtp: Callable[..., SmtpServer],
                                                                 tmp_path: Path) -> None:
    """'Access denied' sounds like the session's problem; with 5.4.1 and 'Recipient address rejected'
    it is Exchange Online saying the recipient does not exist: the run goes on, that reader is
    suppressed, the others are sent."""
    server = start_smtp()
    server.handler.rcpt_reply["left@contoso.example"] = (
        "550 5.4.1 Recipient address rejected: Access denied. AS(201806281) "
        "[BN1NAM02FT022.eop-nam02.prod.protection.outlook.com]")
    rows = [sample_subscriber(a) for a in ("ann@example.org", "left@contoso.example", "bo@example.org")]
    with Journal(tmp_path / ".gigo" / "journal.sqlite3") as journal:
        where = SmtpEndpoint(parse_smtp_url(server.url), timeout=5)
        sender = Sender(issue_key="011", envelope_from="news@gigo.example", build=build,  # type: ignore[arg-type]
                        transport_factory=lambda: SmtpTransport(where),
                        options=SendOptions(concurrency=1, attempts=2, backoff=0.01, backoff_max=0.02),
                        journal=journal)
        result = asyncio.run(sender.run(rows))
        assert (result.stats.sent, result.stats.failed) == (2, 1), result
        (entry,) = journal.suppressions()
        assert entry.email == "left@contoso.example"
        assert entry.reason.startswith("bounced: 550 5.4.1 Recipient address rejected")


def test_an_ses_notification_proven_by_its_return_address(root: Path, tmp_path: Path) -> None:
    """SES's ``mail.source`` is the envelope sender the message went out with: a VERP address names
    its reader even when the notification quotes no Message-ID; one whose token does not verify
    names nobody."""
    from gigo_mail.send.verp import VerpAddresses

    (root / "gigo-mail.toml").write_text((root / "gigo-mail.toml").read_text()
                                         + '\n[bounces]\nreturn_path = "bounce@gigo.dev"\nverp = true\n')
    verp = VerpAddresses("bounce@gigo.dev", b"round2-secret", "011").address(
        address_key("json.sns@example.org"))
    proven = ses_bounce(1, "forwarded.elsewhere@other.example", "Permanent", "NoEmail")  # names no reader
    forged = ses_bounce(2, "stranger@example.org", "Permanent", "NoEmail")
    for notification, source in ((proven, verp), (forged, "bounce+011." + "b" * 20 + "@gigo.dev")):
        notification["mail"] = {"source": source}
    path = tmp_path / "verp.json"
    path.write_text(json.dumps([proven, forged]))
    result = runner.invoke(app, ["bounces", "--json", str(path)])
    assert result.exit_code == 0, result.output
    assert suppressions(root) == {"json.sns@example.org": "hard bounce"}
    assert counted(result.output, "unattributed") == 1


def test_a_forwarded_reader_proven_by_a_macd_message_id(root: Path, tmp_path: Path) -> None:
    """The reader's own (MAC'd) Message-ID proves the message; the report names the address it was
    forwarded to as failed and the reader as Original-Recipient: the reader is suppressed, once."""
    from gigo_mail.send.msgid import MessageIds

    reader = "alumna@alumni.example"
    message_id = MessageIds(b"round2-secret", "012", "gigo.dev").make(address_key(reader))
    with Journal.for_root(root) as journal:
        journal.mark_sent("012", address_key(reader), reader, message_id, 250, "ok")
    dsn = (ROUND2 / "postfix-forwarded-original-recipient.eml").read_bytes()
    dsn = dsn.replace(b"forwarder@alumni.example", reader.encode()).replace(
        MID.format(108).encode(), message_id.encode())
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    box.add(dsn)
    box.close()
    result = runner.invoke(app, ["bounces", "--maildir", str(tmp_path / "Maildir")])
    assert result.exit_code == 0, result.output
    assert suppressions(root) == {reader: "hard bounce"}
    assert "other addresses named" not in result.output
