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
