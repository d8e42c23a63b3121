"""Bounce wording as data: every provider wording in ``data/bounces/wordings.toml`` read from a full
delivery report and as a reply at RCPT, and a second corpus of real-world answers (round 2): words
that decide when the code is generic, reports wrapped by gateways, forwarded recipients, timeouts
and "try again" that must stay soft, and Amazon SES notifications that arrive by mail."""

from __future__ import annotations

import textwrap
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path

import pytest

from gigo_mail.answers.classify import AUTO_REPLY, COMPLAINT, HARD, OTHER, SOFT, bounce_kind, classify
from gigo_mail.errors import SMTPPermanentError, SMTPSessionRefused
from gigo_mail.transport.gone import GONE, REFUSED, TEMPORARY, mailbox_gone, rules, verdict
from gigo_mail.transport.replies import _error_for
from gigo_mail.transport.wire import Reply

ROUND2 = Path(__file__).parents[1] / "data" / "answers" / "round2"
WORDINGS = rules().wordings


def full_dsn(recipient: str, status: str, diagnostic: str) -> Message:
    """A delivery report as Postfix writes one around a remote server's reply."""
    folded = "\n    ".join(textwrap.wrap(diagnostic, 76, break_long_words=False, break_on_hyphens=False))
    text = f"""Return-Path: <>
From: MAILER-DAEMON@mail.example.net (Mail Delivery System)
To: newsletter@gigo.dev
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"

--B0UND
Content-Type: text/plain; charset=us-ascii

<{recipient}>: host mx.example.org[192.0.2.25] said: {folded}

--B0UND
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.net

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: failed
Status: {status}
Diagnostic-Code: smtp; {folded}

--B0UND
Content-Type: text/rfc822-headers

From: GIGO Tech Trends <newsletter@gigo.dev>
To: {recipient}
Message-ID: <672f1a2b.c0ffee5eed00.1@gigo.dev>

--B0UND--
"""
    return message_from_bytes(text.replace("\n", "\r\n").encode(), policy=policy.compat32)


@pytest.mark.parametrize("entry", WORDINGS, ids=[f"{i:02d}-{w.provider}" for i, w in enumerate(WORDINGS)])
def test_each_provider_wording_in_a_full_report_and_at_rcpt(entry) -> None:  # type: ignore[no-untyped-def]
    """The table's own example, with the status a reporting MTA writes beside it, gets the table's
    verdict; and the same words as a 5xx at RCPT suppress exactly when they say "gone"."""
    answer = classify(full_dsn("reader@example.org", entry.status, entry.example))
    (failure,) = answer.failures
    assert failure.email == "reader@example.org"
    assert failure.kind == (SOFT if entry.verdict == TEMPORARY else HARD), (entry.provider, failure)
    assert failure.mailbox_gone is (entry.verdict == GONE), (entry.provider, failure)
    assert mailbox_gone(550, entry.example) is (entry.verdict == GONE)
    assert entry.source, entry.provider  # every wording says where it was seen


def test_the_table_covers_the_providers_the_issue_names() -> None:
    names = " ".join(w.provider for w in WORDINGS)
    for provider in ("Gmail", "Google Workspace", "Exchange Online", "Outlook.com", "Yahoo/AOL", "iCloud",
                     "GMX", "Web.de", "Orange", "Yandex", "Mail.ru", "Zoho", "Lotus Domino", "qmail", "Exim",
                     "Postfix", "Sendmail", "X.400"):
        assert provider in names, provider
    statuses = {w.status for w in WORDINGS}
    assert {"5.1.10", "5.4.1"} <= statuses


