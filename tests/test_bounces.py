"""Classification of the answers a send gets back, over a corpus of real-world formats."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest

from gigo_mail.bounces import AUTO_REPLY, COMPLAINT, HARD, OTHER, SOFT, UNSUBSCRIBE, bounce_kind, classify

ANSWERS = Path(__file__).parent / "data" / "answers"
MAILTO = "unsubscribe@gigo.dev"

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
