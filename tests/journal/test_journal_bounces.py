"""Soft bounces counted per address across issues, in a real SQLite journal."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gigo_mail.journal.deliveries import Journal


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    with Journal(tmp_path / ".gigo" / "journal.sqlite3") as opened:
        yield opened  # type: ignore[misc]


def deliver(journal: Journal, issue: str, email: str) -> None:
    journal.mark_sending(issue, email.lower(), email, f"<{issue}@x>")
    journal.mark_sent(issue, email.lower(), email, f"<{issue}@x>", 250, "ok")


def fail_softly(journal: Journal, issue: str, email: str, limit: int = 3) -> bool:
    journal.mark_failed(issue, email.lower(), email, 452, "4.2.2 mailbox full", False)
    return journal.record_soft_bounce(issue, email, "452 4.2.2 mailbox full", limit)


def test_counted_once_per_issue_and_suppressed_at_the_limit(journal: Journal) -> None:
    assert not fail_softly(journal, "001", "Ann@Example.org")
    assert not fail_softly(journal, "001", "ann@example.org")  # the same issue again: still one
    assert journal.soft_bounces_in_a_row("ann@example.org") == 1
    assert not fail_softly(journal, "002", "ann@example.org")
    assert fail_softly(journal, "003", "ann@example.org")
    assert journal.is_suppressed("ann@example.org")
    assert journal.suppression_reasons()["ann@example.org"].startswith("soft bounces: 3 issues in a row")
    assert not fail_softly(journal, "004", "ann@example.org")  # already on the list


def test_a_delivered_issue_in_between_starts_the_count_again(journal: Journal) -> None:
    fail_softly(journal, "001", "ann@example.org")
    fail_softly(journal, "002", "ann@example.org")
    deliver(journal, "003", "ann@example.org")
    assert journal.soft_bounces_in_a_row("ann@example.org") == 0
    assert not fail_softly(journal, "004", "ann@example.org")
    assert journal.soft_bounces_in_a_row("ann@example.org") == 1
    assert not journal.is_suppressed("ann@example.org")


def test_a_retry_that_delivered_the_same_issue_cancels_its_soft_bounce(journal: Journal) -> None:
    fail_softly(journal, "001", "ann@example.org")
    deliver(journal, "001", "ann@example.org")  # the next run of 001 got it through
    assert journal.soft_bounces_in_a_row("ann@example.org") == 0


def test_a_bounce_reported_after_the_delivery_counts(journal: Journal) -> None:
    """The bounce processor's case: the server said 250, a delayed DSN came later."""
    later = "2999-01-01T00:00:00.000+00:00"  # the DSN arrived after the delivery was recorded
    deliver(journal, "001", "ann@example.org")
    assert not journal.record_soft_bounce("001", "ann@example.org", "4.4.7 delivery time expired", 2, later)
    deliver(journal, "002", "ann@example.org")
    assert journal.record_soft_bounce("002", "ann@example.org", "4.4.7 delivery time expired", 2, later)
    assert journal.is_suppressed("ann@example.org")


def test_the_run_segment_column_is_added_to_an_older_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    Journal(path).close()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE runs DROP COLUMN segment")
    with Journal(path) as journal:
        run_id = journal.begin_run("001", 10, "tag: paid")
        journal.end_run(run_id, "complete")
        assert [run.segment for run in journal.runs("001")] == ["tag: paid"]