@pytest.mark.parametrize(("text", "said"), [
    ("5.0.0 550 User unknown", GONE),  # Postfix's generic status around a remote reply: the words decide
    ("5.0.0 554 delivery error: dd mailbox not found ann@aol.com - mta-v12", GONE),
    ("553 5.3.0 Addressee unknown", GONE),
    ("5.0.0 550 5.1.1 <ann@example.org>: user unknown", GONE),  # a specific code inside the diagnostic
    ("5.0.0 Host or domain name not found. Name service error for name=x.example type=MX: Host not found, "
     "try again", TEMPORARY),
    ("5.4.4 Host or domain name not found. Name service error for name=x.example type=A: Host not found",
     GONE),  # NXDOMAIN: the domain does not exist
    ("5.4.7 Maximum-Time-Expired", TEMPORARY), ("5.0.0 retry timeout exceeded", TEMPORARY),
    ("5.4.1 connect to mx.example.org: Connection timed out", TEMPORARY),
    ("5.2.2 552 5.2.2 Mailbox full", TEMPORARY), ("4.2.2 452 4.2.2 over quota", TEMPORARY),
    ("5.7.1 550 5.7.1 user unknown is what we say to spammers", REFUSED),  # a specific code still decides
    # Postfix's own policy refusal: not Exchange Online's 5.4.1
    ("5.7.1 554 5.7.1 <ann@example.org>: Recipient address rejected: Access denied", REFUSED),
    ("5.4.1 550 5.4.1 Relay Access Denied ATTR36", REFUSED),
    ("5.7.26 550 5.7.26 Unauthenticated email from gigo.dev is not accepted due to domain's DMARC policy",
     REFUSED),
    ("5.0.0 550 Requested action not taken: mailbox unavailable", REFUSED),  # RFC 5321's text for any 550
    ("550 <bounce@gigo.dev>: Sender address rejected: Domain not found", REFUSED),  # our address, not theirs
    ("550 Recipient does not have an account here", GONE), ("550 User is inactive", GONE),
    ("5.0.0 This account has been temporarily suspended", TEMPORARY),
    ("", REFUSED),
])
def test_the_order_of_the_rule(text: str, said: str) -> None:
    assert verdict(text) == said


@pytest.mark.parametrize(("reply", "error"), [
    ("550 5.4.1 Recipient address rejected: Access denied. AS(201806281)", SMTPPermanentError),
    ("554 5.7.1 <ann@example.org>: Recipient address rejected: Access denied", SMTPSessionRefused),
    ("550 <bounce@gigo.dev>: Sender address rejected: Domain not found", SMTPSessionRefused),
    ("550 5.1.1 <ann@example.org>: Recipient address rejected: User unknown", SMTPPermanentError),
])
def test_whom_a_refusal_at_rcpt_is_about(reply: str, error: type) -> None:
    """Exchange Online's 5.4.1 "Access denied" is the recipient's (no such mailbox), so the run goes
    on; Postfix's own "Access denied" and a refused sender stay the session's, as before."""
    code, _, text = reply.partition(" ")
    assert type(_error_for(Reply(int(code), text), "RCPT TO", "ann@example.org")) is error


def test_bounce_kind_follows_the_rule() -> None:
    assert bounce_kind("5.0.0", "X-Postfix; Host not found, try again") == SOFT
    assert bounce_kind("5.4.7", "X-400; Maximum-Time-Expired") == SOFT
    assert bounce_kind("5.0.0", "smtp; 550 User unknown") == HARD


