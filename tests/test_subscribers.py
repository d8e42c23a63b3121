"""Subscriber CSV reading: real files, real email-validator."""

from __future__ import annotations

from pathlib import Path

import pytest

from gigo_mail.errors import SubscriberListError
from gigo_mail.subscribers import (
    DigestSet,
    SkippedRow,
    Subscriber,
    address_key,
    check_list,
    read_header,
    read_subscribers,
    sample_subscriber,
)

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "subscribers_sample.csv"


def split(items: object) -> tuple[list[Subscriber], list[SkippedRow]]:
    subscribers: list[Subscriber] = []
    skipped: list[SkippedRow] = []
    for item in items:  # type: ignore[attr-defined]
        (subscribers if isinstance(item, Subscriber) else skipped).append(item)
    return subscribers, skipped


def write(tmp_path: Path, data: str | bytes, name: str = "list.csv") -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", newline="")
    else:
        path.write_bytes(data)
    return path


def test_sample_rows_keep_physical_line_numbers() -> None:
    subscribers, skipped = split(read_subscribers(SAMPLE))
    assert [(s.line, s.email) for s in subscribers] == [
        (3, "ann@example.com"), (9, "zoë@bücher.de"), (10, "用户@例子.广告"),
        (13, "eve@xn--bcher-kva.de"), (14, "fay@example.org")]
    assert [(r.line, r.kind) for r in skipped] == [
        (5, "invalid"), (8, "duplicate"), (11, "unsubscribed"), (12, "unsubscribed")]


def test_header_names_are_normalized_and_every_column_is_a_field() -> None:
    ann = next(item for item in read_subscribers(SAMPLE) if isinstance(item, Subscriber))
    assert ann.fields == {"email": "ann@example.com", "name": "Ann Smith", "status": "subscribed",
                          "city": "Oslo"}
    assert read_header(SAMPLE) == ["email", "name", "status", "city"]


def test_quoted_newline_in_a_name_never_reaches_a_header() -> None:
    ann = next(item for item in read_subscribers(SAMPLE) if isinstance(item, Subscriber))
    assert ann.name == "Ann Smith"
    assert "\n" not in ann.name and "\r" not in ann.name


def test_control_characters_are_replaced_in_every_field(tmp_path: Path) -> None:
    path = write(tmp_path, 'email,name,note\nann@example.com,"Ann\r\nBcc: evil@example.net","a\tb\x00c"\n')
    (ann,) = split(read_subscribers(path))[0]
    assert ann.name == "Ann Bcc: evil@example.net"
    assert ann.fields["note"] == "a b c"


def test_bom_semicolon_and_crlf_from_excel() -> None:
    subscribers, skipped = split(read_subscribers(DATA / "subscribers_excel.csv"))
    assert [s.email for s in subscribers] == ["ann@example.com", "bob@example.com"]
    assert subscribers[0].fields["email"] == "ann@example.com"  # no BOM glued to the first header
    assert subscribers[0].name == "Ann Smith"  # first_name + last_name
    assert subscribers[1].name == "Bob Jones; Jr."  # quoted delimiter stays in the field
    assert [(r.line, r.kind, r.email) for r in skipped] == [(5, "invalid", "not-an-address")]
    assert check_list(DATA / "subscribers_excel.csv").delimiter == ";"


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


@pytest.mark.parametrize("status", ["unsubscribed", "Unsubscribe", " BOUNCED ", "complained", "cleaned"])
def test_do_not_mail_statuses_are_skipped(tmp_path: Path, status: str) -> None:
    path = write(tmp_path, f"email,status\nann@example.com,{status}\n")
    subscribers, skipped = split(read_subscribers(path))
    assert subscribers == []
    assert [(r.kind, r.line) for r in skipped] == [("unsubscribed", 2)]


@pytest.mark.parametrize("status", ["", "subscribed", "active", "vip"])
def test_other_statuses_are_mailed(tmp_path: Path, status: str) -> None:
    path = write(tmp_path, f"email,status\nann@example.com,{status}\n")
    assert [s.email for s in split(read_subscribers(path))[0]] == ["ann@example.com"]


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
    assert ann.fields == {"name": "Ann", "email": "ann@example.com", "city": ""}
    assert bob.fields["city"] == "Rome"


