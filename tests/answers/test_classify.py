"""Classification of the answers a send gets back, over a corpus of real-world formats; which
refusals suppress for good, and the send path's use of it against a real aiosmtpd server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from conftest import SmtpServer
from gigo_mail.answers.classify import (
    AUTO_REPLY,
    COMPLAINT,
    HARD,
    OTHER,
    SOFT,
    UNSUBSCRIBE,
    bounce_kind,
    classify,
)
from gigo_mail.journal.deliveries import Journal
from gigo_mail.lists.reader import Subscriber, sample_subscriber
from gigo_mail.send.engine import Sender, SendOptions, SendResult
from gigo_mail.transport import SmtpEndpoint, SmtpTransport, parse_smtp_url
from gigo_mail.transport.gone import enhanced_code, hard_bounce_reason, mailbox_gone

ANSWERS = Path(__file__).resolve().parents[1] / "data" / "answers"
MAILTO = "unsubscribe@gigo.dev"
SENDER = "news@gigo.example"

# file -> (kind, reported addresses, Message-ID of the original it quotes or None)
CORPUS = {
    "postfix-dsn-user-unknown.eml": (HARD, ["gone@example.net"], "<672f1a2b.a1b2c3d4e5f6.7@gigo.dev>"),
    "postfix-dsn-delayed.eml": (SOFT, ["slow@example.org"], "<672f1a2b.a1b2c3d4e5f6.8@gigo.dev>"),
    "gmail-dsn-address-not-found.eml": (HARD, ["nobody.here.at.all@gmail.com"],
                                        "<672f1a2b.a1b2c3d4e5f6.9@gigo.dev>"),
    "exim-bounce.eml": (HARD, ["closed@exim.example.com"], "<672f1a2b.a1b2c3d4e5f6.10@gigo.dev>"),
    "qmail-bounce.eml": (HARD, ["old-user@qmail.example.org"], "<672f1a2b.a1b2c3d4e5f6.11@gigo.dev>"),
    "exchange-ndr.eml": (HARD, ["left.company@corp.example.com"], None),
    "postfix-old-notification.eml": (HARD, ["nosuch@old.example.net"], "<672f1a2b.a1b2c3d4e5f6.12@gigo.dev>"),
    "yahoo-arf-complaint.eml": (COMPLAINT, ["annoyed@yahoo.example"], "<672f1a2b.a1b2c3d4e5f6.13@gigo.dev>"),
    "microsoft-jmrp-complaint.eml": (COMPLAINT, ["redacted@hotmail.com"],
                                     "<672f1a2b.a1b2c3d4e5f6.14@gigo.dev>"),
    "out-of-office-rfc3834.eml": (AUTO_REPLY, [], None),
    "exchange-automatic-reply.eml": (AUTO_REPLY, [], None),
    "unsubscribe-mailto.eml": (UNSUBSCRIBE, ["bjorn@example.org"], None),
    "unsubscribe-subject-reply.eml": (UNSUBSCRIBE, ["DEV@example.org"], "<672f1a2b.a1b2c3d4e5f6.4@gigo.dev>"),
    "human-reply.eml": (OTHER, [], None),
}


def load(name: str) -> object:
    return message_from_bytes((ANSWERS / name).read_bytes(), policy=policy.compat32)


def test_the_corpus_is_all_checked() -> None:
    assert sorted(CORPUS) == sorted(path.name for path in ANSWERS.glob("*.eml"))


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus(name: str) -> None:
    kind, addresses, message_id = CORPUS[name]
    answer = classify(load(name), MAILTO)  # type: ignore[arg-type]
    assert answer.kind == kind, answer
    reported = [f.email for f in answer.failures] + list(answer.addresses)
    assert reported == addresses
    if message_id:
        assert message_id in answer.message_ids
    if kind in (HARD, SOFT):
        assert answer.detail


def test_dsn_keeps_each_recipient_status_and_the_quoted_return_path() -> None:
    answer = classify(load("gmail-dsn-address-not-found.eml"), MAILTO)  # type: ignore[arg-type]
    assert answer.failures[0].detail.startswith("5.1.1 550-5.1.1 The email account")
    assert "bounce+011.mfrggzdfmztwq2lk@gigo.dev" in answer.envelope  # the original's Return-Path


def test_arf_original_mail_from_is_a_clue() -> None:
    answer = classify(load("yahoo-arf-complaint.eml"), MAILTO)  # type: ignore[arg-type]
    assert "bounce+011.mjqwmzdpn5xxk2lb@gigo.dev" in answer.envelope
    assert answer.detail == "abuse report from Yahoo!-Mail-Feedback/2.0"


def test_a_not_spam_report_is_no_complaint() -> None:
    data = (ANSWERS / "yahoo-arf-complaint.eml").read_bytes().replace(b"Feedback-Type: abuse",
                                                                     b"Feedback-Type: not-spam")
    assert classify(message_from_bytes(data, policy=policy.compat32)).kind == OTHER


def test_a_dsn_for_a_delivered_message_is_not_a_bounce() -> None:
    data = (ANSWERS / "postfix-dsn-user-unknown.eml").read_bytes().replace(b"Action: failed",
                                                                          b"Action: delivered")
    assert classify(message_from_bytes(data, policy=policy.compat32)).kind == OTHER


def test_a_person_mentioning_a_mailer_daemon_is_not_a_bounce() -> None:
    """flufl.bounce's heuristics run only on mail from a mailer daemon."""
    data = (ANSWERS / "qmail-bounce.eml").read_bytes().replace(b"From: MAILER-DAEMON@qmail.example.org",
                                                               b"From: Ann <ann@example.org>")
    assert classify(message_from_bytes(data, policy=policy.compat32)).kind == OTHER