# file -> (kind, reported address, original recipient, the failure says the mailbox is gone)
ROUND2_CORPUS = {
    "postfix-5.0.0-remote-user-unknown.eml": (HARD, "lena@oldhost.example", "", True),
    "postfix-yahoo-dd-mailbox-not-found.eml": (HARD, "kim.reader@aol.com", "", True),
    "postfix-yahoo-dd-no-account.eml": (HARD, "no.such.reader@yahoo.com", "", True),
    "postfix-yahoo-dd-disabled.eml": (HARD, "old.reader@yahoo.de", "", True),
    "postfix-exchange-online-5.4.1-dbeb.eml": (HARD, "left.team@contoso.example", "", True),
    "postfix-exchange-online-5.1.10.eml": (HARD, "gone.person@fabrikam.example", "", True),
    "postfix-gateway-wrapped-5.1.1.eml": (HARD, "moved.on@partner.example", "", True),
    "postfix-forwarded-original-recipient.eml": (HARD, "dead.box@forward.example", "forwarder@alumni.example",
                                                 True),
    "postfix-yandex-5.7.1-no-such-user.eml": (HARD, "ivan.reader@yandex.ru", "", True),
    "yahoo-failure-notice-no-account.eml": (HARD, "lost.reader@yahoo.com", "", True),  # Yahoo's own format
    # Domino's report says only 5.0.0; "not listed in Domino Directory" is in the notification
    "domino-not-listed-in-directory.eml": (HARD, "hans.meier@corp.example", "", True),
    "postfix-host-not-found-try-again.eml": (SOFT, "reader@flaky-dns.example", "", False),
    "postfix-host-not-found-try-again-5.4.4.eml": (SOFT, "reader2@flaky-dns.example", "", False),
    # the old, non-standard notification, read by flufl.bounce and then by the words
    "postfix-old-host-not-found-try-again.eml": (SOFT, "reader3@flaky-dns.example", "", False),
    "x400-maximum-time-expired.eml": (SOFT, "kari@x400.example", "", False),
    "postfix-connection-timed-out.eml": (SOFT, "reader@slow-mx.example", "", False),
    "postfix-greylisted-delayed.eml": (SOFT, "grey@greylist.example", "", False),
    "postfix-gmail-4.2.2-over-quota.eml": (SOFT, "full.inbox@gmail.com", "", False),
    "postfix-5.2.2-mailbox-full.eml": (SOFT, "hoarder@example.com", "", False),
    "postfix-gmail-dmarc-5.7.26.eml": (HARD, "careful.reader@gmail.com", "", False),
    "postfix-outlook-5.5.0-mailbox-unavailable.eml": (HARD, "maybe.there@hotmail.com", "", False),
    "ses-permanent-bounce-sns-email-json.eml": (HARD, "ses.gone@example.org", "", True),
    "ses-transient-mailbox-full-sns-email-json.eml": (SOFT, "ses.full@example.org", "", False),
    "ses-complaint-sns-email.eml": (COMPLAINT, "ses.annoyed@example.org", "", False),
    "challenge-response.eml": (OTHER, "", "", False),
    "out-of-office-german.eml": (AUTO_REPLY, "", "", False),  # "Abwesenheitsnotiz", no RFC 3834 header
}


def load(name: str) -> Message:
    return message_from_bytes((ROUND2 / name).read_bytes(), policy=policy.compat32)


def test_the_round2_corpus_is_all_checked() -> None:
    assert sorted(ROUND2_CORPUS) == sorted(path.name for path in ROUND2.glob("*.eml"))


@pytest.mark.parametrize("name", sorted(ROUND2_CORPUS))
def test_round2_corpus(name: str) -> None:
    kind, address, original, gone = ROUND2_CORPUS[name]
    answer = classify(load(name), "unsubscribe@gigo.dev")
    assert answer.kind == kind, answer
    assert answer.service == ("Amazon SES" if name.startswith("ses-") else "")  # a notification, or a DSN
    if kind == COMPLAINT:
        assert answer.addresses == (address,)
    if kind in (HARD, SOFT):
        (failure,) = answer.failures
        assert (failure.email, failure.original, failure.mailbox_gone) == (address, original, gone), failure
    if kind not in (OTHER, AUTO_REPLY):  # every answer quotes the Message-ID of the message it answers
        number = {"ses-permanent-bounce-sns-email-json.eml": 141, "ses-complaint-sns-email.eml": 142,
                  "ses-transient-mailbox-full-sns-email-json.eml": 143}.get(name)
        assert any(i.startswith("<672f1a2b.c0ffee5eed00.") for i in answer.message_ids), answer
        if number:
            assert f"<672f1a2b.c0ffee5eed00.{number}@gigo.dev>" in answer.message_ids


