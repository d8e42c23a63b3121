"""A VERP address finds its delivery through the journal's tag index, and only its MAC proves it."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from gigo_mail.journal.deliveries import Journal
from gigo_mail.send.verp import UNSUBSCRIBE_CONTEXT, VerpAddresses, VerpIndex, lookup_tag, parse_verp

SECRET = b"verp-secret"
BASE = "bounce@gigo.dev"
READERS = [f"reader{n}@example.org" for n in range(6)]


def _send(journal: Journal, issue: str, readers: list[str], tagged: bool = True) -> dict[str, str]:
    """Mark ``readers`` sent as a send with VERP does (tags with the ``sending`` mark, or none, as
    a gigo-mail before the tag wrote them); their return addresses."""
    addresses = VerpAddresses(BASE, SECRET, issue)
    paths = {}
    for n, email in enumerate(readers):
        paths[email] = address = addresses.address(email)
        journal.mark_sending(issue, email, email, f"<{issue}.{n}@gigo.dev>",
                             addresses.tag(address) if tagged else None)
        journal.mark_sent(issue, email, email, f"<{issue}.{n}@gigo.dev>", 250, "ok")
    return paths


def _tags(path: Path, issue: str) -> dict[str, int | None]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT key, verp_tag FROM deliveries WHERE issue_key = ?", (issue,)).fetchall()
        return dict(rows)
    finally:
        db.close()


def _set_tag(path: Path, issue: str, key: str, tag: int) -> None:
    db = sqlite3.connect(path)
    db.execute("UPDATE deliveries SET verp_tag = ? WHERE issue_key = ? AND key = ?", (tag, issue, key))
    db.commit()
    db.close()


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / ".gigo" / "journal.sqlite3")


def test_the_tag_is_a_hash_of_the_mac_never_the_mac(journal: Journal) -> None:
    paths = _send(journal, "011", READERS)
    tags = _tags(journal.path, "011")
    for email, address in paths.items():
        mac = bytes.fromhex(parse_verp(address, BASE)[1])  # type: ignore[index]
        assert tags[email] == int.from_bytes(hashlib.sha256(mac).digest()[:8], "big", signed=True)
        assert -(2 ** 63) <= tags[email] < 2 ** 63  # type: ignore[operator]
        for file in journal.path.parent.glob("journal.sqlite3*"):  # the file and its -wal hold no MAC
            assert mac not in file.read_bytes() and mac.hex().encode() not in file.read_bytes()
    assert len(set(tags.values())) == len(READERS)
    assert VerpAddresses(BASE, SECRET, "011").tag("news@gigo.dev") is None  # not a VERP address


def test_a_genuine_address_resolves_through_its_tag(journal: Journal) -> None:
    paths = _send(journal, "011", READERS)
    _send(journal, "012", READERS)
    assert journal.recipient_keys("011", untagged=True) == []  # nothing left for the per-issue table
    index = VerpIndex(journal, SECRET, BASE)
    for email, address in paths.items():
        record = index.resolve(address.upper())  # a mail system may change the case
        assert record is not None and (record.issue_key, record.email) == ("011", email)
    assert "011" not in index._untagged  # no per-issue MAC table was built: the tag found them


def test_a_forged_mac_finds_no_row(journal: Journal) -> None:
    paths = _send(journal, "011", READERS)
    index = VerpIndex(journal, SECRET, BASE)
    genuine = paths[READERS[0]]
    mac = parse_verp(genuine, BASE)[1]  # type: ignore[index]
    flipped = mac[:-1] + ("0" if mac[-1] != "0" else "1")
    assert index.resolve(genuine.replace(mac, flipped)) is None
    assert index.resolve(f"bounce+011.{'ab' * 10}@gigo.dev") is None
    other = VerpAddresses(BASE, b"another secret", "011").address(READERS[0])  # right shape, wrong secret
    assert index.resolve(other) is None
    assert index.resolve(genuine) is not None


def test_a_row_whose_tag_matches_but_whose_mac_does_not_is_refused(journal: Journal) -> None:
    """The tag only finds rows: someone who could write tags into the journal (or a 64-bit collision)
    still gets no bounce believed for a row whose MAC the address does not carry."""
    paths = _send(journal, "011", READERS)
    forged = f"bounce+011.{'5a' * 10}@gigo.dev"
    _set_tag(journal.path, "011", READERS[1], lookup_tag(bytes.fromhex("5a" * 10)))
    index = VerpIndex(journal, SECRET, BASE)
    assert journal.verp_tagged_keys("011", lookup_tag(bytes.fromhex("5a" * 10))) == [READERS[1]]
    assert index.resolve(forged) is None
    # two rows under one tag: the one whose MAC the address carries is the one found
    tag = _tags(journal.path, "011")[READERS[2]]
    assert tag is not None
    _set_tag(journal.path, "011", READERS[3], tag)
    assert sorted(journal.verp_tagged_keys("011", tag)) == [READERS[2], READERS[3]]
    record = index.resolve(paths[READERS[2]])
    assert record is not None and record.email == READERS[2]


def test_rows_marked_before_the_tag_still_resolve(journal: Journal) -> None:
    """An older journal's rows have no tag: the MAC table over those rows alone finds them, beside
    tagged rows of the same issue (a send resumed by this version)."""
    old = _send(journal, "011", READERS[:3], tagged=False)
    new = _send(journal, "011", READERS[3:])
    assert sorted(journal.recipient_keys("011", untagged=True)) == READERS[:3]
    index = VerpIndex(journal, SECRET, BASE)
    for email, address in {**old, **new}.items():
        record = index.resolve(address)
        assert record is not None and record.email == email
    assert set(index._untagged["011"].values()) == set(READERS[:3])  # tagged rows are not in the table
    assert index.resolve(f"bounce+011.{'ab' * 10}@gigo.dev") is None


def test_a_resend_keeps_or_renews_the_tag(journal: Journal) -> None:
    """A ``sending`` mark without a tag (VERP turned off for the re-send) keeps the first message's;
    an outcome mark never clears it."""
    paths = _send(journal, "011", READERS[:1])
    tag = _tags(journal.path, "011")[READERS[0]]
    journal.mark_sending("011", READERS[0], READERS[0], "<011.0@gigo.dev>")
    journal.mark_failed("011", READERS[0], READERS[0], 451, "later", permanent=False)
    assert _tags(journal.path, "011")[READERS[0]] == tag
    assert VerpIndex(journal, SECRET, BASE).resolve(paths[READERS[0]]) is not None


def test_the_unsubscribe_token_resolves_untagged_beside_tagged_return_addresses(journal: Journal) -> None:
    """Unsubscribe tokens are not tagged: their index reads every recipient of the issue."""
    _send(journal, "011", READERS)
    tokens = VerpAddresses("unsubscribe@gigo.dev", SECRET, "011", UNSUBSCRIBE_CONTEXT)
    index = VerpIndex(journal, SECRET, "unsubscribe@gigo.dev", UNSUBSCRIBE_CONTEXT)
    assert not index.tagged
    for email in READERS:
        record = index.resolve(tokens.address(email))
        assert record is not None and record.email == email
    # a return address's MAC is no token, even though its tag is in the journal
    verp_mac = parse_verp(VerpAddresses(BASE, SECRET, "011").address(READERS[0]), BASE)[1]  # type: ignore[index]
    assert index.resolve(f"unsubscribe+011.{verp_mac}@gigo.dev") is None
