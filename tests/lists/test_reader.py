"""Subscriber lists as recipients: validation, duplicates, opted-out and suppressed rows, real
email-validator."""

from __future__ import annotations

from pathlib import Path

import pytest

from gigo_mail.errors import SubscriberListError
from gigo_mail.lists.reader import (
    SkippedRow,
    Subscriber,
    ValidatedAddresses,
    address_key,
    check_list,
    read_subscribers,
    sample_subscriber,
)
from support import SUBSCRIBERS_SAMPLE as SAMPLE
from support import split_rows as split
from support import write_list as write


def test_sample_rows_keep_physical_line_numbers() -> None:
    subscribers, skipped = split(read_subscribers(SAMPLE))
    assert [(s.line, s.email) for s in subscribers] == [
        (3, "ann@example.com"), (9, "zoë@bücher.de"), (10, "用户@例子.广告"),
        (13, "eve@xn--bcher-kva.de"), (14, "fay@example.org")]
    assert [(r.line, r.kind) for r in skipped] == [
        (5, "invalid"), (8, "duplicate"), (11, "unsubscribed"), (12, "bounced")]


def test_quoted_newline_in_a_name_never_reaches_a_header() -> None:
    ann = next(item for item in read_subscribers(SAMPLE) if isinstance(item, Subscriber))
    assert ann.name == "Ann Smith"
    assert "\n" not in ann.name and "\r" not in ann.name


def test_control_characters_are_replaced_in_every_field(tmp_path: Path) -> None:
    path = write(tmp_path, 'email,name,note\nann@example.com,"Ann\r\nBcc: evil@example.net","a\tb\x00c"\n')
    (ann,) = split(read_subscribers(path))[0]
    assert ann.name == "Ann Bcc: evil@example.net"
    assert ann.fields["note"] == "a b c"


def test_invalid_rows_say_why_with_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "email\nok@example.com\nbob@\n\n,\nann@@example.com\n")
    _, skipped = split(read_subscribers(path))
    assert [(r.line, r.kind) for r in skipped] == [(3, "invalid"), (6, "invalid")]
    assert skipped[0].reason.startswith("'bob@' is not a valid address: ")
    assert "@-sign" in skipped[0].reason


def test_row_with_empty_email_is_invalid_but_blank_row_is_not(tmp_path: Path) -> None:
    path = write(tmp_path, "email,name\n,Nobody\n,\n   \nann@example.com,Ann\n")
    subscribers, skipped = split(read_subscribers(path))
    assert [(r.line, r.kind, r.reason) for r in skipped] == [(2, "invalid", "no address in the email column")]
    assert subscribers[0].line == 5


def test_duplicates_in_another_case_are_sent_once(tmp_path: Path) -> None:
    path = write(tmp_path, "email,name\nAnn@Example.com,First\nann@example.COM,Second\n"
                           "ANN@EXAMPLE.COM,Third\n")
    subscribers, skipped = split(read_subscribers(path))
    assert [(s.name, s.key) for s in subscribers] == [("First", "ann@example.com")]
    assert [(r.line, r.kind) for r in skipped] == [(3, "duplicate"), (4, "duplicate")]
    assert "line 2" in skipped[1].reason


def test_idn_domain_and_unicode_local_part() -> None:
    by_email = {s.email: s for s in split(read_subscribers(SAMPLE))[0]}
    zoe = by_email["zoë@bücher.de"]
    assert zoe.smtp_address == "zoë@xn--bcher-kva.de"
    assert zoe.needs_smtputf8 is True
    assert zoe.name == "Zoë Çelik"
    eve = by_email["eve@xn--bcher-kva.de"]
    assert eve.key == "eve@bücher.de"  # punycode and unicode spellings share one identity
    assert eve.smtp_address == "eve@xn--bcher-kva.de" and eve.needs_smtputf8 is False
    chinese = by_email["用户@例子.广告"]
    assert chinese.smtp_address == "用户@xn--fsqu00a.xn--4rr70v"
    assert chinese.name == "李小龍"


def test_punycode_and_unicode_spellings_are_duplicates(tmp_path: Path) -> None:
    path = write(tmp_path, "email\neve@bücher.de\nEVE@xn--bcher-kva.de\n")
    subscribers, skipped = split(read_subscribers(path))
    assert len(subscribers) == 1 and [r.kind for r in skipped] == ["duplicate"]


@pytest.mark.parametrize(("status", "kind"), [
    ("unsubscribed", "unsubscribed"), ("Unsubscribe", "unsubscribed"), ("complained", "unsubscribed"),
    (" BOUNCED ", "bounced"), ("cleaned", "bounced")])
def test_do_not_mail_statuses_are_skipped(tmp_path: Path, status: str, kind: str) -> None:
    path = write(tmp_path, f"email,status\nann@example.com,{status}\n")
    subscribers, skipped = split(read_subscribers(path))
    assert subscribers == []
    assert [(r.kind, r.line) for r in skipped] == [(kind, 2)]


