"""Files under .gigo/ that hold addresses or secrets are 0600 in a 0700 folder, made so when
created, and tightened when an earlier version left them 0644 (the real stores, real files)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gigo_mail.answers.process import AnswerStore
from gigo_mail.config import load_config
from gigo_mail.journal.deliveries import Journal
from gigo_mail.journal.sync import _save_cursor
from gigo_mail.private import private_sqlite, write_private
from gigo_mail.web.inbox_maildir import MaildirWriter
from support import make_newsletter


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> object:
    """The umask most accounts have (022): without care, files come out 0644."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("GIGO_UNSUBSCRIBE_SECRET", raising=False)
    return make_newsletter(tmp_path / "n")


def test_new_state_files_are_private(root: Path) -> None:
    config = load_config(root)
    config.secret()
    with Journal.for_root(root) as journal:
        journal.suppress(["ann@example.org"], "manual")
        state = root / ".gigo"
        assert (state / "journal.sqlite3-wal").exists()
        companions = [state / "journal.sqlite3-wal", state / "journal.sqlite3-shm"]
        assert [mode(p) for p in companions] == [0o600, 0o600]
    answers = AnswerStore.for_root(root)
    answers.close()
    _save_cursor(config, "https://gigo.dev/suppressions", "2026-12-07T10:00:00.000", "ann@example.org")
    MaildirWriter(state / "inbox").ensure()
    assert mode(state) == 0o700
    for name in ("secret", "journal.sqlite3", "answers.sqlite3", "sync.json"):
        assert mode(state / name) == 0o600, name
    for sub in ("inbox", "inbox/new", "inbox/tmp", "inbox/cur"):
        assert mode(state / sub) == 0o700, sub


def test_loose_files_of_an_earlier_version_are_tightened_when_opened(root: Path) -> None:
    state = root / ".gigo"
    with Journal.for_root(root) as first:
        first.suppress(["ann@example.org"], "manual")
        load_config(root).secret()
        db = state / "journal.sqlite3"
        loose = [state, db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"), state / "secret"]
        for path in loose:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        with Journal.for_root(root) as second:  # opened while the -wal and -shm are there
            assert second.is_suppressed("ann@example.org")  # the content is untouched
            assert [mode(path) for path in loose[:4]] == [0o700, 0o600, 0o600, 0o600]
    assert mode(state / "secret") == 0o644
    assert load_config(root).secret()
    assert mode(state / "secret") == 0o600


def test_a_private_write_replaces_atomically_and_privately(tmp_path: Path) -> None:
    target = tmp_path / "state" / "cursor.json"
    target.parent.mkdir()
    target.write_text("old")
    os.chmod(target, 0o644)
    write_private(target, b"new")
    assert target.read_bytes() == b"new" and mode(target) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["cursor.json"]
    assert mode(target.parent) == 0o700


def test_private_sqlite_keeps_an_existing_database(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite3"
    db.write_bytes(b"SQLite format 3\x00")
    os.chmod(db, 0o664)
    private_sqlite(db)
    assert db.read_bytes() == b"SQLite format 3\x00" and mode(db) == 0o600
