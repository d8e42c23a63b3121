"""Reading a subscriber CSV file: encodings, delimiters, header names, physical lines, and the
compact set that catches duplicates; real files written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from gigo_mail.errors import SubscriberListError
from gigo_mail.lists.reader import (
    DigestSet,
    Subscriber,
    check_list,
    read_subscribers,
)
from support import DATA
from support import SUBSCRIBERS_SAMPLE as SAMPLE
from support import split_rows as split
from support import write_list as write


def test_header_names_are_normalized_and_every_column_is_a_field() -> None:
    ann = next(item for item in read_subscribers(SAMPLE) if isinstance(item, Subscriber))
    assert ann.fields == {"email": "ann@example.com", "name": "Ann Smith", "status": "subscribed",
                          "city": "Oslo", "first_name": "Ann", "last_name": "Smith"}
    assert read_subscribers(SAMPLE).columns == ["email", "name", "status", "city"]  # before any row


def test_bom_semicolon_and_crlf_from_excel() -> None:
    subscribers, skipped = split(read_subscribers(DATA / "subscribers_excel.csv"))
    assert [s.email for s in subscribers] == ["ann@example.com", "bob@example.com"]
    assert subscribers[0].fields["email"] == "ann@example.com"  # no BOM glued to the first header
    assert subscribers[0].name == "Ann Smith"  # first_name + last_name
    assert subscribers[1].name == "Bob Jones; Jr."  # quoted delimiter stays in the field
    assert [(r.line, r.kind, r.email) for r in skipped] == [(5, "invalid", "not-an-address")]
    assert check_list(DATA / "subscribers_excel.csv").delimiter == ";"


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