@pytest.mark.parametrize(("status", "diagnostic", "kind"), [
    ("5.1.1", "", HARD), ("4.2.2", "mailbox full", SOFT), ("", "smtp; 452 4.2.2 over quota", SOFT),
    ("", "550 no such user", HARD), ("", "", HARD), ("4.4.7", "550 5.1.1 after retries", SOFT),
])
def test_bounce_kind(status: str, diagnostic: str, kind: str) -> None:
    assert bounce_kind(status, diagnostic) == kind


def test_raw_8bit_headers_do_not_trip_the_detectors() -> None:
    """flufl.bounce's detectors call str methods on headers that compat32 hands out as Header objects
    when they hold raw 8-bit bytes; the bounce is still read, and nothing is printed."""
    raw_from = "From: Mäiler Dæmon <MAILER-DAEMON@qmail.example.org>".encode()
    plain_from = b"From: MAILER-DAEMON@qmail.example.org"
    data = (ANSWERS / "qmail-bounce.eml").read_bytes().replace(plain_from, raw_from)
    answer = classify(message_from_bytes(data, policy=policy.compat32))
    assert answer.kind == HARD and [f.email for f in answer.failures] == ["old-user@qmail.example.org"]


def test_mangled_corpus_never_raises() -> None:
    import random

    rnd = random.Random(7)
    for path in sorted(ANSWERS.glob("*.eml")):
        for _ in range(15):
            data = bytearray(path.read_bytes())
            for _ in range(rnd.randint(1, 30)):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
            assert classify(message_from_bytes(bytes(data), policy=policy.compat32), MAILTO).kind



@pytest.mark.parametrize(("code", "text"), [
    (550, "5.1.1 <ann@example.org>: Recipient address rejected: User unknown in virtual mailbox table"),
    (550, "5.1.2 Host unknown"), (556, "5.1.10 Recipient address has null MX"),
    (550, "5.2.1 The email account that you tried to reach is disabled."),
    (550, "No such user here"), (550, "Requested action not taken: mailbox unavailable, user unknown"),
    (553, "sorry, that domain isn't in my list of allowed rcpthosts; no such recipient"),
])
def test_mailbox_that_does_not_exist(code: int, text: str) -> None:
    assert mailbox_gone(code, text)
    assert hard_bounce_reason(code, text) == f"bounced: {code} {text}"


@pytest.mark.parametrize(("code", "text"), [
    (550, "5.7.1 Message rejected as spam"), (552, "5.3.4 Message size exceeds fixed limit"),
    (554, "5.7.1 <ann@example.org>: Relay access denied"), (550, "Mailbox unavailable"),
    (450, "4.1.1 user unknown (try again later)"), (421, "4.7.0 too many connections"),
    (550, "5.7.1 user unknown is what we say to spammers"),  # the enhanced code decides
    (None, "user unknown"),
])
def test_other_refusals_suppress_nothing(code: int | None, text: str) -> None:
    assert not mailbox_gone(code, text) and hard_bounce_reason(code, text) is None


