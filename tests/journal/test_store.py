"""The journal's file: created in WAL mode with its schema; bad files and places are clean errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gigo_mail.errors import JournalError
from gigo_mail.journal.deliveries import JOURNAL_NAME, SCHEMA_VERSION, Journal


def test_for_root_creates_the_file_in_wal_mode(tmp_path: Path) -> None:
    with Journal.for_root(tmp_path) as journal:
        assert journal.path == tmp_path / ".gigo" / JOURNAL_NAME
    db = sqlite3.connect(tmp_path / ".gigo" / JOURNAL_NAME)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"deliveries", "runs", "suppressed", "schema_version"} <= tables
    db.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Journal.for_root(tmp_path).close()
    path = tmp_path / ".gigo" / JOURNAL_NAME
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="newer gigo-mail"):
        Journal(path)


def test_damaged_file_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is not a database, just some text" * 100)
    with pytest.raises(JournalError) as info:
        Journal(path)
    assert str(path) in str(info.value)


def test_unwritable_location_is_a_clean_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JournalError, match="cannot open the delivery journal"):
        Journal(blocker / "journal.sqlite3")


def test_an_older_journal_gains_the_verp_tag_column_and_its_index(tmp_path: Path) -> None:
    """A journal written before deliveries had ``verp_tag``: opened as it is, it gains the column (NULL
    for every row, each row kept) and its index, keeps its schema version (an older gigo-mail reads and
    writes it as before), and the next ``sending`` mark of a row records its tag."""
    path = tmp_path / JOURNAL_NAME
    with Journal(path) as journal:
        for n in range(3):
            journal.mark_sent("011", f"r{n}@example.org", f"r{n}@example.org", f"<{n}@x>", 250, "ok")
    db = sqlite3.connect(path)
    db.execute("DROP INDEX deliveries_by_verp_tag")  # as the file was before this version
    db.execute("ALTER TABLE deliveries DROP COLUMN verp_tag")
    db.commit()
    assert "verp_tag" not in {row[1] for row in db.execute("PRAGMA table_info(deliveries)")}
    db.close()

    with Journal(path) as journal:
        untagged = sorted(journal.recipient_keys("011", untagged=True))
        assert untagged == [f"r{n}@example.org" for n in range(3)]
        journal.mark_sending("011", "r1@example.org", "r1@example.org", "<1@x>", -(2 ** 63))
        journal.mark_sending("011", "r9@example.org", "r9@example.org", "<9@x>", 2 ** 63 - 1)
        assert journal.verp_tagged_keys("011", -(2 ** 63)) == ["r1@example.org"]
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT key, status, verp_tag FROM deliveries ORDER BY key").fetchall()
        assert rows == [("r0@example.org", "sent", None), ("r1@example.org", "sending", -(2 ** 63)),
                        ("r2@example.org", "sent", None), ("r9@example.org", "sending", 2 ** 63 - 1)]
        assert db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION == 1
        # an older gigo-mail's insert names no verp_tag: the row is simply untagged
        db.execute("INSERT INTO deliveries (issue_key, key, email, status, first_at, updated_at) "
                   "VALUES ('011', 'old@example.org', 'old@example.org', 'sent', 'x', 'x')")
        old = db.execute("SELECT verp_tag FROM deliveries WHERE key = 'old@example.org'").fetchone()
        assert old == (None,)
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN SELECT key FROM deliveries "
                                             "WHERE issue_key = '011' AND verp_tag = 5")]
        assert plan == ["SEARCH deliveries USING COVERING INDEX deliveries_by_verp_tag "
                        "(issue_key=? AND verp_tag=?)"]
    finally:
        db.close()
