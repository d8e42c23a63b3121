"""DMARC and SPF records read as receivers read them: the grammar of RFC 7489 / RFC 9989 and RFC 7208.

Pure parsing (no DNS): the records come from the zone tests' cases and from the RFCs' edge cases."""

from __future__ import annotations

import pytest

from gigo_mail.check.dmarc import parse_dmarc
from gigo_mail.check.spf import syntax_errors


@pytest.mark.parametrize("text", [
    "v=DMARC1; p=reject",
    "v=DMARC1;p=none;rua=mailto:a@example.org,mailto:b@example.net!10m;",
    "v = DMARC1 ; p = quarantine ; adkim = s ; aspf = r ; fo = 0:1:d:s ; t = y",
    "v=DMARC1; p=REJECT; sp=none; np=reject; psd=n",
])
def test_records_receivers_accept(text: str) -> None:
    record = parse_dmarc("_dmarc.example.org", text)
    assert record.errors == [] and not record.ignored and record.fix == ""


@pytest.mark.parametrize(("text", "error", "fix", "ignored"), [
    ("v=DMARC1 p=reject rua=mailto:d@example.org", "not separated by ';'",
     "v=DMARC1; p=reject; rua=mailto:d@example.org", True),
    ("v=DMARC1 p=quarantine", "not separated by ';'", "v=DMARC1; p=quarantine", True),
    ("p=reject; v=DMARC1", "must be the first tag", "v=DMARC1; p=reject", True),
    ("v=dmarc1; p=reject", "v=dmarc1: must be exactly DMARC1", "v=DMARC1; p=reject", True),
    ("v=DMARC1; p=reject; p=none", "p= appears twice", "v=DMARC1; p=reject", True),
    ("v=DMARC1; p=block", "p=block (must be none, quarantine or reject)", "v=DMARC1; p=none", True),
    ("v=DMARC1; rua=mailto:d@example.org", "no p= tag", "v=DMARC1; p=none; rua=mailto:d@example.org", False),
    ("v=DMARC1; p=reject; rua=https://example.org/r", "report addresses are mailto:", "v=DMARC1; p=reject",
     False),
    ("v=DMARC1; p=reject; aspf=strict", "aspf=strict (must be r or s)", "v=DMARC1; p=reject", False),
])
def test_records_receivers_ignore_or_misread_fail_with_the_fixed_record(text: str, error: str, fix: str,
                                                                        ignored: bool) -> None:
    record = parse_dmarc("_dmarc.example.org", text)
    assert any(error in e for e in record.errors), record.errors
    assert record.fix == fix
    assert record.ignored is ignored


def test_a_missing_policy_with_a_report_address_reads_as_none_and_without_one_is_ignored() -> None:
    assert parse_dmarc("n", "v=DMARC1; rua=mailto:d@example.org").reads_as_none
    assert parse_dmarc("n", "v=DMARC1; fo=1").ignored


def test_unknown_and_removed_tags_are_notes_not_errors() -> None:
    record = parse_dmarc("n", "v=DMARC1; p=none; pct=50; color=blue")
    assert record.errors == []
    assert any("pct= is not in RFC 9989" in n for n in record.notes)
    assert any("unknown tag color=" in n for n in record.notes)


@pytest.mark.parametrize(("record", "bad"), [
    ("v=spf1 a mx a/24 mx:x.example/24 a:x.example//64 ip4:192.0.2.0/24 ip6:2001:db8::/32 ptr "
     "exists:%{i}.x.example redirect=x.example exp=e.x.example future=1 ?all", []),
    ("v=spf1 ip4:300.1.1.1 -all", ["ip4:300.1.1.1"]),
    ("v=spf1 ip4:2001:db8::1 -all", ["ip4:2001:db8::1"]),
    ("v=spf1 include: -all", ["include:"]),
    ("v=spf1 include:_spf.example.org -all extra", ["extra"]),
    ("v=spf1 +redirect=x.example", ["+redirect=x.example"]),
    ("v=spf1 mx:/24 allx", ["mx:/24", "allx"]),
])
def test_spf_terms_receivers_cannot_parse(record: str, bad: list[str]) -> None:
    assert [error.split(" (")[0] for error in syntax_errors(record)] == bad