def test_a_report_wrapped_by_a_gateway_is_still_a_report() -> None:
    """The gateway's multipart/mixed holds the report; the failure and the quoted original (its
    Message-ID and Return-Path) are read from inside it."""
    answer = classify(load("postfix-gateway-wrapped-5.1.1.eml"))
    assert answer.failures[0].detail.startswith("5.1.1 550 5.1.1 <moved.on@partner.example>")
    assert "<672f1a2b.c0ffee5eed00.107@gigo.dev>" in answer.message_ids
    assert "newsletter@gigo.dev" in answer.envelope


def test_a_report_forwarded_as_an_attachment_is_found_at_any_depth() -> None:
    inner = (ROUND2 / "postfix-exchange-online-5.1.10.eml").read_bytes()
    outer = (b"From: Mail Gateway <postmaster@gateway.gigo.dev>\r\nTo: newsletter@gigo.dev\r\n"
             b"Subject: Fwd: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=OUT\r\n\r\n--OUT\r\nContent-Type: text/plain\r\n\r\n"
             b"Forwarded by the gateway.\r\n\r\n--OUT\r\nContent-Type: message/rfc822\r\n\r\n" + inner +
             b"\r\n--OUT--\r\n")
    answer = classify(message_from_bytes(outer, policy=policy.compat32))
    assert answer.kind == HARD and answer.failures[0].mailbox_gone
    assert answer.failures[0].email == "gone.person@fabrikam.example"


def test_original_recipient_is_kept_only_when_it_differs() -> None:
    same = classify(load("postfix-exchange-online-5.1.10.eml")).failures[0]
    assert same.original == ""
    forwarded = classify(load("postfix-forwarded-original-recipient.eml")).failures[0]
    assert forwarded.names("Forwarder@alumni.example") and forwarded.names("dead.box@forward.example")
    assert not forwarded.names("someone.else@alumni.example")


def test_a_feedback_report_wrapped_by_a_gateway_is_still_a_complaint() -> None:
    arf = (Path(__file__).parents[1] / "data" / "answers" / "yahoo-arf-complaint.eml").read_bytes()
    head, _, body = arf.partition(b"\r\n\r\n") if b"\r\n\r\n" in arf else arf.partition(b"\n\n")
    content_type = next(line for line in head.splitlines() if line.lower().startswith(b"content-type"))
    wrapped = (b"From: Gateway <postmaster@gateway.gigo.dev>\r\nTo: newsletter@gigo.dev\r\n"
               b"Subject: [EXTERNAL] report\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=GW\r\n\r\n--GW\r\n"
               b"Content-Type: text/plain\r\n\r\nScanned.\r\n--GW\r\n" + content_type + b"\r\n\r\n" + body +
               b"\r\n--GW--\r\n")
    answer = classify(message_from_bytes(wrapped, policy=policy.compat32))
    assert answer.kind == COMPLAINT and answer.addresses == ("annoyed@yahoo.example",)


def test_a_global_delivery_status_is_read_as_a_report() -> None:
    """RFC 6533's message/global-delivery-status (internationalised addresses) is a report too."""
    data = (ROUND2 / "postfix-exchange-online-5.1.10.eml").read_bytes().replace(
        b"Content-Type: message/delivery-status", b"Content-Type: message/global-delivery-status")
    answer = classify(message_from_bytes(data, policy=policy.compat32))
    assert answer.kind == HARD and answer.failures[0].mailbox_gone


def test_the_mangled_round2_corpus_never_raises() -> None:
    import random

    rnd = random.Random(19)
    for path in sorted(ROUND2.glob("*.eml")):
        for _ in range(10):
            data = bytearray(path.read_bytes())
            for _ in range(rnd.randint(1, 30)):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
            mangled = message_from_bytes(bytes(data), policy=policy.compat32)
            assert classify(mangled, "unsubscribe@gigo.dev").kind
