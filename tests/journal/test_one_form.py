"""The journal takes an address in any spelling, or its key, and means the same reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from gigo_mail.address import address_key
from gigo_mail.journal.deliveries import Journal

SPELLINGS = ["ann@example.org", "Ann@Example.org", "  ANN@EXAMPLE.ORG ", address_key("Ann@example.ORG")]


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    with Journal(tmp_path / "journal.sqlite3") as opened:
        yield opened  # type: ignore[misc]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_suppress_then_is_suppressed_in_every_spelling(journal: Journal, spelling: str) -> None:
    journal.suppress(["Ann@Example.org"], "unsubscribed")
    assert journal.is_suppressed(spelling)
    assert not journal.is_suppressed("bob@example.org")


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_unsuppress_in_any_spelling(journal: Journal, spelling: str) -> None:
    journal.suppress(["ann@example.org"], "unsubscribed")
    assert journal.unsuppress([spelling]) == 1
    assert not journal.is_suppressed("ann@example.org")


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_record_and_latest_delivery_in_every_spelling(journal: Journal, spelling: str) -> None:
    journal.mark_sent("011", address_key("Ann@Example.org"), "Ann@Example.org", "<1@x>", 250, "ok")
    record = journal.record("011", spelling)
    assert record is not None and record.status == "sent"
    latest = journal.latest_delivery(spelling)
    assert latest is not None and latest.issue_key == "011"
    assert journal.record("011", "bob@example.org") is None


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_soft_bounces_count_one_reader_in_every_spelling(journal: Journal, spelling: str) -> None:
    for issue in ("010", "011"):
        journal.record_soft_bounce(issue, spelling, "452 4.2.2 mailbox full", limit=3)
    assert journal.soft_bounces_in_a_row("Ann@Example.org") == 2
    assert journal.record_soft_bounce("012", "ANN@example.org", "452 4.2.2 mailbox full", limit=3)
    assert journal.is_suppressed(spelling)


def test_a_key_is_its_own_key() -> None:
    for spelling in SPELLINGS:
        assert address_key(address_key(spelling)) == address_key(spelling) == "ann@example.org"