def test_email_address_header_from_an_export(tmp_path: Path) -> None:
    path = write(tmp_path, "Email Address,First Name\nann@example.com,Ann\n")
    (ann,) = split(read_subscribers(path))[0]
    assert ann.email == "ann@example.com"
    assert ann.fields["email"] == "ann@example.com" and ann.fields["first name"] == "Ann"


def test_no_email_column_is_a_clean_error() -> None:
    with pytest.raises(SubscriberListError) as info:
        read_subscribers(DATA / "subscribers_no_email.csv")
    message = str(info.value)
    assert "subscribers_no_email.csv" in message and "no 'email' column" in message
    assert "'address'" in message  # says which columns it did find


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(SubscriberListError, match="no such file"):
        read_subscribers(tmp_path / "missing.csv")
    with pytest.raises(SubscriberListError, match="is empty"):
        read_subscribers(write(tmp_path, "\n\n"))


def test_not_utf8_names_the_line_and_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "email,name\nann@example.com,Ann\nzoe@example.com,Zo\xeb\n".encode("latin-1"))
    items = read_subscribers(path)
    assert isinstance(next(items), Subscriber)  # streaming: the bad line is met when it is read
    with pytest.raises(SubscriberListError) as info:
        next(items)
    assert "list.csv:3" in str(info.value) and "not UTF-8" in str(info.value)
    assert "re-save" in str(info.value)


def test_utf16_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "email\r\nann@example.com\r\n".encode("utf-16"))
    with pytest.raises(SubscriberListError, match="UTF-16"):
        read_subscribers(path)


def test_check_list_counts_and_keeps_the_first_skipped_rows(tmp_path: Path) -> None:
    rows = ["email,status"]
    rows += [f"user{i}@example.com," for i in range(30)]
    rows += [f"bad{i}@" + "," for i in range(70)]
    rows += ["user0@example.com,", "gone@example.com,unsubscribed", "blocked@example.com,"]
    path = write(tmp_path, "\n".join(rows) + "\n")
    report = check_list(path, lambda key: key == "blocked@example.com", keep=50)
    assert report.valid == 30
    assert report.skipped_counts == {"invalid": 70, "duplicate": 1, "unsubscribed": 1, "suppressed": 1}
    assert report.skipped_total == 73 and report.rows == 103
    assert len(report.skipped) == 50
    assert report.skipped[0].line == 32 and report.skipped[-1].line == 81


def test_dedupe_survives_table_growth(tmp_path: Path) -> None:
    count = 20_000
    lines = ["email"] + [f"u{i}@example.com" for i in range(count)]
    lines += [f"U{i}@EXAMPLE.COM" for i in (0, 9_999)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    report = check_list(path)
    assert report.valid == count
    assert report.skipped_counts["duplicate"] == 2
    assert report.skipped[1].reason.endswith("line 10001")


def test_digest_set_remembers_first_line() -> None:
    seen = DigestSet(capacity=4)
    for i in range(5_000):
        assert seen.add(f"k{i}", i + 2) == 0
    assert len(seen) == 5_000
    assert seen.add("k0", 99) == 2
    assert seen.add("k4999", 99) == 5_001


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


@pytest.mark.parametrize("text", [
    'email,name\nann@example.com,"Ann\nbob@example.com,Bob\n',  # never closed: runs to the end
    'email,name\nann@example.com,"Ann\nbob@example.com,Bob\ncid@example.com,"Cid"\n',  # closed rows later
])
def test_unbalanced_quote_that_swallows_rows_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(SubscriberListError, match=r"list\.csv:2: a quoted field runs on to line"):
        list(read_subscribers(write(tmp_path, text)))


def test_bare_cr_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path, 'email,name\rann@example.com,Ann\r\rbob@example.com,"B\rob"\rcid@\r')
    subscribers, skipped = split(read_subscribers(path))
    assert [(s.line, s.email, s.name) for s in subscribers] == [
        (2, "ann@example.com", "Ann"), (4, "bob@example.com", "B ob")]
    assert [(r.line, r.kind) for r in skipped] == [(6, "invalid")]