@pytest.mark.parametrize("status", ["", "subscribed", "active", "Confirmed"])
def test_subscribed_statuses_are_mailed(tmp_path: Path, status: str) -> None:
    path = write(tmp_path, f"email,status\nann@example.com,{status}\n")
    assert [s.email for s in split(read_subscribers(path))[0]] == ["ann@example.com"]


def test_a_status_nobody_defined_is_unclear_not_mailed(tmp_path: Path) -> None:
    path = write(tmp_path, "email,status\nann@example.com,vip\nbob@example.com,active\n")
    subscribers, skipped = split(read_subscribers(path))
    assert [s.email for s in subscribers] == ["bob@example.com"]
    assert [(r.kind, r.column, r.value) for r in skipped] == [("unclear", "status", "vip")]


def test_suppressed_addresses_are_skipped_by_key(tmp_path: Path) -> None:
    path = write(tmp_path, "email\nAnn@Example.com\nbob@example.com\n")
    asked: list[str] = []

    def suppressed(key: str) -> bool:
        asked.append(key)
        return key == "ann@example.com"

    subscribers, skipped = split(read_subscribers(path, suppressed))
    assert [s.email for s in subscribers] == ["bob@example.com"]
    assert [(r.line, r.kind, r.email) for r in skipped] == [(2, "suppressed", "Ann@Example.com")]
    assert asked == ["ann@example.com", "bob@example.com"]


def test_short_and_long_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "name,email,city\nAnn,ann@example.com\nBob,bob@example.com,Rome,extra\n")
    ann, bob = split(read_subscribers(path))[0]
    assert ann.fields == {"name": "Ann", "email": "ann@example.com", "city": "", "first_name": "Ann",
                          "last_name": ""}
    assert bob.fields["city"] == "Rome"


def test_check_list_counts_and_keeps_the_first_skipped_rows(tmp_path: Path) -> None:
    rows = ["email,status"]
    rows += [f"user{i}@example.com," for i in range(30)]
    rows += [f"bad{i}@" + "," for i in range(70)]
    rows += ["user0@example.com,", "gone@example.com,unsubscribed", "blocked@example.com,"]
    path = write(tmp_path, "\n".join(rows) + "\n")
    report = check_list(path, lambda key: key == "blocked@example.com", keep=50)
    assert report.valid == 30
    assert report.skipped_counts == {"invalid": 70, "duplicate": 1, "unsubscribed": 1, "bounced": 0,
                                     "unclear": 0, "suppressed": 1}
    assert report.skipped_total == 73 and report.rows == 103
    assert len(report.skipped) == 50
    assert report.skipped[0].line == 32 and report.skipped[-1].line == 81


def test_address_key_matches_subscriber_key() -> None:
    keys = {s.email: s.key for s in split(read_subscribers(SAMPLE))[0]}
    for email, key in keys.items():
        assert address_key(email) == key
        assert address_key(email.upper()) == key
    assert address_key("  Bob@Example.COM ") == "bob@example.com"


def test_sample_subscriber_for_test_sends() -> None:
    ann = sample_subscriber("Ann@Example.com", "Ann Smith\r\n")
    assert (ann.key, ann.name, ann.line) == ("ann@example.com", "Ann Smith", 0)
    assert ann.fields["first_name"] == "Ann" and ann.fields["email"] == "Ann@Example.com"
    with pytest.raises(SubscriberListError, match="not a valid address"):
        sample_subscriber("nobody@")


def test_a_second_pass_sharing_validated_addresses_gives_the_same_rows(tmp_path: Path) -> None:
    """The plan pass validates; the send pass reuses that for plain addresses only, and
    yields exactly what a fresh pass would."""
    path = tmp_path / "list.csv"
    path.write_text("email,name\nAnn@Example.COM,Ann\nbob@example.org,Bob\n\"q.\\\"x\\\"\"@example.org,Q\n"
                    "zoë@exämple.org,Zoë\nnot-an-address,X\nBOB@example.org,Dup\n", encoding="utf-8")
    fresh = list(read_subscribers(path))
    validated = ValidatedAddresses()
    first = list(read_subscribers(path, validated=validated))
    assert len(validated) == 3  # Ann, bob and BOB (checked before the duplicate test); not the UTF-8 one
    second = list(read_subscribers(path, validated=validated))
    assert first == fresh and second == fresh
    ann = next(row for row in second if isinstance(row, Subscriber) and row.name == "Ann")
    assert (ann.key, ann.smtp_address, ann.needs_smtputf8) == ("ann@example.com", "Ann@example.com", False)
    edited = tmp_path / "edited.csv"  # a row changed between the passes is validated afresh
    edited.write_text("email\nAnn@Example..COM\n", encoding="utf-8")
    (row,) = read_subscribers(edited, validated=validated)
    assert isinstance(row, SkippedRow) and row.kind == "invalid"