def test_enhanced_code_is_found_in_the_text() -> None:
    assert enhanced_code("550 5.1.10 null MX") == "5.1.10"
    assert enhanced_code("version 1.2.3.4 is not a code") is None


@dataclass(frozen=True)
class Msg:
    message_id: str
    data: bytes


def build(subscriber: Subscriber) -> Msg:
    return Msg(f"<{subscriber.key}@gigo.example>",
               f"From: <{SENDER}>\r\nTo: <{subscriber.smtp_address}>\r\nSubject: t\r\n\r\nhi\r\n".encode())


def send(server: SmtpServer, journal: Journal, issue: str, rows: list[Subscriber], **options: object
         ) -> SendResult:
    endpoint = SmtpEndpoint(parse_smtp_url(server.url), timeout=5)
    settings: dict[str, object] = {"concurrency": 2, "attempts": 2, "backoff": 0.01, "backoff_max": 0.02,
                                   "min_rate": 500.0, **options}
    sender = Sender(issue_key=issue, envelope_from=SENDER, build=build,
                    transport_factory=lambda: SmtpTransport(endpoint),
                    options=SendOptions(**settings), journal=journal)  # type: ignore[arg-type]
    return asyncio.run(sender.run(rows))


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    with Journal(tmp_path / ".gigo" / "journal.sqlite3") as opened:
        yield opened  # type: ignore[misc]


def test_a_5_1_1_at_rcpt_suppresses_for_later_issues_other_5xx_do_not(
        start_smtp: Callable[..., SmtpServer], journal: Journal) -> None:
    server = start_smtp()
    server.handler.rcpt_reply.update({
        "gone@example.org": "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown",
        "policy@example.org": "550 5.7.1 Rejected by policy"})
    rows = [sample_subscriber(a) for a in ("ann@example.org", "gone@example.org", "policy@example.org")]
    result = send(server, journal, "011", rows)
    assert result.stats.sent == 1 and result.stats.failed == 2
    assert journal.is_suppressed("gone@example.org") and not journal.is_suppressed("policy@example.org")
    (entry,) = journal.suppressions()
    assert entry.reason == "bounced: 550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown"


def test_soft_bounces_in_three_issues_in_a_row_suppress(start_smtp: Callable[..., SmtpServer],
                                                        journal: Journal) -> None:
    server = start_smtp()
    server.handler.rcpt_reply["full@example.org"] = "452 4.2.2 Mailbox full"
    rows = [sample_subscriber("full@example.org"), sample_subscriber("ann@example.org")]
    for number, issue in enumerate(("011", "012", "013"), start=1):
        send(server, journal, issue, rows, soft_bounce_limit=3)
        assert journal.soft_bounces_in_a_row("full@example.org") == number
        assert journal.is_suppressed("full@example.org") == (number == 3)
    assert journal.soft_bounces_in_a_row("ann@example.org") == 0
    assert journal.suppressions()[0].reason.startswith("soft bounces: 3 issues in a row (last: ")


@pytest.mark.parametrize(("name", "gone"), [
    ("postfix-dsn-user-unknown.eml", True), ("gmail-dsn-address-not-found.eml", True),
    ("exim-bounce.eml", True),  # "account closed": no enhanced code, the plain words
    ("qmail-bounce.eml", True), ("exchange-ndr.eml", True), ("postfix-old-notification.eml", True),
    ("postfix-dsn-delayed.eml", False),  # transient: counted, never "gone"
])
def test_reported_failures_follow_the_send_paths_rule(name: str, gone: bool) -> None:
    failure = classify(load(name), MAILTO).failures[0]  # type: ignore[arg-type]
    assert failure.mailbox_gone is gone, failure
    assert mailbox_gone(550, failure.detail) is gone  # the words a send would have got at RCPT


def test_a_permanent_failure_that_names_no_missing_mailbox_is_not_gone() -> None:
    spam = load("postfix-dsn-user-unknown.eml").as_bytes().replace(b"5.1.1", b"5.7.1")  # type: ignore[union-attr]
    failure = classify(message_from_bytes(spam, policy=policy.compat32), MAILTO).failures[0]
    assert failure.kind == HARD and not failure.mailbox_gone
